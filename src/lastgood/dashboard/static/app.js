// lastgood dashboard: plain JS, no framework, no build step, no external resources.
// Every request carries the token as `Authorization: Bearer`; live updates come from the
// /api/v1/stream server-sent events (read through fetch, since EventSource cannot send headers),
// with a 2 s poll of /api/v1/events as the fallback.
"use strict";

const API = new URL("../api/v1/", document.baseURI).pathname;
const TOKEN_KEY = "lastgood.token";
const POLL_MS = 2000;
const METRICS_MS = 3000;
const EVENTS_SHOWN = 200;
const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  token: null, who: null, model: "", env: "", status: null, history: [], versions: [],
  timeline: { deployments: [], operations: [] }, metrics: null, events: [], lastSeq: 0,
  feed: "off", stream: null, pollTimer: null, metricsTimer: null, refreshTimer: null,
  chainTimer: null, plan: null, epoch: 0,
};

// ---------------------------------------------------------------- small DOM helpers

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  appendAll(el, children);
  return el;
}

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  appendAll(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function appendAll(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function fill(el, ...children) {
  el.replaceChildren();
  appendAll(el, children);
}

function badge(text, kind, testid) {
  return h("span", { class: `badge ${kind || ""}`, "data-testid": testid }, text);
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  return today ? time : `${d.toLocaleDateString([], { month: "short", day: "numeric" })} ${time}`;
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const vlabel = (n) => (n === null || n === undefined ? "—" : `v${n}`);

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.kind = (body && body.error) || "";
    this.fix = (body && body.fix) || "";
  }
}

async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${state.token}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  if (!res.ok) {
    let detail = null;
    try { detail = await res.json(); } catch { detail = null; }
    const err = new ApiError(res.status, detail);
    if (res.status === 401 && state.who) signOut(`Signed out: ${err.message}`);
    throw err;
  }
  return raw ? res : res.json();
}

const q = (params) => new URLSearchParams(
  Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== ""),
).toString();
const modelPath = (suffix) => `models/${encodeURIComponent(state.model)}/${suffix}`;

function errorText(err) {
  const status = err.status === 403 ? "Forbidden: " : err.status === 401 ? "Not signed in: " : "";
  return [h("span", {}, status + err.message), err.fix ? h("span", { class: "fix" }, err.fix) : null];
}

// ---------------------------------------------------------------- sign in and out

async function signIn(token) {
  state.token = token;
  let who;
  try {
    who = await api("whoami");
  } catch (err) {
    state.token = null;
    throw err;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.who = who;
  fill($("who"), "signed in as ", h("b", {}, who.owner), ` · ${who.role}`);
  $("who").hidden = $("signout").hidden = $("pickers").hidden = $("feed").hidden = false;
  $("signin-view").hidden = true;
  $("app-view").hidden = false;
  await loadPickers();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopLive();
  Object.assign(state, { token: null, who: null, events: [], lastSeq: 0, status: null });
  $("who").hidden = $("signout").hidden = $("pickers").hidden = $("feed").hidden = true;
  $("app-view").hidden = true;
  $("signin-view").hidden = false;
  $("token").value = "";
  showSigninError(message || "");
}

function showSigninError(message) {
  $("signin-error").hidden = !message;
  $("signin-error").textContent = message;
}

// ---------------------------------------------------------------- model and env pickers

function hashParams() {
  return new URLSearchParams(location.hash.slice(1));
}

async function loadPickers() {
  const [models, envs] = await Promise.all([api("models"), api("environments")]);
  const wanted = hashParams();
  fillSelect($("model"), models.map((m) => m.name), wanted.get("model"));
  const envNames = envs.map((e) => e.name);
  const preferred = wanted.get("env") || (envNames.includes("production") ? "production" : "");
  fillSelect($("env"), envNames, preferred);
  if (!models.length || !envs.length) {
    showBanner("The registry has no models or environments yet: register and deploy one first.");
    return;
  }
  await select($("model").value, $("env").value);
}

function fillSelect(el, names, preferred) {
  fill(el, names.map((n) => h("option", { value: n }, n)));
  if (preferred && names.includes(preferred)) el.value = preferred;
}

async function select(model, env) {
  stopLive();
  Object.assign(state, { model, env, events: [], lastSeq: 0, metrics: null, epoch: state.epoch + 1 });
  history.replaceState(null, "", `#${q({ model, env })}`);
  fill($("events"));
  await Promise.all([refresh(), loadEvents(), refreshChain(), refreshMetrics()]);
  startLive();
}

function showBanner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

// ---------------------------------------------------------------- loading the panels

async function refresh() {
  const epoch = state.epoch;
  const env = q({ env: state.env });
  try {
    const [status, hist, versions, timeline, archives] = await Promise.all([
      api(`${modelPath("status")}?${env}`), api(`${modelPath("history")}?${env}`),
      api(modelPath("versions")), api(`${modelPath("timeline")}?${env}`),
      api(`archives?${q({ model: state.model, env: state.env })}`),
    ]);
    if (epoch !== state.epoch) return;
    Object.assign(state, { status, history: hist, versions, timeline });
    showBanner("");
    renderServing();
    renderTimeline();
    renderArchives(archives);
    renderCharts();
  } catch (err) {
    if (err.status !== 401) showBanner(`Could not load ${state.model} in ${state.env}: ${err.message}`);
  }
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, 250);
  clearTimeout(state.chainTimer);
  state.chainTimer = setTimeout(refreshChain, 600);
}

