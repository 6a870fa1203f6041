// The audit log (newest first, new rows flash) and the hash chain's status.
import { api } from "./api.js";
import { $, h, when } from "./dom.js";

export const EVENTS_SHOWN = 200;

export function eventRow(ev, fresh) {
  const what = [ev.subject, ev.reason].filter(Boolean).join(" — ");
  const cls = [fresh ? "fresh" : "", ev.outcome && ev.outcome !== "ok" ? "refused" : ""].join(" ");
  return h("tr", { class: cls, "data-testid": "event-row", "data-action": ev.action, title: what },
    h("td", { class: "muted" }, ev.seq), h("td", {}, when(ev.at)),
    h("td", { class: "mono" }, ev.action), h("td", {}, ev.actor), h("td", { class: "what" }, what));
}

export function prependRows(body, rows) {
  for (const row of rows) body.prepend(row);
  while (body.children.length > EVENTS_SHOWN) body.lastChild.remove();
}

export async function refreshChain() {
  const el = $("chain");
  try {
    const rep = await api("audit/verify");
    el.className = `badge ${rep.ok ? "ok" : "bad"}`;
    el.textContent = rep.ok ? `chain intact · ${rep.checked} events`
      : `chain BROKEN at #${rep.first_bad}: ${rep.problem}`;
  } catch (err) {
    el.className = "badge warn";
    el.textContent = `chain not checked: ${err.message}`;
  }
}
