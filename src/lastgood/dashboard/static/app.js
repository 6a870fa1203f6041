// lastgood dashboard: plain JS modules, no framework, no build step, no external resources.
// Sign in with a token (kept in sessionStorage), pick a model and an environment, and every panel
// follows the control plane: the audit stream (or a poll) triggers re-reads, metrics and replica
// reports are re-read every few seconds.
import { api, q, session } from "./api.js";
import { EVENTS_SHOWN, eventRow, prependRows, refreshChain } from "./audit.js";
import { RANGES, metricsNote, renderCharts } from "./charts.js";
import { $, bytes, fill, h, vlabel, when } from "./dom.js";
import { Feed } from "./feed.js";
import { loadQuarantine, renderQuarantine, wireLift } from "./quarantine.js";
import { openRollback, wireRollback } from "./rollback.js";
import { renderServing } from "./serving.js";
import { renderTimeline } from "./timeline.js";

const TOKEN_KEY = "lastgood.token";
const METRICS_MS = 3000;
const HISTORY_MS = { "1h": 5000, "1d": 30000, "1w": 60000 }; // re-read the history this often

const state = {
  who: null, model: "", env: "", status: null, history: [], versions: [],
  timeline: { deployments: [], operations: [] }, metrics: null, range: "1h", historyAt: 0,
  lastSeq: 0, epoch: 0,
  feed: null, metricsTimer: null, refreshTimer: null, chainTimer: null, noticeTimer: null,
};

const modelPath = (suffix) => `models/${encodeURIComponent(state.model)}/${suffix}`;

// ---------------------------------------------------------------- sign in and out