// ---------------------------------------------------------------- serving panel

function versionInfo(n) {
  return state.versions.find((v) => v.version === n) || null;
}

function renderServing() {
  const st = state.status;
  const live = st.desired;
  const verified = !!(live && live.verified);
  const tag = st.version && st.version.tag ? st.version.tag : "";
  const liveBox = live
    ? h("div", { class: `live-box ${verified ? "verified" : ""}`, "data-testid": "live" },
        h("div", { class: "muted small" }, `live in ${st.env}`),
        h("div", { class: "big", "data-testid": "live-version" }, vlabel(live.version),
          tag ? h("small", {}, tag) : null),
        h("p", {}, verified
          ? badge(`verified by ${live.verified.approver}`, "ok", "live-verified")
          : badge("not verified", "unverified", "live-verified"), earlierVerified(live)),
        h("p", { class: "small muted" }, `since ${when(live.started_at)} by ${live.deployed_by}`),
        h("p", { class: "small muted" }, live.reason ? `“${live.reason}”` : ""),
        h("div", { class: "small" }, "standby ",
          h("span", { class: "chips", "data-testid": "standby" },
            st.standby.length ? st.standby.map((n) => h("span", { class: "chip verified" }, vlabel(n)))
              : h("span", { class: "muted" }, "none verified"))))
    : h("div", { class: "live-box", "data-testid": "live" },
        h("div", { class: "big", "data-testid": "live-version" }, "—"),
        h("p", { class: "muted" }, `${st.model} is not deployed in ${st.env}`));
  fill($("serving"), liveBox, h("div", {}, replicaTable(st), operationsNote(st)));
  updateRollbackButton();
}

// A restored version starts a new deployment; say when the same version was last verified here.
function earlierVerified(live) {
  if (live.verified) return null;
  const before = state.history.find((d) => d.version === live.version && d.verified && d.id !== live.id);
  return before ? h("span", { class: "small muted" }, ` (was verified ${when(before.verified.at)})`) : null;
}

function replicaTable(st) {
  const desired = st.desired ? st.desired.version : null;
  if (!st.replicas.length) {
    return h("p", { class: "muted", "data-testid": "replicas" },
      "No serving replica has reported yet: desired ", h("b", {}, vlabel(desired)),
      ", actual unknown. Start one with ", h("code", {}, `lastgood serve --env ${st.env}`), ".");
  }
  const rows = st.replicas.map((r) => h("tr", {
    class: r.version === desired && r.state === "serving" ? "" : "mismatch",
    "data-testid": "replica-row",
  }, h("td", { class: "mono" }, r.replica_id), h("td", {}, vlabel(desired)),
    h("td", { "data-testid": "replica-actual" }, vlabel(r.version)),
    h("td", {}, badge(r.state, r.state === "serving" ? (r.version === desired ? "ok" : "warn") : "bad")),
    h("td", { class: "small muted" }, r.detail || `seen ${when(r.seen_at)}`)));
  return h("table", { "data-testid": "replicas" },
    h("thead", {}, h("tr", {}, ["replica", "desired", "actual", "state", ""].map((t) => h("th", {}, t)))),
    h("tbody", {}, rows));
}

