// The dashboard: the last hour of samples over REST, then each new sample as the web
// pushes it on the "workers" topic (dashboard.sample); charts are drawn in SVG.
import { $ } from "../js/dom.js";
import { subscribe } from "../js/live.js";
import { drawChart } from "./chart.js";
import { mapi, num, seconds } from "./common.js";

const KEEP = 3600;
// With less data than the chosen window, the charts span what there is (at least this
// many seconds), so the first points are not squeezed against the right edge.
const MIN_SPAN = 10;
const COLORS = { success: "#10B981", failure: "#EF4444", pending: "#3B82F6", started: "#F59E0B", p50: "#3B82F6", p95: "#F59E0B", workers: "#8B5CF6" };
const RATE = { units: [{ unit: "tasks/s", scale: 1 }], floor: 1 };
const DURATION = {
  units: [{ unit: "ms", scale: 1000, below: 0.9 }, { unit: "s", scale: 1, below: 100 }, { unit: "min", scale: 1 / 60 }],
  floor: 0.01,
};
const COUNT = { units: [{ unit: "", scale: 1 }], floor: 1, integer: true };
let samples = [];
let windowSeconds = 900;
let rateWindow = 30;
let pending = false;

function tile(name, text, value) {
  const dd = document.querySelector(`[data-tile="${name}"] dd`);
  if (!dd) return;
  dd.textContent = text;
  if (value !== undefined) dd.dataset.value = value === null ? "" : String(value);
}

function pair(a, b) {
  return `${seconds(a)} / ${seconds(b)}`;
}

function render() {
  pending = false;
  const last = samples[samples.length - 1];
  if (last) {
    tile("throughput", `${num(last.throughput, 2)} tasks/s`, last.throughput);
    tile("succeeded", num(last.succeeded, 2), last.succeeded);
    tile("failed", num(last.failed, 2), last.failed);
    tile("runtime", pair(last.runtime_p50, last.runtime_p95));
    tile("wait", pair(last.wait_p50, last.wait_p95));
    tile("queued", num(last.queued));
    tile("workers", num(last.workers_online));
    tile("active", num(last.active));
    document.body.dataset.lastSample = String(last.ts);
  }
  const to = last ? Math.max(last.ts, Date.now() / 1000) : Date.now() / 1000;
  const first = samples.find((s) => s.ts >= to - windowSeconds);
  const from = Math.max(to - windowSeconds, Math.min(first ? first.ts : to, to - MIN_SPAN));
  const pts = (key) => samples.map((s) => [s.ts, s[key] ?? null]);
  drawChart($("#chart-rate"), [
    { name: "succeeded", color: COLORS.success, points: pts("succeeded") },
    { name: "failed", color: COLORS.failure, points: pts("failed") },
  ], { from, to, ...RATE, label: "Tasks per second" });
  drawChart($("#chart-runtime"), [
    { name: "p50", color: COLORS.p50, points: pts("runtime_p50") },
    { name: "p95", color: COLORS.p95, points: pts("runtime_p95") },
  ], { from, to, ...DURATION, label: "Runtime" });
  drawChart($("#chart-wait"), [
    { name: "p50", color: COLORS.p50, points: pts("wait_p50") },
    { name: "p95", color: COLORS.p95, points: pts("wait_p95") },
  ], { from, to, ...DURATION, label: "Queue wait" });
  drawChart($("#chart-depth"), [
    { name: "queued", color: COLORS.pending, points: pts("queued") },
    { name: "workers online", color: COLORS.workers, points: pts("workers_online") },
  ], { from, to, ...COUNT, label: "Queue depth and workers" });
  $("#dash-status").textContent = `${samples.length} samples, a new one every 2 s; rates and percentiles are over the last ${rateWindow} s.`;
}

function scheduleRender() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(render);
  setTimeout(() => pending && render(), 300);
}

async function load() {
  try {
    const data = await mapi(`/api/monitor/dashboard?window=${KEEP}`);
    // Samples pushed while the request was under way may be newer than what it read.
    const fetched = data.samples;
    const newest = fetched.length ? fetched[fetched.length - 1].ts : -Infinity;
    samples = fetched.concat(samples.filter((s) => s.ts > newest));
    rateWindow = data.rate_window ?? rateWindow;
    render();
  } catch (e) {
    $("#dash-status").textContent = `Could not load samples: ${e.message}`;
  }
}

for (const b of document.querySelectorAll("[data-window]")) {
  b.addEventListener("click", () => {
    windowSeconds = Number(b.dataset.window);
    for (const o of document.querySelectorAll("[data-window]")) o.setAttribute("aria-pressed", String(o === b));
    render();
  });
}

subscribe("workers", {
  onEvents(events) {
    for (const ev of events) {
      if (ev.type !== "dashboard.sample") continue;
      if (samples.length && ev.data.ts <= samples[samples.length - 1].ts) continue;
      samples.push(ev.data);
    }
    const cutoff = Date.now() / 1000 - KEEP;
    while (samples.length && samples[0].ts < cutoff) samples.shift();
    scheduleRender();
  },
  // Loaded once the feed is live (and again after each reconnect), so no sample falls
  // between the REST answer and the first pushed one; before that, as soon as we can.
  onSubscribed: load,
});
load();
setInterval(render, 10_000); // slide the window even when nothing comes
window.addEventListener("resize", scheduleRender);
