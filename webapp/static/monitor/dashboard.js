// The dashboard: the last hour of samples over REST, then each new sample as the web
// pushes it on the "workers" topic (dashboard.sample); charts are drawn in SVG.
import { $ } from "../js/dom.js";
import { subscribe } from "../js/live.js";
import { drawChart } from "./chart.js";
import { mapi, num, seconds } from "./common.js";

const KEEP = 3600;
const COLORS = { success: "#10B981", failure: "#EF4444", pending: "#3B82F6", started: "#F59E0B", p50: "#3B82F6", p95: "#F59E0B", workers: "#8B5CF6" };
let samples = [];
let windowSeconds = 900;
let pending = false;

function tile(name, text) {
  const dd = document.querySelector(`[data-tile="${name}"] dd`);
  if (dd) dd.textContent = text;
}

function pair(a, b) {
  return `${seconds(a)} / ${seconds(b)}`;
}

function render() {
  pending = false;
  const last = samples[samples.length - 1];
  if (last) {
    tile("throughput", `${num(last.throughput, 1)} /s`);
    tile("succeeded", num(last.succeeded, 1));
    tile("failed", num(last.failed, 1));
    tile("runtime", pair(last.runtime_p50, last.runtime_p95));
    tile("wait", pair(last.wait_p50, last.wait_p95));
    tile("queued", num(last.queued));
    tile("workers", num(last.workers_online));
    tile("active", num(last.active));
    document.body.dataset.lastSample = String(last.ts);
  }
  const to = last ? Math.max(last.ts, Date.now() / 1000) : Date.now() / 1000;
  const from = to - windowSeconds;
  const pts = (key) => samples.map((s) => [s.ts, s[key]]);
  drawChart($("#chart-rate"), [
    { name: "succeeded", color: COLORS.success, points: pts("succeeded") },
    { name: "failed", color: COLORS.failure, points: pts("failed") },
  ], { from, to, fmt: (v) => v.toFixed(1), label: "Tasks per second" });
  drawChart($("#chart-runtime"), [
    { name: "p50", color: COLORS.p50, points: pts("runtime_p50") },
    { name: "p95", color: COLORS.p95, points: pts("runtime_p95") },
  ], { from, to, fmt: seconds, label: "Runtime" });
  drawChart($("#chart-wait"), [
    { name: "p50", color: COLORS.p50, points: pts("wait_p50") },
    { name: "p95", color: COLORS.p95, points: pts("wait_p95") },
  ], { from, to, fmt: seconds, label: "Queue wait" });
  drawChart($("#chart-depth"), [
    { name: "queued", color: COLORS.pending, points: pts("queued") },
    { name: "workers online", color: COLORS.workers, points: pts("workers_online") },
  ], { from, to, fmt: (v) => v.toFixed(0), label: "Queue depth and workers" });
  $("#dash-status").textContent = `${samples.length} samples; a new one every 2 s.`;
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
    samples = data.samples;
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
  onResubscribed: load,
});
load();
setInterval(render, 10_000); // slide the window even when nothing comes
window.addEventListener("resize", scheduleRender);