function operationsNote(st) {
  const lines = st.unfinished.map((o) => h("p", { class: "error" },
    `${o.kind} ${vlabel(o.from_version)} → ${vlabel(o.target_version)} unfinished (${o.phase}); `
    + "resume it with lastgood resume"));
  const last = st.last_operation;
  if (last) {
    const kind = last.phase === "succeeded" ? "ok" : last.phase === "failed" || last.phase === "escalated" ? "bad" : "warn";
    lines.push(h("p", { class: "small", "data-testid": "last-operation" }, "last operation: ",
      `${last.kind} ${vlabel(last.from_version)} → ${vlabel(last.target_version)} `,
      badge(last.phase, kind), ` by ${last.actor} at ${when(last.updated_at)}`,
      last.error ? h("span", { class: "error" }, ` — ${last.error}`) : null));
  }
  return h("div", { class: "ops" }, lines);
}

function canRollBack() {
  return state.who && state.who.role !== "viewer";
}

function updateRollbackButton() {
  const deployed = !!(state.status && state.status.desired);
  const btn = $("rollback");
  btn.disabled = !deployed || !canRollBack();
  const note = $("rollback-note");
  note.hidden = canRollBack();
  note.textContent = `${state.who ? state.who.role : ""} token: read only — rolling back needs the operator role`;
  btn.title = canRollBack() ? "dry run first, then confirm with a reason" : note.textContent;
}

// ---------------------------------------------------------------- rollback dialog

async function openRollback() {
  state.plan = null;
  fill($("plan"), h("p", { class: "muted" }, "Running the dry run: choosing the target and checking it…"));
  $("reason").value = "";
  $("plan-error").hidden = true;
  $("plan-confirm").disabled = true;
  $("plan-title").textContent = `Roll back ${state.model} in ${state.env}`;
  $("rollback-dialog").showModal();
  try {
    state.plan = await api(modelPath("rollback"), {
      method: "POST", body: { env: state.env, reason: "", to: null, force: false, dry_run: true },
    });
    renderPlan(state.plan);
  } catch (err) {
    fill($("plan"));
    showPlanError(err);
  }
  updateConfirm();
}

function renderPlan(plan) {
  const target = plan.candidates.find((c) => c.version === plan.target) || null;
  const head = h("div", { class: "plan-head" }, h("span", {}, "live ", h("b", {}, vlabel(plan.live))),
    h("span", { class: "arrow" }, "→"),
    plan.target !== null
      ? h("span", { class: "target", "data-testid": "plan-target" }, `target ${vlabel(plan.target)}`)
      : h("span", { class: "none", "data-testid": "plan-target" }, "no eligible target"));
  const candidates = h("table", { "data-testid": "plan-candidates" },
    h("thead", {}, h("tr", {}, h("th", {}, "candidate"), h("th", {}, "verdict"))),
    h("tbody", {}, plan.candidates.map((c) => h("tr", { "data-testid": "plan-candidate" },
      h("td", {}, vlabel(c.version), c.tag ? h("span", { class: "muted" }, ` ${c.tag}`) : null),
      h("td", {}, c.accepted ? badge("accepted", "ok") : badge("refused", "bad"),
        c.refusals.length ? h("ul", { class: "refusals" }, c.refusals.map((r) => h("li", {}, r))) : null)))));
  const checks = target && target.checks.length
    ? h("table", { "data-testid": "plan-checks" },
        h("thead", {}, h("tr", {}, h("th", {}, "check"), h("th", {}, ""), h("th", {}, "evidence"))),
        h("tbody", {}, target.checks.map((c) => h("tr", { "data-testid": `check-${c.name}` },
          h("td", {}, c.name), h("td", {}, badge(c.status, c.status)), h("td", { class: "small" }, c.summary)))))
    : h("p", { class: "muted" }, "No target passed, so no checks to show.");
  fill($("plan"), head, h("div", { class: "plan-cols" },
    h("div", {}, h("h3", {}, "candidates, newest first"), candidates),
    h("div", {}, h("h3", {}, `preflight of ${vlabel(plan.target)}`), checks)));
}

function updateConfirm() {
  const ready = state.plan && state.plan.target !== null && $("reason").value.trim().length > 0;
  $("plan-confirm").disabled = !ready || !canRollBack();
}

function showPlanError(err) {
  fill($("plan-error"), errorText(err));
  $("plan-error").hidden = false;
}

