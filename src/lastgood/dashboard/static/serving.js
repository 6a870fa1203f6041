// The serving panel: the live version (verified or not), its standbys, and desired against
// actual for every replica that reports, with the last and any unfinished operation.
import { badge, fill, h, vlabel, when } from "./dom.js";

export function renderServing(box, status, history) {
  const live = status.desired;
  fill(box, live ? liveBox(status, history) : h("div", { class: "live-box", "data-testid": "live" },
    h("div", { class: "big", "data-testid": "live-version" }, "—"),
    h("p", { class: "muted" }, `${status.model} is not deployed in ${status.env}`)),
  h("div", {}, replicaTable(status), operationsNote(status)));
}

function liveBox(st, history) {
  const live = st.desired;
  const verified = !!live.verified;
  const quarantined = !!st.version && st.version.status === "quarantined";
  const tag = st.version && st.version.tag ? st.version.tag : "";
  return h("div", { class: `live-box ${verified ? "verified" : ""}`, "data-testid": "live" },
    h("div", { class: "muted small" }, `live in ${st.env}`),
    h("div", { class: "big", "data-testid": "live-version" }, vlabel(live.version),
      tag ? h("small", {}, tag) : null),
    h("p", {}, quarantined
      ? badge("quarantined", "bad", "live-quarantined") : null, quarantined ? " " : null,
    verified
      ? badge(`verified by ${live.verified.approver}`, "ok", "live-verified")
      : badge("not verified", "unverified", "live-verified"), earlierVerified(live, history)),
    quarantined ? h("p", { class: "small error", "data-testid": "live-quarantine-note" },
      `${vlabel(live.version)} is quarantined but still live: no rollback will pick it; `
      + "roll back to a verified version or lift the quarantine") : null,
    h("p", { class: "small muted" }, `since ${when(live.started_at)} by ${live.deployed_by}`),
    h("p", { class: "small muted" }, live.reason ? `“${live.reason}”` : ""),
    h("div", { class: "small" }, "standby ",
      h("span", { class: "chips", "data-testid": "standby" },
        st.standby.length ? st.standby.map((n) => h("span", { class: "chip verified" }, vlabel(n)))
          : h("span", { class: "muted" }, "none verified"))),
    readinessLine(st.readiness), replayLine(st.replay));
}

// Whether the escape hatch works before it is needed: the replicas' proof on their standby.
function readinessLine(ready) {
  if (!ready) return null;
  return h("p", { class: "small", "data-testid": "readiness" },
    badge(ready.ready ? "rollback ready" : "rollback NOT ready", ready.ready ? "ok" : "bad"),
    " ", ready.headline);
}

// Whether the way back answers today's traffic: recent live requests replayed on the standby.
const REPLAY_BADGES = {
  passed: ["answers today's traffic", "ok"], failed: ["fails on today's traffic", "bad"],
  no_data: ["no replay data yet", "warn"], off: ["replay off", "unverified"],
};

function replayLine(replay) {
  if (!replay) return null;
  const [label, kind] = REPLAY_BADGES[replay.outcome] || [replay.outcome, "warn"];
  return h("p", { class: "small", "data-testid": "replay" }, badge(label, kind), " ",
    replay.summary);
}

// A restored version starts a new deployment; say when the same version was last verified here.
function earlierVerified(live, history) {
  if (live.verified) return null;
  const before = history.find((d) => d.version === live.version && d.verified && d.id !== live.id);
  return before ? h("span", { class: "small muted" }, ` (was verified ${when(before.verified.at)})`) : null;
}

function replicaTable(st) {
  const desired = st.desired ? st.desired.version : null;
  if (!st.replicas.length) {
    return h("p", { class: "muted", "data-testid": "replicas" },
      "No serving replica has reported yet: desired ", h("b", {}, vlabel(desired)),
      ", actual unknown. Start one with ", h("code", {}, `lastgood serve --env ${st.env}`), ".");
  }
  const rows = st.replicas.map((r) => {
    // One definition of live (the rollback's): a replica silent past the stale window is not
    // serving, whatever its last report said.
    const live = !r.liveness || r.liveness === "live";
    return h("tr", {
      class: live && r.version === desired && r.state === "serving" ? "" : "mismatch",
      "data-testid": "replica-row", "data-liveness": r.liveness || "live",
    }, h("td", { class: "mono" }, r.replica_id), h("td", {}, vlabel(desired)),
    h("td", { "data-testid": "replica-actual" }, vlabel(r.version)),
    h("td", { "data-testid": "replica-state" }, live
      ? badge(r.state, r.state === "serving" ? (r.version === desired ? "ok" : "warn") : "bad")
      : badge(r.liveness, "bad")),
    h("td", { class: "small muted" }, live ? (r.detail || `seen ${when(r.seen_at)}`)
      : `silent since ${when(r.seen_at)} (last said: ${r.state})`));
  });
  return h("table", { "data-testid": "replicas" },
    h("thead", {}, h("tr", {}, ["replica", "desired", "actual", "state", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

function operationsNote(st) {
  const lines = st.unfinished.map((o) => h("p", { class: "error" },
    `${o.kind} ${vlabel(o.from_version)} → ${vlabel(o.target_version)} unfinished (${o.phase}); `
    + "finish it with lastgood resume"));
  const last = st.last_operation;
  if (last) {
    const kind = last.phase === "succeeded" ? "ok" : ["failed", "escalated"].includes(last.phase) ? "bad" : "warn";
    // The error belongs to that operation: under another live version it is history, said so.
    const live = st.desired ? st.desired.version : null;
    const about = last.target_version !== live ? `${last.kind} to ${vlabel(last.target_version)} ${last.phase}: ` : "";
    lines.push(h("p", { class: "small", "data-testid": "last-operation" }, "last operation: ",
      `${last.kind} ${vlabel(last.from_version)} → ${vlabel(last.target_version)} `,
      badge(last.phase, kind), ` by ${last.actor} at ${when(last.updated_at)}`,
      last.error ? h("span", { class: about ? "muted" : "error", "data-testid": "last-operation-error" },
        ` — ${about}${last.error}`) : null));
  }
  return h("div", { class: "ops" }, lines);
}
