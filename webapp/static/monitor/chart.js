// Hand-written SVG line charts: time on x, one polyline per series, min/max labels.
const NS = "http://www.w3.org/2000/svg";
const PAD = { l: 60, r: 8, t: 8, b: 18 };

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

/**
 * Draw into `svg` (an <svg> element): series = [{name, color, points: [[ts, value|null]...]}].
 * `from`/`to` are the window's ends (seconds since the epoch); `fmt` labels the y axis.
 */
export function drawChart(svg, series, { from, to, fmt = (v) => v.toFixed(1), label = "" }) {
  // Drawn at the element's own size: text and lines are never stretched.
  const W = Math.max(200, Math.round(svg.clientWidth || 600));
  const H = Math.max(80, Math.round(svg.clientHeight || 160));
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const values = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null && v !== undefined));
  const max = Math.max(1e-9, ...values) * 1.1;
  const x = (t) => PAD.l + ((t - from) / Math.max(1, to - from)) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  const kids = [
    node("line", { x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b, class: "axis" }),
    node("line", { x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b, class: "axis" }),
    node("text", { x: PAD.l - 4, y: PAD.t + 10, class: "tick", "text-anchor": "end" }, fmt(max)),
    node("text", { x: PAD.l - 4, y: H - PAD.b, class: "tick", "text-anchor": "end" }, fmt(0)),
    node("text", { x: PAD.l, y: H - 3, class: "tick" }, new Date(from * 1000).toLocaleTimeString()),
    node("text", { x: W - PAD.r, y: H - 3, class: "tick", "text-anchor": "end" }, new Date(to * 1000).toLocaleTimeString()),
  ];
  for (const s of series) {
    // A gap (null) breaks the line rather than drawing it down to zero.
    let run = [];
    const flush = () => {
      if (run.length > 1) kids.push(node("polyline", { points: run.join(" "), fill: "none", stroke: s.color, "stroke-width": 1.6, class: "series", "data-series": s.name }));
      else if (run.length === 1) {
        const [px, py] = run[0].split(",");
        kids.push(node("circle", { cx: px, cy: py, r: 2, fill: s.color }));
      }
      run = [];
    };
    for (const [t, v] of s.points) {
      if (t < from) continue;
      if (v === null || v === undefined) flush();
      else run.push(`${x(t).toFixed(1)},${y(v).toFixed(1)}`);
    }
    flush();
  }
  const last = series.map((s) => {
    const p = [...s.points].reverse().find((q) => q[1] !== null && q[1] !== undefined);
    return `${s.name} ${p ? fmt(p[1]) : "—"}`;
  });
  svg.setAttribute("aria-label", `${label}: ${last.join(", ")}`);
  svg.replaceChildren(...kids);
}