async function confirmRollback() {
  $("plan-confirm").disabled = true;
  $("plan-error").hidden = true;
  const reason = $("reason").value.trim();
  $("plan-progress").hidden = false;
  $("plan-progress").textContent = `Rolling back to ${vlabel(state.plan.target)}: preflight, switch, archive, verify…`;
  try {
    const op = await api(modelPath("rollback"), {
      method: "POST", body: { env: state.env, reason, to: state.plan.target, force: false, dry_run: false },
    });
    $("rollback-dialog").close();
    showNotice(`Rolled back ${vlabel(op.from_version)} → ${vlabel(op.target_version)} (${op.phase})`);
    scheduleRefresh();
  } catch (err) {
    showPlanError(err);
    updateConfirm();
  } finally {
    $("plan-progress").hidden = true;
  }
}

function showNotice(text) {
  const note = $("notice");
  note.textContent = text;
  note.hidden = false;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => { note.hidden = true; }, 15000);
}

// ---------------------------------------------------------------- audit log and chain

async function loadEvents() {
  const epoch = state.epoch;
  let after = 0;
  let all = [];
  for (;;) {  // page through this model's events; only the newest are kept on screen
    const page = await api(`events?${q({ model: state.model, after_seq: after, limit: 500 })}`);
    if (epoch !== state.epoch) return;
    all = all.concat(page).slice(-EVENTS_SHOWN);
    if (page.length < 500) break;
    after = page[page.length - 1].seq;
  }
  state.events = [];
  addEvents(all, false);
}

function relevant(ev) {
  return ev.model === state.model && (!ev.env || ev.env === state.env);
}

function addEvents(list, fresh) {
  const body = $("events");
  let added = 0;
  for (const ev of list) {
    if (ev.seq <= state.lastSeq) continue;
    state.lastSeq = ev.seq;
    if (!relevant(ev)) continue;
    state.events.push(ev);
    body.prepend(eventRow(ev, fresh));
    added += 1;
  }
  while (body.children.length > EVENTS_SHOWN) body.lastChild.remove();
  return added;
}

function eventRow(ev, fresh) {
  const what = [ev.subject, ev.reason].filter(Boolean).join(" — ");
  const cls = [fresh ? "fresh" : "", ev.outcome && ev.outcome !== "ok" ? "refused" : ""].join(" ");
  return h("tr", { class: cls, "data-testid": "event-row", "data-action": ev.action, title: what },
    h("td", { class: "muted" }, ev.seq), h("td", {}, when(ev.at)),
    h("td", { class: "mono" }, ev.action), h("td", {}, ev.actor), h("td", { class: "what" }, what));
}

async function refreshChain() {
  try {
    const rep = await api("audit/verify");
    const el = $("chain");
    el.className = `badge ${rep.ok ? "ok" : "bad"}`;
    el.textContent = rep.ok ? `chain intact · ${rep.checked} events`
      : `chain BROKEN at #${rep.first_bad}: ${rep.problem}`;
  } catch (err) {
    $("chain").className = "badge warn";
    $("chain").textContent = `chain not checked: ${err.message}`;
  }
}

// ---------------------------------------------------------------- live updates

function startLive() {
  stopLive();
  openStream(state.epoch);
  state.metricsTimer = setInterval(() => { refreshMetrics(); refreshStatus(); }, METRICS_MS);
}

// Replica reports change without an audit event (heartbeats, loading): re-read them on a timer.
async function refreshStatus() {
  const epoch = state.epoch;
  try {
    const status = await api(`${modelPath("status")}?${q({ env: state.env })}`);
    if (epoch !== state.epoch || $("rollback-dialog").open) return;
    state.status = status;
    renderServing();
  } catch {
    /* the next refresh or the feed indicator tells */
  }
}

function stopLive() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  clearInterval(state.pollTimer);
  clearInterval(state.metricsTimer);
  state.pollTimer = state.metricsTimer = null;
}

function setFeed(mode, text) {
  state.feed = mode;
  $("feed").className = `feed ${mode}`;
  $("feed").textContent = text;
}

