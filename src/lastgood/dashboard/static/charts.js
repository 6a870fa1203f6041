// Metric history as inline SVG, read from the registry (the replicas write it, so it is there
// when the page opens): every version's points on a time-proportional axis, the baseline band
// of the version each span was judged against, deploy / rollback / verify markers, and gaps
// (buckets nobody served or reported) left as gaps.
import { fill, h, s, vlabel } from "./dom.js";

const CHARTS = [
  { key: "latency_p95_ms", title: "latency p95", fmt: (v) => `${v.toFixed(v < 10 ? 2 : 0)} ms` },
  { key: "error_rate", title: "error rate", rate: true, fmt: (v) => `${(v * 100).toFixed(2)} %` },
  { key: "accuracy", title: "accuracy", rate: true, fmt: (v) => `${(v * 100).toFixed(1)} %` },
];
const DRIFT = { key: "drift_psi", title: "drift (PSI)", fmt: (v) => v.toFixed(v < 1 ? 3 : 2) };
const MAX_CUSTOM = 3; // custom metric charts shown beside the others (the first by name)
export const RANGES = { "1h": 3600e3, "1d": 86400e3, "1w": 7 * 86400e3 };
const MARK_LABEL = { deploy: "▲", rollback: "↩", verify: "✓" };

// What the note beside the title says: the span and its baseline, or why there is nothing.
export function metricsNote(view) {
  if (view.error) return `history unavailable: ${view.error}`;
  const live = (view.spans || []).filter((sp) => !sp.end).pop();
  const base = live && live.reference_version
    ? `baseline of ${vlabel(live.version)}: ${vlabel(live.reference_version)}'s record`
    : live ? `${vlabel(live.version)} has no baseline yet` : "";
  const res = `${view.resolution_s >= 60 ? `${view.resolution_s / 60} min` : `${view.resolution_s} s`} buckets`;
  if (!(view.points || []).length) return `no traffic recorded in this range${base ? ` · ${base}` : ""}`;
  return [res, base, view.truncated ? "cut short" : ""].filter(Boolean).join(" · ");
}

// A point's value of a chart: a signal, or a custom metric's mean ("custom.<name>").
function pv(p, key) {
  return key.startsWith("custom.") ? (p.custom || {})[key.slice(7)] : p[key];
}

function fmtNumber(v) {
  const a = Math.abs(v);
  return a >= 1000 || (a > 0 && a < 0.01) ? v.toPrecision(3) : v.toFixed(a >= 100 ? 0 : 2);
}

// The charts of a view: latency, errors, accuracy always; drift when a point has it (the span's
// baseline holds a distribution); each custom metric the feedback carried, by name.
export function chartsOf(view) {
  const points = view.points || [];
  const out = [...CHARTS];
  if (points.some((p) => p.drift_psi !== null && p.drift_psi !== undefined)) out.push(DRIFT);
  const names = [...new Set(points.flatMap((p) => Object.keys(p.custom || {})))].sort();
  for (const name of names.slice(0, MAX_CUSTOM)) {
    out.push({ key: `custom.${name}`, title: `${name} (custom, mean)`, fmt: fmtNumber, signed: true });
  }
  return out;
}

export function renderCharts(box, view) {
  const rect = box.getBoundingClientRect();
  const specs = chartsOf(view);
  const rows = Math.ceil(specs.length / 3);
  const size = { W: Math.max(200, Math.floor((rect.width - 24) / 3)),
    H: Math.max(rows > 1 ? 80 : 110, Math.floor((rect.height - 12 * (rows - 1)) / rows - 22)) };
  const t0 = Date.parse(view.since), t1 = Date.parse(view.until);
  fill(box, specs.map((c) => chart(c, view, [t0, t1], size)));
}

const testKey = (key) => key.replace(/[^A-Za-z0-9_-]/g, "-");

// Runs of consecutive buckets of one version: a missing bucket or another version ends a run.
function runs(points, key, stepMs) {
  const out = [];
  let run = null, prev = null;
  for (const p of points) {
    const v = pv(p, key);
    if (v === null || v === undefined) { run = null; continue; }
    const t = Date.parse(p.t);
    if (!run || run.version !== p.version || t - prev > stepMs * 1.5) {
      run = { version: p.version, pts: [] };
      out.push(run);
    }
    run.pts.push([t, v]);
    prev = t;
  }
  return out;
}

// Readable tick times: the local clock for an hour or a day, the date for a week.
export function tickLabel(t, spanMs) {
  const d = new Date(t);
  if (spanMs > 2 * 86400e3) return d.toLocaleDateString([], { month: "short", day: "numeric" });
  return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
}

const STEPS = [60e3, 300e3, 600e3, 1800e3, 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3];

// Ticks on whole minutes/hours/days, as many as fit without their labels touching.
export function ticks(t0, t1, widthPx, labelPx = 46) {
  const most = Math.max(2, Math.floor(widthPx / (labelPx + 8)));
  const step = STEPS.find((st) => (t1 - t0) / st <= most) || 86400e3 * Math.ceil((t1 - t0) / 86400e3 / most);
  const offset = new Date(t0).getTimezoneOffset() * 60e3;
  const out = [];
  for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) out.push(t);
  return out;
}

