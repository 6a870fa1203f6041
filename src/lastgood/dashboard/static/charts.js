// Live metrics as inline SVG: the live version's points, the verified baseline (dashed) and the
// band a default health policy tolerates, with deploy and rollback markers from the timeline.
import { fill, h, s, vlabel, when } from "./dom.js";

const CHARTS = [
  { key: "latency_p95_ms", title: "latency p95", fmt: (v) => `${v.toFixed(v < 10 ? 2 : 0)} ms` },
  { key: "error_rate", title: "error rate", rate: true, fmt: (v) => `${(v * 100).toFixed(2)} %` },
  { key: "accuracy", title: "accuracy", rate: true, fmt: (v) => `${(v * 100).toFixed(1)} %` },
];
const WINDOW_MS = 15 * 60000;
const MIN_WINDOW_MS = 30000;

// Finished deploys and rollbacks of the timeline, as chart markers.
function markers(timeline) {
  const out = [];
  for (const op of timeline.operations || []) {
    if (op.phase !== "succeeded" && op.phase !== "escalated") continue;
    const rollback = op.kind === "rollback";
    out.push({ t: Date.parse(op.updated_at), kind: rollback ? "rollback" : "deploy",
      label: `${rollback ? "↩" : "▲"} ${vlabel(op.target_version)}` });
  }
  return out;
}

// What the note beside the title says: where the points come from, or why there are none.
export function metricsNote(m) {
  if (m.error) return `metrics unavailable: ${m.error}`;
  if (!(m.points || []).length) return m.source ? `waiting for traffic (${m.source})` : "no live metrics source";
  return `${m.source || "live"} · baseline ${m.baseline_version ? vlabel(m.baseline_version) : "—"}`;
}

export function renderCharts(box, metrics, timeline) {
  const points = metrics.points || [];
  const baseline = metrics.baseline || {};
  const band = metrics.band || {};
  const marks = markers(timeline);
  const rect = box.getBoundingClientRect();
  const size = { W: Math.max(200, Math.floor((rect.width - 24) / 3)), H: Math.max(110, Math.floor(rect.height - 22)) };
  fill(box, CHARTS.map((c) => chart(c, points, baseline[c.key], band[c.key], marks, size, metricsNote(metrics))));
}

// From the first point (or just before the latest deploy or rollback) to now: at least 30 s and
// at most 15 minutes, so a freshly opened page does not squeeze its few points into a corner.
function timeWindow(times, marks) {
  const t1 = Math.max(times[times.length - 1], Date.now());
  const recent = marks.map((mk) => mk.t).filter((t) => t < t1 && t > t1 - WINDOW_MS);
  let t0 = Math.max(times[0], t1 - WINDOW_MS);
  if (recent.length) t0 = Math.min(t0, Math.max(...recent) - 3000);
  return [Math.min(t0, t1 - MIN_WINDOW_MS), t1];
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

function yRange(spec, values, band, base) {
  const ys = values.concat(band || [], base ?? []);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= Math.abs(y0) * 0.1 + 1e-3; y1 += Math.abs(y1) * 0.1 + 1e-3; }
  const pad = (y1 - y0) * 0.12;
  return [Math.max(0, y0 - pad), spec.rate ? Math.min(1, y1 + pad) : y1 + pad];
}

function chart(spec, points, base, band, marks, { W, H }, emptyNote) {
  const vals = points.filter((p) => p[spec.key] !== null && p[spec.key] !== undefined);
  const last = vals.length ? vals[vals.length - 1][spec.key] : null;
  const head = h("h3", {}, spec.title,
    base !== null && base !== undefined ? h("span", { class: "muted" }, `baseline ${spec.fmt(base)}`) : null,
    h("span", { class: "now", "data-testid": `now-${spec.key}` }, last === null ? "—" : spec.fmt(last)));
  const L = 48, R = 6, T = 8, B = 16;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": `${spec.title} chart`, "data-testid": `chart-${spec.key}` });
  if (!vals.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, emptyNote));
    return h("div", { class: "chart" }, head, svg);
  }
  const times = vals.map((p) => Date.parse(p.t));
  const [t0, t1] = timeWindow(times, marks);
  const shown = vals.map((p, i) => [times[i], p[spec.key]]).filter(([t]) => t >= t0);
  const [y0, y1] = yRange(spec, shown.map(([, v]) => v), band, base);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  svg.append(s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }),
    s("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, spec.fmt(y1)),
    s("text", { x: L - 4, y: H - B, "text-anchor": "end" }, spec.fmt(y0)),
    s("text", { x: L, y: H - 3 }, when(new Date(t0).toISOString())),
    s("text", { x: W - R, y: H - 3, "text-anchor": "end" }, "now"));
  if (band) {
    svg.append(s("rect", { x: L, width: W - L - R, y: y(Math.max(...band)),
      height: Math.abs(y(band[0]) - y(band[1])), class: "band" }));
  }
  if (base !== null && base !== undefined) {
    svg.append(s("line", { x1: L, x2: W - R, y1: y(base), y2: y(base), class: "base" }));
  }
  drawMarkers(svg, marks.filter((mk) => mk.t >= t0 && mk.t <= t1), x, { W, R, T, B, H });
  svg.append(s("polyline", { class: "series", points: shown.map(([t, v]) => `${x(t)},${y(v)}`).join(" ") }));
  if (shown.length === 1) svg.append(s("circle", { cx: x(shown[0][0]), cy: y(shown[0][1]), r: 2.5, class: "dot" }));
  return h("div", { class: "chart" }, head, svg);
}