async function openStream(epoch) {
  const ctrl = new AbortController();
  state.stream = ctrl;
  try {
    const res = await fetch(`${API}stream?${q({ model: state.model, after_seq: state.lastSeq })}`, {
      headers: { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" },
      signal: ctrl.signal, cache: "no-store",
    });
    const type = res.headers.get("content-type") || "";
    if (!res.ok || !res.body || !type.startsWith("text/event-stream")) throw new Error(`stream: HTTP ${res.status}`);
    setFeed("live", "live");
    await readStream(res.body.getReader(), epoch);
    throw new Error("stream ended");
  } catch (err) {
    if (ctrl.signal.aborted || epoch !== state.epoch) return;
    startPolling(epoch);
  }
}

async function readStream(reader, epoch) {
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done || epoch !== state.epoch) return;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      handleMessage(buffer.slice(0, cut));
      buffer = buffer.slice(cut + 2);
    }
  }
}

function handleMessage(block) {
  let type = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) type = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
  }
  if (type !== "audit" || !data.length) return;
  try {
    onEvents([JSON.parse(data.join("\n"))]);
  } catch {
    /* a malformed message is skipped; the next poll or refresh catches up */
  }
}

function onEvents(list) {
  const before = state.lastSeq;
  const added = addEvents(list, true);
  if (added) {
    scheduleRefresh();
  } else if (state.lastSeq > before) {
    clearTimeout(state.chainTimer);
    state.chainTimer = setTimeout(refreshChain, 600);
  }
}

function startPolling(epoch) {
  setFeed("polling", "polling every 2 s");
  clearInterval(state.pollTimer);
  let failures = 0;
  state.pollTimer = setInterval(async () => {
    if (epoch !== state.epoch) return;
    try {
      onEvents(await api(`events?${q({ model: state.model, after_seq: state.lastSeq, limit: 500 })}`));
      failures = 0;
      setFeed("polling", "polling every 2 s");
    } catch (err) {
      failures += 1;
      if (failures > 1) setFeed("down", `control plane unreachable: ${err.message}`);
    }
  }, POLL_MS);
}

// ---------------------------------------------------------------- live metrics charts

const CHARTS = [
  { key: "latency_p95_ms", title: "latency p95", fmt: (v) => `${v.toFixed(v < 10 ? 2 : 0)} ms` },
  { key: "error_rate", title: "error rate", rate: true, fmt: (v) => `${(v * 100).toFixed(2)} %` },
  { key: "accuracy", title: "accuracy", rate: true, fmt: (v) => `${(v * 100).toFixed(1)} %` },
];

async function refreshMetrics() {
  const epoch = state.epoch;
  try {
    const metrics = await api(`${modelPath("metrics")}?${q({ env: state.env })}`);
    if (epoch !== state.epoch) return;
    state.metrics = metrics;
  } catch (err) {
    state.metrics = { points: [], baseline: null, error: err.message };
  }
  renderCharts();
}

function markers() {
  const out = [];
  for (const op of state.timeline.operations || []) {
    if (op.phase !== "succeeded" && op.phase !== "escalated") continue;
    const label = op.kind === "rollback" ? `↩ ${vlabel(op.target_version)}` : `▲ ${vlabel(op.target_version)}`;
    out.push({ t: Date.parse(op.updated_at), kind: op.kind === "rollback" ? "rollback" : "deploy", label });
  }
  return out;
}

function renderCharts() {
  const m = state.metrics;
  if (!m) return;
  const points = m.points || [];
  const baseline = m.baseline || {};
  const note = m.error ? `metrics unavailable: ${m.error}`
    : !points.length ? (m.source ? `waiting for traffic (${m.source})` : "no live metrics source")
      : `${m.source || "live"} · baseline ${m.baseline_version ? vlabel(m.baseline_version) : "—"}`;
  $("metrics-note").textContent = note;
  fill($("charts"), CHARTS.map((c) => chart(c, points, baseline[c.key], (m.band || {})[c.key], note)));
}

// From the first point (or the latest deploy or rollback, if later) to now: at least 30 s and at
// most 15 minutes, so a freshly opened page does not squeeze its few points into a corner.
function timeWindow(times) {
  const t1 = Math.max(times[times.length - 1], Date.now());
  const recent = markers().map((mk) => mk.t).filter((t) => t < t1 && t > t1 - 15 * 60000);
  let t0 = Math.max(times[0], t1 - 15 * 60000);
  if (recent.length) t0 = Math.min(t0, Math.max(...recent) - 3000);
  return [Math.min(t0, t1 - 30000), t1];
}