function yRange(spec, values, spans) {
  const ys = values.concat(...spans.map((sp) => (sp.band[spec.key] || []).concat(sp.values[spec.key] ?? [])));
  if (!ys.length) return [0, spec.rate ? 1 : 1];
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= Math.abs(y0) * 0.1 + 1e-3; y1 += Math.abs(y1) * 0.1 + 1e-3; }
  const pad = (y1 - y0) * 0.12;
  return [spec.signed ? y0 - pad : Math.max(0, y0 - pad), spec.rate ? Math.min(1, y1 + pad) : y1 + pad];
}

// Newest first; a label that would overlap the one to its right is left out (its line stays).
function drawMarkers(svg, markers, x, { W, R, T, B, H }) {
  let freeLeftOf = Infinity;
  for (const mk of [...markers].sort((a, b) => Date.parse(b.t) - Date.parse(a.t))) {
    const px = x(Date.parse(mk.t));
    svg.append(s("line", { x1: px, x2: px, y1: T, y2: H - B, class: `marker ${mk.kind}`,
      "data-testid": `marker-${mk.kind}` }, s("title", {}, mk.text)));
    if (px > freeLeftOf) continue;
    const label = `${MARK_LABEL[mk.kind] || ""} ${vlabel(mk.version)}`;
    const right = px + 40 > W - R;
    svg.append(s("text", { x: right ? px - 3 : px + 3, y: T + 8, "text-anchor": right ? "end" : "start",
      class: `marker ${mk.kind}` }, label));
    freeLeftOf = right ? px - 80 : px - 44;
  }
}

function chart(spec, view, [t0, t1], { W, H }) {
  const points = view.points || [];
  const spans = (view.spans || []).filter((sp) => Date.parse(sp.start) < t1 && (!sp.end || Date.parse(sp.end) > t0));
  const vals = points.filter((p) => pv(p, spec.key) !== null && pv(p, spec.key) !== undefined);
  const liveSpan = spans.filter((sp) => !sp.end).pop();
  // "now" is the live version's latest value (a switch's bucket holds both versions' points)
  const liveVals = liveSpan ? vals.filter((p) => p.version === liveSpan.version) : vals;
  const last = liveVals.length ? pv(liveVals[liveVals.length - 1], spec.key) : null;
  const base = liveSpan ? liveSpan.values[spec.key] : undefined;
  const head = h("h3", {}, spec.title,
    base !== undefined ? h("span", { class: "muted", "data-testid": `baseline-${testKey(spec.key)}` },
      `baseline ${spec.fmt(base)} (${vlabel(liveSpan.reference_version)})`) : null,
    h("span", { class: "now", "data-testid": `now-${testKey(spec.key)}` }, last === null ? "—" : spec.fmt(last)));
  const L = 48, R = 6, T = 10, B = 16;
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img",
    "aria-label": `${spec.title} chart`, "data-testid": `chart-${testKey(spec.key)}` });
  const x = (t) => L + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * (W - L - R);
  const [y0, y1] = yRange(spec, vals.map((p) => pv(p, spec.key)), spans);
  const y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
  svg.append(s("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis" }),
    s("text", { x: L - 4, y: T + 8, "text-anchor": "end" }, spec.fmt(y1)),
    s("text", { x: L - 4, y: H - B, "text-anchor": "end" }, spec.fmt(y0)));
  for (const t of ticks(t0, t1, W - L - R)) {
    svg.append(s("line", { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 3, class: "axis" }),
      s("text", { x: x(t), y: H - 3, "text-anchor": "middle", class: "tick", "data-testid": "chart-tick" },
        tickLabel(t, t1 - t0)));
  }
  for (const sp of spans) { // the band and the baseline of the version each span was judged against
    const band = sp.band[spec.key], value = sp.values[spec.key];
    const xa = x(Date.parse(sp.start)), xb = x(sp.end ? Date.parse(sp.end) : t1);
    const attrs = { "data-version": sp.version, "data-reference": sp.reference_version ?? "" };
    if (band) {
      svg.append(s("rect", { x: xa, width: Math.max(xb - xa, 1), y: y(Math.max(...band)),
        height: Math.abs(y(band[0]) - y(band[1])), class: "band", "data-testid": `band-${testKey(spec.key)}`, ...attrs }));
    }
    if (value !== undefined) {
      svg.append(s("line", { x1: xa, x2: xb, y1: y(value), y2: y(value), class: "base",
        "data-testid": `base-${testKey(spec.key)}`, ...attrs }));
    }
  }
  drawMarkers(svg, (view.markers || []).filter((mk) => Date.parse(mk.t) >= t0), x, { W, R, T, B, H });
  if (!vals.length) {
    svg.append(s("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty" }, "no traffic in this range"));
  }
  for (const run of runs(points, spec.key, view.resolution_s * 1000)) {
    const cls = `series v${run.version % 6}`;
    if (run.pts.length === 1) {
      const [[t, v]] = run.pts;
      svg.append(s("circle", { cx: x(t), cy: y(v), r: 2, class: `dot ${cls}`, "data-testid": `run-${testKey(spec.key)}`,
        "data-version": run.version }));
    } else {
      svg.append(s("polyline", { class: cls, "data-testid": `run-${testKey(spec.key)}`, "data-version": run.version,
        points: run.pts.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ") }));
    }
  }
  return h("div", { class: "chart" }, head, svg);
}
