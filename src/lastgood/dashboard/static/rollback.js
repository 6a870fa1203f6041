// The rollback dialog: the dry-run plan first (target, refused candidates with their reasons,
// every preflight check), then a typed reason, then the real rollback of the planned target.
import { api, errorText } from "./api.js";
import { $, badge, fill, h, vlabel } from "./dom.js";

// model, env, allowed (the role may roll back), onDone(operation): set by openRollback.
let current = null;

export async function openRollback(ctx) {
  current = { ...ctx, plan: null };
  fill($("plan"), h("p", { class: "muted" }, "Running the dry run: choosing the target and checking it…"));
  $("reason").value = "";
  $("plan-error").hidden = true;
  $("plan-confirm").disabled = true;
  $("plan-title").textContent = `Roll back ${ctx.model} in ${ctx.env}`;
  $("rollback-dialog").showModal();
  const mine = current;
  try {
    const plan = await api(path(ctx.model), {
      method: "POST", body: { env: ctx.env, to: null, force: false, dry_run: true },  // a plan needs no reason
    });
    if (mine !== current) return;
    current.plan = plan;
    renderPlan(plan);
  } catch (err) {
    fill($("plan"));
    showError(err);
  }
  updateConfirm();
}

export function wireRollback() {
  $("reason").addEventListener("input", updateConfirm);
  $("plan-cancel").addEventListener("click", () => $("rollback-dialog").close());
  $("plan-confirm").addEventListener("click", confirm);
}

const path = (model) => `models/${encodeURIComponent(model)}/rollback`;

function renderPlan(plan) {
  const target = plan.candidates.find((c) => c.version === plan.target) || null;
  const head = h("div", { class: "plan-head" }, h("span", {}, "live ", h("b", {}, vlabel(plan.live))),
    h("span", { class: "arrow" }, "→"),
    plan.target !== null
      ? h("span", { class: "target", "data-testid": "plan-target" }, `target ${vlabel(plan.target)}`)
      : h("span", { class: "none", "data-testid": "plan-target" }, "no eligible target"));
  fill($("plan"), head, h("div", { class: "plan-cols" },
    h("div", {}, h("h3", {}, "candidates, newest first"), candidatesTable(plan.candidates)),
    h("div", {}, h("h3", {}, `preflight of ${vlabel(plan.target)}`), checksTable(target))));
}

function candidatesTable(candidates) {
  return h("table", { "data-testid": "plan-candidates" },
    h("thead", {}, h("tr", {}, h("th", {}, "candidate"), h("th", {}, "verdict"))),
    h("tbody", {}, candidates.map((c) => h("tr", { "data-testid": "plan-candidate" },
      h("td", {}, vlabel(c.version), c.tag ? h("span", { class: "muted" }, ` ${c.tag}`) : null),
      h("td", {}, c.accepted ? badge("accepted", "ok") : badge("refused", "bad"),
        c.refusals.length ? h("ul", { class: "refusals" }, c.refusals.map((r) => h("li", {}, r))) : null)))));
}

function checksTable(target) {
  if (!target || !target.checks.length) return h("p", { class: "muted" }, "No target passed, so no checks to show.");
  return h("table", { "data-testid": "plan-checks" },
    h("thead", {}, h("tr", {}, h("th", {}, "check"), h("th", {}, ""), h("th", {}, "evidence"))),
    h("tbody", {}, target.checks.map((c) => h("tr", { "data-testid": `check-${c.name}` },
      h("td", {}, c.name), h("td", {}, badge(c.status, c.status)), h("td", { class: "small" }, c.summary)))));
}

function updateConfirm() {
  const ready = current && current.plan && current.plan.target !== null && $("reason").value.trim().length > 0;
  $("plan-confirm").disabled = !ready || !current.allowed;
}

function showError(err) {
  fill($("plan-error"), errorText(err));
  $("plan-error").hidden = false;
}

async function confirm() {
  const { model, env, plan, onDone } = current;
  $("plan-confirm").disabled = true;
  $("plan-error").hidden = true;
  $("plan-progress").hidden = false;
  $("plan-progress").textContent = `Rolling back to ${vlabel(plan.target)}: preflight, switch, archive, verify…`;
  try {
    // The planned target, named: if the world changed since the plan, the checks run again on it.
    const op = await api(path(model), {
      method: "POST", body: { env, reason: $("reason").value.trim(), to: plan.target, force: false, dry_run: false },
    });
    $("rollback-dialog").close();
    onDone(op);
  } catch (err) {
    showError(err);
    updateConfirm();
  } finally {
    $("plan-progress").hidden = true;
  }
}