async function signIn(token) {
  session.token = token;
  let who;
  try {
    who = await api("whoami");
  } catch (err) {
    session.token = null;
    throw err;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  state.who = who;
  fill($("who"), "signed in as ", h("b", {}, who.owner), ` · ${who.role}`);
  showChrome(true);
  await loadPickers();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopLive();
  session.token = null;
  Object.assign(state, { who: null, lastSeq: 0, status: null, epoch: state.epoch + 1 });
  showChrome(false);
  $("token").value = "";
  showSigninError(message || "");
}

function showChrome(signedIn) {
  for (const id of ["who", "signout", "pickers", "feed", "app-view"]) $(id).hidden = !signedIn;
  $("signin-view").hidden = signedIn;
}

function showSigninError(message) {
  $("signin-error").hidden = !message;
  $("signin-error").textContent = message;
}

// ---------------------------------------------------------------- model and env pickers

async function loadPickers() {
  const [models, envs] = await Promise.all([api("models"), api("environments")]);
  const wanted = new URLSearchParams(location.hash.slice(1));
  fillSelect($("model"), models.map((m) => m.name), wanted.get("model"));
  const envNames = envs.map((e) => e.name);
  fillSelect($("env"), envNames, wanted.get("env") || (envNames.includes("production") ? "production" : ""));
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
  Object.assign(state, { model, env, lastSeq: 0, metrics: null, epoch: state.epoch + 1 });
  history.replaceState(null, "", `#${q({ model, env })}`);
  fill($("events"));
  await Promise.all([refresh(), loadEvents(), refreshChain(), refreshMetrics({ force: true })]);
  startLive();
}

function showBanner(text) {
  $("banner").hidden = !text;
  $("banner").textContent = text || "";
}

// ---------------------------------------------------------------- reading the panels

async function refresh() {
  const epoch = state.epoch;
  const env = q({ env: state.env });
  try {
    const [status, hist, versions, timeline, archives, quarantined] = await Promise.all([
      api(`${modelPath("status")}?${env}`), api(`${modelPath("history")}?${env}`),
      api(modelPath("versions")), api(`${modelPath("timeline")}?${env}`),
      api(`archives?${q({ model: state.model, env: state.env })}`), loadQuarantine(state.model),
    ]);
    if (epoch !== state.epoch) return;
    Object.assign(state, { status, history: hist, versions, timeline });
    showBanner("");
    drawServing();
    renderTimeline($("timeline"), { history: hist, versions, env: state.env,
      liveVersion: status.desired ? status.desired.version : null });
    renderArchives(archives);
    renderQuarantine($("quarantine"), quarantined, {
      model: state.model, allowed: canRollBack(),
      onDone: (v) => { showNotice(`Quarantine of ${vlabel(v.version)} lifted: it is ${v.status} again`); scheduleRefresh(); },
    });
    refreshMetrics({ force: true }); // a deploy or rollback: its marker and baseline at once
  } catch (err) {
    if (err.status !== 401) showBanner(`Could not load ${state.model} in ${state.env}: ${err.message}`);
  }
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(refresh, 250);
  scheduleChain();
}

function scheduleChain() {
  clearTimeout(state.chainTimer);
  state.chainTimer = setTimeout(refreshChain, 600);
}

// Replica reports change without an audit event (heartbeats, loading): re-read them on a timer.
async function refreshStatus() {
  const epoch = state.epoch;
  try {
    const status = await api(`${modelPath("status")}?${q({ env: state.env })}`);
    if (epoch !== state.epoch || $("rollback-dialog").open) return;
    state.status = status;
    drawServing();
  } catch {
    /* the next refresh, or the feed indicator, tells */
  }
}

// The metric history the replicas wrote to the registry: there even if no page was open.
async function refreshMetrics({ force = false } = {}) {
  const epoch = state.epoch, range = state.range;
  if (!force && Date.now() - state.historyAt < HISTORY_MS[range]) return;
  state.historyAt = Date.now();
  let view;
  try {
    view = await api(`${modelPath("metrics/history")}?${q({ env: state.env, since: range })}`);
  } catch (err) {
    const now = new Date();
    view = { points: [], spans: [], markers: [], resolution_s: 10, error: err.message,
      since: new Date(now - RANGES[range]).toISOString(), until: now.toISOString() };
  }
  if (epoch !== state.epoch || range !== state.range) return;
  state.metrics = view;
  drawCharts();
}

function drawCharts() {
  if (!state.metrics) return;
  $("metrics-note").textContent = metricsNote(state.metrics);
  renderCharts($("charts"), state.metrics);
}

function pickRange(range) {
  state.range = range;
  for (const b of document.querySelectorAll("button.range")) b.setAttribute("aria-pressed", String(b.dataset.range === range));
  refreshMetrics({ force: true });
}

// ---------------------------------------------------------------- serving and the button

function drawServing() {
  renderServing($("serving"), state.status, state.history);
  const allowed = canRollBack();
  const note = $("rollback-note");
  note.hidden = allowed;
  note.textContent = `${state.who ? state.who.role : ""} token: read only — rolling back needs the operator role`;
  const targets = eligibleTargets();
  if (allowed && state.status.desired && !targets.length) {
    note.hidden = false;
    note.textContent = "no verified version to roll back to";
  }
  $("rollback").disabled = !state.status.desired || !allowed || !targets.length;
  $("rollback").title = !allowed || !targets.length ? note.textContent
    : `dry run first, then confirm with a reason (candidates: ${targets.map(vlabel).join(", ")})`;
}

// Versions a rollback could pick (safety rule 5): verified here, not the live one, neither
// quarantined nor retired. The dry run still checks each; with none, the button stays off.
function eligibleTargets() {
  const live = state.status && state.status.desired ? state.status.desired.version : null;
  const status = new Map(state.versions.map((v) => [v.version, v.status]));
  const verified = new Set(state.history.filter((d) => d.verified).map((d) => d.version));
  return [...verified].filter((n) => n !== live && status.get(n) === "active").sort((a, b) => b - a);
}

function canRollBack() {
  return !!state.who && state.who.role !== "viewer";
}

function rollbackClicked() {
  openRollback({
    model: state.model, env: state.env, allowed: canRollBack(),
    onDone: (op) => {
      showNotice(`Rolled back ${vlabel(op.from_version)} → ${vlabel(op.target_version)} (${op.phase})`);
      scheduleRefresh();
    },
  });
}

function showNotice(text) {
  const note = $("notice");
  note.textContent = text;
  note.hidden = false;
  clearTimeout(state.noticeTimer);
  state.noticeTimer = setTimeout(() => { note.hidden = true; }, 15000);
}

// ---------------------------------------------------------------- audit log and live updates

async function loadEvents() {
  const epoch = state.epoch;
  let after = 0;
  let all = [];
  for (;;) { // page through this model's events; only the newest are kept on screen
    const page = await api(`events?${q({ model: state.model, after_seq: after, limit: 500 })}`);
    if (epoch !== state.epoch) return;
    all = all.concat(page).slice(-EVENTS_SHOWN);
    if (page.length < 500) break;
    after = page[page.length - 1].seq;
  }
  addEvents(all, false);
}

// Events of this model in this env (or in none, like a registration); returns how many were new.
function addEvents(list, fresh) {
  const rows = [];
  for (const ev of list) {
    if (ev.seq <= state.lastSeq) continue;
    state.lastSeq = ev.seq;
    if (ev.model === state.model && (!ev.env || ev.env === state.env)) rows.push(eventRow(ev, fresh));
  }
  prependRows($("events"), rows);
  return rows.length;
}

function onEvents(list) {
  const before = state.lastSeq;
  if (addEvents(list, true)) scheduleRefresh();
  else if (state.lastSeq > before) scheduleChain();
}

function startLive() {
  stopLive();
  state.feed = new Feed({
    model: state.model, after: () => state.lastSeq, onEvents,
    onMode: (mode, text) => { $("feed").className = `feed ${mode}`; $("feed").textContent = text; },
  });
  state.feed.start();
  state.metricsTimer = setInterval(() => { refreshMetrics(); refreshStatus(); }, METRICS_MS);
}

function stopLive() {
  if (state.feed) state.feed.stop();
  clearInterval(state.metricsTimer);
  state.feed = state.metricsTimer = null;
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

// A link cannot send the token, so the bundle is fetched and handed to the browser as a file.
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
  session.onUnauthorized = (err) => { if (state.who) signOut(`Signed out: ${err.message}`); };
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
  $("rollback").addEventListener("click", rollbackClicked);
  for (const b of document.querySelectorAll("button.range")) b.addEventListener("click", () => pickRange(b.dataset.range));
  wireRollback();
  wireLift();
  let resizing = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizing);
    resizing = setTimeout(drawCharts, 150);
  });
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved).catch((err) => signOut(`Please sign in again: ${err.message}`));
}

wire();
