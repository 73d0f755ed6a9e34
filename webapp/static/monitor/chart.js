// Hand-written SVG line charts: time on x, one polyline per series, round ticks with units.
const NS = "http://www.w3.org/2000/svg";
const PAD = { r: 10, t: 10, b: 20 };
const CHAR_PX = 6.5; // an 11px tick label's average character width, to leave room for it
const X_STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]; // seconds between time ticks
const X_TICK_PX = 80; // at least this far apart: "hh:mm:ss" fits

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/** The round step (1, 2, 2.5 or 5 times a power of ten) at or above `raw`. */
export function niceStep(raw) {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
}

/** Decimals that show `step` (and its multiples) exactly: 0.25 → 2, 2.5 → 1, 20 → 0. */
function decimals(step) {
  let d = 0;
  while (d < 6 && Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) > 1e-6) d += 1;
  return d;
}

/**
 * The y axis for values up to `max` (already in the axis' unit): 0 to a round top with
 * about 10% headroom and never below `floor`, in `count` or so round steps.
 */
export function yTicks(max, { floor = 1, integer = false, count = 4 } = {}) {
  const top = Math.max(floor, max * 1.1);
  let step = niceStep(top / count);
  // Counts take whole steps; a round one (2.5 → 5, 0.5 → 1), not the next integer (3).
  if (integer && !Number.isInteger(step)) step = step < 1 ? 1 : niceStep(Math.ceil(step));
  const n = Math.ceil(top / step - 1e-9);
  return Array.from({ length: n + 1 }, (_, i) => Number((i * step).toFixed(decimals(step))));
}

/** Time ticks in (from, to]: on round local times, at least X_TICK_PX apart. */
export function xTicks(from, to, widthPx) {
  const most = Math.max(2, Math.floor(widthPx / X_TICK_PX));
  const step = X_STEPS.find((s) => (to - from) / s <= most) || X_STEPS[X_STEPS.length - 1];
  const offset = -new Date(from * 1000).getTimezoneOffset() * 60; // local minutes and hours
  const out = [];
  for (let t = Math.ceil((from + offset) / step) * step - offset; t <= to; t += step) out.push(t);
  return out;
}

const pad2 = (n) => String(n).padStart(2, "0");
/** hh:mm:ss, local time. */
export function clock(ts) {
  const d = new Date(ts * 1000);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/**
 * Draw into `svg` (an <svg> element): series = [{name, color, points: [[ts, value|null]...]}].
 * `from`/`to` are the window's ends (seconds since the epoch). `units` are the axis'
 * choices, smallest first: [{unit, scale, below}] (values are multiplied by `scale`;
 * the first unit whose `below` is above the largest value is taken); `floor` is the
 * least top of the axis (in the values' own unit), `integer` keeps steps whole.
 * The drawn scale is on the element's data- attributes (tests read them).
 */
export function drawChart(svg, series, { from, to, units = [{ unit: "", scale: 1 }], floor = 1, integer = false, label = "" }) {
  // Drawn at the element's own size: text and lines are never stretched.
  const W = Math.max(200, Math.round(svg.clientWidth || 600));
  const H = Math.max(80, Math.round(svg.clientHeight || 160));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const shown = (p) => p[0] >= from && p[0] <= to && p[1] !== null && p[1] !== undefined;
  const values = series.flatMap((s) => s.points.filter(shown).map((p) => p[1]));
  const largest = Math.max(floor, ...values);
  const u = units.find((c) => c.below === undefined || largest < c.below) || units[units.length - 1];
  const ticks = yTicks(Math.max(0, ...values) * u.scale, { floor: floor * u.scale, integer });
  const top = ticks[ticks.length - 1];
  const fmt = (v) => (u.unit ? `${v} ${u.unit}` : String(v));
  const left = Math.round(Math.max(...ticks.map((v) => fmt(v).length)) * CHAR_PX) + 10;
  const x = (t) => left + ((t - from) / Math.max(1, to - from)) * (W - left - PAD.r);
  const y = (v) => H - PAD.b - ((v * u.scale) / top) * (H - PAD.t - PAD.b);
  const kids = [];
  for (const v of ticks) {
    const py = (H - PAD.b - (v / top) * (H - PAD.t - PAD.b)).toFixed(1);
    if (v > 0) kids.push(node("line", { x1: left, y1: py, x2: W - PAD.r, y2: py, class: "grid" }));
    kids.push(node("text", { x: left - 4, y: py, dy: "0.32em", class: "tick y-tick", "text-anchor": "end", "data-value": v }, fmt(v)));
  }
  for (const t of xTicks(from, to, W - left - PAD.r)) {
    const px = x(t).toFixed(1);
    kids.push(node("line", { x1: px, y1: H - PAD.b, x2: px, y2: H - PAD.b + 4, class: "axis" }));
    kids.push(node("text", { x: px, y: H - 4, class: "tick x-tick", "text-anchor": "middle", "data-ts": t }, clock(t)));
  }
  kids.push(node("line", { x1: left, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b, class: "axis" }));
  kids.push(node("line", { x1: left, y1: PAD.t, x2: left, y2: H - PAD.b, class: "axis" }));
  for (const s of series) {
    // A gap (null) breaks the line rather than drawing it down to zero.
    let run = [];
    const flush = () => {
      if (run.length > 1) kids.push(node("polyline", { points: run.join(" "), fill: "none", stroke: s.color, "stroke-width": 1.6, class: "series", "data-series": s.name }));
      else if (run.length === 1) {
        const [px, py] = run[0].split(",");
        kids.push(node("circle", { cx: px, cy: py, r: 2, fill: s.color, class: "series", "data-series": s.name }));
      }
      run = [];
    };
    for (const p of s.points) {
      if (p[0] < from || p[0] > to) continue;
      if (shown(p)) run.push(`${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
      else flush();
    }
    flush();
  }
  const last = series.map((s) => {
    const p = [...s.points].reverse().find((q) => q[1] !== null && q[1] !== undefined);
    return `${s.name} ${p ? fmt(Number((p[1] * u.scale).toPrecision(3))) : "—"}`;
  });
  Object.assign(svg.dataset, { from: String(from), to: String(to), yTop: String(top), unit: u.unit, scale: String(u.scale), plotLeft: String(left), plotRight: String(W - PAD.r), plotTop: String(PAD.t), plotBottom: String(H - PAD.b) });
  svg.setAttribute("aria-label", `${label}: ${last.join(", ")}`);
  svg.replaceChildren(...kids);
}