// Newest first; a label that would overlap the one to its right is left out (its line stays).
function drawMarkers(svg, list, x, { W, R, T, B, H }) {
  let freeLeftOf = Infinity;
  for (const mk of list.sort((a, b) => b.t - a.t)) {
    const px = x(mk.t);
    svg.append(s("line", { x1: px, x2: px, y1: T, y2: H - B, class: `marker ${mk.kind}` }));
    if (px > freeLeftOf) continue;
    const right = px + 44 > W - R;
    svg.append(s("text", { x: right ? px - 3 : px + 3, y: T + 8, "text-anchor": right ? "end" : "start",
      class: `marker ${mk.kind}` }, mk.label));
    freeLeftOf = right ? px - 94 : px - 48;
  }
}

function chart(spec, points, base, band, emptyNote) {
  const vals = points.filter((p) => p[spec.key] !== null && p[spec.key] !== undefined);
  const last = vals.length ? vals[vals.length - 1][spec.key] : null;
  const head = h("h3", {}, spec.title,
    base !== null && base !== undefined ? h("span", { class: "muted" }, `baseline ${spec.fmt(base)}`) : null,
    h("span", { class: "now", "data-testid": `now-${spec.key}` }, last === null ? "—" : spec.fmt(last)));
  const box = $("charts").getBoundingClientRect();
  const W = Math.max(200, Math.floor((box.width - 24) / 3)), H = Math.max(110, Math.floor(box.height - 22));
  const L = 48, R = 6, T = 8, B = 16;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": `${spec.title} chart`, "data-testid": `chart-${spec.key}` });
  if (!vals.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, emptyNote));
    return h("div", { class: "chart" }, head, svg);
  }
  const times = vals.map((p) => Date.parse(p.t));
  const [t0, t1] = timeWindow(times);
  const ys = vals.map((p) => p[spec.key]).concat(band || [], base ?? []);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= Math.abs(y0) * 0.1 + 1e-3; y1 += Math.abs(y1) * 0.1 + 1e-3; }
  const pad = (y1 - y0) * 0.12;
  y0 = Math.max(0, y0 - pad);
  y1 = spec.rate ? Math.min(1, y1 + pad) : y1 + pad;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  svg.append(s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }),
    s("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, spec.fmt(y1)),
    s("text", { x: L - 4, y: H - B, "text-anchor": "end" }, spec.fmt(y0)),
    s("text", { x: L, y: H - 3 }, when(new Date(t0).toISOString())),
    s("text", { x: W - R, y: H - 3, "text-anchor": "end" }, "now"));
  if (band) {
    svg.append(s("rect", { x: L, width: W - L - R, y: y(Math.max(...band)), height: Math.abs(y(band[0]) - y(band[1])), class: "band" }));
  }
  if (base !== null && base !== undefined) svg.append(s("line", { x1: L, x2: W - R, y1: y(base), y2: y(base), class: "base" }));
  drawMarkers(svg, markers().filter((mk) => mk.t >= t0 && mk.t <= t1), x, { W, R, T, B, H });
  const shown = vals.map((p, i) => [times[i], p[spec.key]]).filter(([t]) => t >= t0);
  svg.append(s("polyline", { class: "series", points: shown.map(([t, v]) => `${x(t)},${y(v)}`).join(" ") }));
  if (shown.length === 1) svg.append(s("circle", { cx: x(shown[0][0]), cy: y(shown[0][1]), r: 2.5, class: "dot" }));
  return h("div", { class: "chart" }, head, svg);
}

// ---------------------------------------------------------------- version timeline

function renderTimeline() {
  const deps = [...state.history].sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
  const box = $("timeline");
  if (!deps.length) {
    fill(box, h("p", { class: "muted" }, `Nothing deployed to ${state.env} yet.`));
    return;
  }
  const rowsOf = [...new Set(deps.map((d) => d.version))].sort((a, b) => b - a);
  const COL = 92, ROW = 26, LEFT = 150, TOP = 6;
  const W = LEFT + deps.length * COL + 10, H = TOP + rowsOf.length * ROW + 18;
  const svg = s("svg", { width: W, height: H, role: "img", "aria-label": "deployments over time", "data-testid": "timeline-svg" });
  rowsOf.forEach((n, i) => svg.append(rowLabel(n, TOP + i * ROW + ROW / 2)));
  let prev = null;
  deps.forEach((d, i) => {
    const cx = LEFT + i * COL, cy = TOP + rowsOf.indexOf(d.version) * ROW + ROW / 2;
    if (prev) svg.append(s("path", { d: `M${prev[0] + COL - 8},${prev[1]} L${cx},${cy}`, class: "axis" }));
    svg.append(segment(d, cx, cy, COL - 8));
    svg.append(s("text", { x: cx, y: H - 4, class: "tick" }, when(d.started_at)));
    prev = [cx, cy];
  });
  fill(box, svg);
}

