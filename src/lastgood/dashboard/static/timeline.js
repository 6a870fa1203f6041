// The version timeline: one row per version, one block per deployment from when it went live to
// when it ended, on a time-proportional axis (first deployment to now) with ticks that never
// overlap; marked verified, rolled back or live; quarantined versions are struck through.
import { tickLabel, ticks } from "./charts.js";
import { fill, h, s, vlabel, when } from "./dom.js";

const ROW = 26, LEFT = 162, TOP = 6, MIN_W = 3;

// history: deployment views; versions: version views; liveVersion: the desired version.
export function renderTimeline(box, { history, versions, liveVersion, env }) {
  const deps = [...history].sort((a, b) => Date.parse(a.started_at) - Date.parse(b.started_at));
  if (!deps.length) {
    fill(box, h("p", { class: "muted" }, `Nothing deployed to ${env} yet.`));
    return;
  }
  const rowsOf = [...new Set(deps.map((d) => d.version))].sort((a, b) => b - a);
  const W = Math.max(420, Math.floor(box.getBoundingClientRect().width) - 4);
  const H = TOP + rowsOf.length * ROW + 18;
  const now = Date.now();
  const t0 = Date.parse(deps[0].started_at), t1 = Math.max(now, t0 + 60e3);
  const width = W - LEFT - 10;
  const x = (t) => LEFT + ((t - t0) / (t1 - t0)) * width;
  const svg = s("svg", { width: W, height: H, role: "img", "aria-label": "deployments over time",
    "data-testid": "timeline-svg", "data-t0": new Date(t0).toISOString(), "data-t1": new Date(t1).toISOString() });
  rowsOf.forEach((n, i) => svg.append(
    rowLabel(n, versions.find((v) => v.version === n), n === liveVersion, TOP + i * ROW + ROW / 2)));
  for (const t of ticks(t0, t1, width, 56)) {
    svg.append(s("line", { x1: x(t), x2: x(t), y1: TOP, y2: H - 16, class: "axis" }),
      s("text", { x: x(t), y: H - 4, "text-anchor": "middle", class: "tick", "data-testid": "timeline-tick" },
        tickLabel(t, t1 - t0)));
  }
  let prev = null;
  for (const d of deps) {
    const xa = x(Date.parse(d.started_at)), xb = x(d.ended_at ? Date.parse(d.ended_at) : now);
    const cy = TOP + rowsOf.indexOf(d.version) * ROW + ROW / 2;
    if (prev) svg.append(s("path", { d: `M${prev[0]},${prev[1]} L${xa},${cy}`, class: "axis" }));
    svg.append(segment(d, xa, cy, Math.max(xb - xa, MIN_W)));
    prev = [Math.max(xb, xa + MIN_W), cy];
  }
  fill(box, svg);
}

function rowLabel(n, info, live, cy) {
  const status = info ? info.status : "";
  const g = s("g", { "data-testid": "timeline-row", "data-version": n, "data-status": status });
  const label = s("text", { x: 4, y: cy + 4, class: `row-label ${status}` },
    `${vlabel(n)}${info && info.tag ? ` ${info.tag}` : ""}`);
  // A version imported from MLflow links to its page there (only http(s) pages: the API
  // sends no link for any other tracking URI).
  const url = info && info.mlflow_url;
  g.append(url && /^https?:\/\//i.test(url)
    ? s("a", { href: url, target: "_blank", rel: "noopener noreferrer", "data-testid": "mlflow-link" },
      s("title", {}, "open this version in MLflow"), label)
    : label);
  const note = status === "quarantined" || status === "retired" ? status : live ? "live" : "";
  if (note) g.append(s("text", { x: 86, y: cy + 4, class: `row-note ${status}` }, note));
  return g;
}

function segment(d, x, cy, width) {
  const kind = d.end === "rolled_back" ? "ended" : d.verified ? "verified" : "unverified";
  const title = [`${vlabel(d.version)} deployed ${when(d.started_at)} by ${d.deployed_by}: ${d.reason}`,
    d.verified ? `verified by ${d.verified.approver} at ${when(d.verified.at)}` : "never verified",
    d.ended_at ? `ended ${when(d.ended_at)}: ${d.end}${d.end_reason ? ` (${d.end_reason})` : ""}` : "live now"].join("\n");
  const g = s("g", { "data-testid": "timeline-deployment", "data-version": d.version,
    "data-verified": d.verified ? "yes" : "no", "data-end": d.end || "live" },
  s("title", {}, title),
  s("rect", { x, y: cy - 8, width, height: 16, rx: 4, class: `seg ${kind}` }));
  const label = d.verified ? "✓ verified" : d.end === "rolled_back" ? "↩ rolled back" : !d.ended_at ? "live" : "";
  if (label && width > 78) g.append(s("text", { x: x + 5, y: cy + 4, class: "check" }, label));
  return g;
}
