// Quarantined versions of the model, and lifting a quarantine with a typed reason (operator
// role; the control plane audits the lift and refuses a viewer, an empty reason, a version that
// is not quarantined).
import { api, errorText, q } from "./api.js";
import { $, fill, h, vlabel, when } from "./dom.js";

// model, version, onDone(version): set when the dialog opens.
let current = null;

export async function loadQuarantine(model) {
  return api(`quarantine?${q({ model })}`);
}

export function renderQuarantine(box, list, { model, allowed, onDone }) {
  if (!list.length) {
    fill(box, h("li", { class: "muted" }, "No quarantined version."));
    return;
  }
  fill(box, list.map((v) => h("li", { "data-testid": "quarantine-row", "data-version": v.version },
    h("span", {}, vlabel(v.version), v.tag ? h("span", { class: "muted" }, ` ${v.tag}`) : null),
    h("span", { class: "small" }, `cause: ${v.cause || "unknown"}`),
    h("span", { class: "muted small" }, when(v.quarantined_at)),
    h("span", { class: "muted small" }, v.quarantine_reason ? `“${v.quarantine_reason}”` : ""),
    h("span", { class: "spacer" }),
    h("button", {
      type: "button", class: "ghost", "data-testid": "lift-button", disabled: !allowed,
      title: allowed ? "make it active again, with a reason" : "lifting needs the operator role",
      onclick: () => openLift({ model, version: v.version, onDone }),
    }, "Lift…"))));
}

function openLift(ctx) {
  current = ctx;
  $("lift-title").textContent = `Lift the quarantine of ${ctx.model} ${vlabel(ctx.version)}`;
  $("lift-reason").value = "";
  $("lift-error").hidden = true;
  $("lift-confirm").disabled = true;
  $("lift-dialog").showModal();
}

export function wireLift() {
  $("lift-reason").addEventListener("input", () => {
    $("lift-confirm").disabled = $("lift-reason").value.trim().length === 0;
  });
  $("lift-cancel").addEventListener("click", () => $("lift-dialog").close());
  $("lift-confirm").addEventListener("click", confirmLift);
}

async function confirmLift() {
  const { model, version, onDone } = current;
  $("lift-confirm").disabled = true;
  $("lift-error").hidden = true;
  try {
    const lifted = await api(
      `models/${encodeURIComponent(model)}/versions/${version}/quarantine/lift`,
      { method: "POST", body: { reason: $("lift-reason").value.trim() } });
    $("lift-dialog").close();
    onDone(lifted);
  } catch (err) {
    fill($("lift-error"), errorText(err));
    $("lift-error").hidden = false;
    $("lift-confirm").disabled = false;
  }
}