function rowLabel(n, cy) {
  const info = versionInfo(n);
  const status = info ? info.status : "";
  const live = state.status && state.status.desired && state.status.desired.version === n;
  const g = s("g", { "data-testid": "timeline-row", "data-version": n, "data-status": status });
  g.append(s("text", { x: 4, y: cy + 4, class: `row-label ${status}` }, `${vlabel(n)}${info && info.tag ? ` ${info.tag}` : ""}`));
  const note = status === "quarantined" ? "quarantined" : status === "retired" ? "retired" : live ? "live" : "";
  if (note) g.append(s("text", { x: 86, y: cy + 4, class: `row-note ${status}` }, note));
  return g;
}

function segment(d, x, cy, width) {
  const kind = d.end === "rolled_back" ? "ended" : d.verified ? "verified" : "unverified";
  const title = [`${vlabel(d.version)} deployed ${when(d.started_at)} by ${d.deployed_by}: ${d.reason}`,
    d.verified ? `verified by ${d.verified.approver} at ${when(d.verified.at)}` : "never verified",
    d.ended_at ? `ended ${when(d.ended_at)}: ${d.end}${d.end_reason ? ` (${d.end_reason})` : ""}` : "live now"].join("\n");
  const g = s("g", { "data-testid": "timeline-deployment", "data-version": d.version, "data-verified": d.verified ? "yes" : "no", "data-end": d.end || "live" },
    s("title", {}, title),
    s("rect", { x, y: cy - 8, width, height: 16, rx: 4, class: `seg ${kind}` }));
  if (d.verified) g.append(s("text", { x: x + 5, y: cy + 4, class: "check" }, "✓ verified"));
  else if (d.end === "rolled_back") g.append(s("text", { x: x + 5, y: cy + 4, class: "check" }, "↩ rolled back"));
  else if (!d.ended_at) g.append(s("text", { x: x + 5, y: cy + 4, class: "check" }, "live"));
  return g;
}

// ---------------------------------------------------------------- forensic bundles

function renderArchives(list) {
  const box = $("archives");
  if (!list.length) {
    fill(box, h("li", { class: "muted" }, "No forensic bundle yet: one is written for every rollback."));
    return;
  }
  fill(box, list.map((a) => h("li", { "data-testid": "archive-row" },
    h("span", {}, vlabel(a.version)), h("span", { class: "muted small" }, when(a.created_at)),
    h("span", { class: "mono small", title: a.sha256 }, a.sha256.slice(0, 12)),
    h("span", { class: "muted small" }, bytes(a.size)), h("span", { class: "spacer" }),
    h("a", { href: "#", "data-testid": "archive-download", "aria-label": `download ${a.id}`,
      onclick: (e) => { e.preventDefault(); download(a); } }, "download"))));
}

async function download(a) {
  try {
    const res = await api(`archives/${encodeURIComponent(a.id)}/download`, { raw: true });
    const url = URL.createObjectURL(await res.blob());
    const link = h("a", { href: url, download: `${a.id}.tar` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  } catch (err) {
    showBanner(`Download of ${a.id} failed: ${err.message}`);
  }
}

// ---------------------------------------------------------------- wiring

function wire() {
  $("signin").addEventListener("submit", async (e) => {
    e.preventDefault();
    showSigninError("");
    try {
      await signIn($("token").value.trim());
    } catch (err) {
      showSigninError(err.status === 401 ? `That token was refused: ${err.message}` : err.message);
    }
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("model").addEventListener("change", () => select($("model").value, $("env").value));
  $("env").addEventListener("change", () => select($("model").value, $("env").value));
  $("rollback").addEventListener("click", openRollback);
  $("reason").addEventListener("input", updateConfirm);
  $("plan-cancel").addEventListener("click", () => $("rollback-dialog").close());
  $("plan-confirm").addEventListener("click", confirmRollback);
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(() => { if (state.metrics) renderCharts(); }, 150);
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch((err) => signOut(`Please sign in again: ${err.message}`));
}

wire();
