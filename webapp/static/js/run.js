// The run view (/jobs/<id>): header, live timeline, steps waterfall, output,
// logs, tool calls, progress, input/result/error panels, Cancel and Retry.
//
// The job and its events are loaded over REST, then followed over the
// WebSocket from the last seq seen. Events are queued and drawn once per
// animation frame; long lists keep only their newest rows in the DOM.
import { ApiError, answerJob, cancelJob, getAllEvents, getJob, retryJob } from "./api.js";
import { FINAL, $, clear, compact, duration, el, frameBatcher, isoTime, absTime, pretty, refreshTimes, setBadge, timeEl } from "./dom.js";
import { fold } from "./fold.js";
import { setLastSeq, subscribe } from "./live.js";

const TIMELINE_WINDOW = 300;
const LOG_WINDOW = 1000;
const STEP_WINDOW = 300;
const TOOL_WINDOW = 300;
const LATENCY_MAX = 100_000;

const root = $("#run");
const jobId = root.dataset.job;
const topic = `job:${jobId}`;
window.__agentdeckLatency = window.__agentdeckLatency || [];
const stats = (window.__agentdeckStats = { flushes: 0, flushMs: 0, drawn: 0 });

const ui = {
  agent: $("#run-agent"),
  state: $("#run-state"),
  cancel: $("#cancel"),
  retry: $("#retry"),
  outcome: $("#action-outcome"),
  facts: Object.fromEntries([...document.querySelectorAll("[data-fact]")].map((n) => [n.dataset.fact, n])),
  progressRow: $("#progress-row"),
  progress: $("#progress"),
  progressText: $("#progress-text"),
  runError: $("#run-error"),
  output: $("#output"),
  outputSize: $("#output-size"),
  steps: $("#steps"),
  stepsEmpty: $("#steps-empty"),
  tools: $("#tools"),
  toolsEmpty: $("#tools-empty"),
  logs: $("#logs"),
  logsEmpty: $("#logs-empty"),
  logLevel: $("#log-level"),
  input: $("#input"),
  resultPanel: $("#result-panel"),
  result: $("#result"),
  errorPanel: $("#error-panel"),
  error: $("#error"),
  traceback: $("#traceback"),
  timeline: $("#timeline"),
  hideOutput: $("#hide-output"),
  showEarlier: $("#show-earlier"),
  askPanel: $("#ask-panel"),
  askQuestion: $("#ask-question"),
  askForm: $("#ask-form"),
  askAnswer: $("#ask-answer"),
  askOutcome: $("#ask-outcome"),
};

// ---- the model ----------------------------------------------------------------

let job = null; // REST job object, kept current by fold.js
let events = []; // every event seen, in seq order
let lastSeq = 0;
let pending = []; // events received, not drawn yet
let timelineWindow = TIMELINE_WINDOW;
let outputText = null; // the Text node the output chunks are appended to
let outputChars = 0;
let steps = []; // {name, start, end, duration_ms, error, row, bar, label}
let tools = []; // {tool, args, result, error, row, resultNode}
let logCount = 0;
let t0 = null; // the run's time origin for the timeline and waterfall
let epoch = ""; // the Redis data generation our seqs count in

function fresh() {
  events = [];
  lastSeq = 0;
  pending = [];
  steps = [];
  tools = [];
  logCount = 0;
  t0 = null;
  outputChars = 0;
  outputText = document.createTextNode("");
  clear(ui.output).append(outputText);
  ui.output.dataset.empty = "true";
  clear(ui.steps);
  clear(ui.tools);
  clear(ui.logs);
  clear(ui.timeline);
  ui.stepsEmpty.hidden = false;
  ui.toolsEmpty.hidden = false;
  ui.logsEmpty.hidden = false;
  ui.progressRow.hidden = true;
}

// ---- header -------------------------------------------------------------------

function renderHeader() {
  if (!job) return;
  ui.agent.textContent = job.agent || job.name || "Job";
  document.title = `${job.agent || job.name || "Job"} ${jobId} · Agentdeck`;
  setBadge(ui.state, job.state);
  setFact("created", job.created_at);
  setFact("started", job.started_at);
  setFact("finished", job.finished_at);
  ui.facts.worker.textContent = job.worker || "—";
  ui.facts.retries.textContent = String(job.retries ?? 0);
  ui.facts.queue.textContent = job.queue || "—";
  ui.facts.events.textContent = String(lastSeq);
  renderDuration();
  const final = FINAL.has(job.state);
  ui.output.dataset.placeholder = final ? "No output." : "No output yet.";
  ui.cancel.disabled = final;
  ui.retry.disabled = !final;
  const input = pretty(job.input ?? null);
  if (ui.input.textContent !== input) ui.input.textContent = input;
  if (job.state === "SUCCESS" || job.result !== null && job.result !== undefined) {
    ui.resultPanel.hidden = false;
    ui.result.textContent = pretty(job.result ?? null);
  }
  if (job.error || job.traceback) {
    ui.errorPanel.hidden = false;
    ui.error.textContent = job.error || "";
    ui.traceback.textContent = job.traceback || "";
  }
}

function setFact(name, ts) {
  const node = ui.facts[name];
  if (ts === null || ts === undefined) {
    node.textContent = "—";
    return;
  }
  if (node.dataset.ts === String(ts)) return;
  node.dataset.ts = String(ts);
  clear(node).append(timeEl(ts), el("span", { class: "abs muted small" }, absTime(ts)));
}

function renderDuration() {
  if (!job) return;
  const start = job.started_at;
  const end = job.finished_at ?? (FINAL.has(job.state) ? null : Date.now() / 1000);
  ui.facts.duration.textContent = start && end ? duration(end - start) : "—";
}

function originOf() {
  if (t0 === null) t0 = job?.started_at ?? job?.created_at ?? events[0]?.ts ?? Date.now() / 1000;
  return t0;
}

function offset(ts) {
  const base = events[0]?.ts ?? originOf();
  const d = ts - base;
  return `+${d < 10 ? d.toFixed(3) : d.toFixed(1)} s`;
}

// ---- drawing ------------------------------------------------------------------

function summary(ev) {
  const d = ev.data || {};
  switch (ev.type) {
    case "output":
      return JSON.stringify(String(d.text ?? ""));
    case "log":
      return `[${d.level || "info"}] ${compact(d.message ?? "", 300)}`;
    case "step.started":
      return String(d.name ?? "");
    case "step.finished":
      return `${d.name ?? ""} · ${duration((d.duration_ms ?? 0) / 1000)}${d.error ? ` · ${d.error}` : ""}`;
    case "progress":
      return `${d.done} / ${d.total}`;
    case "tool.called":
      return `${d.tool}(${compact(d.args ?? {}, 200)})`;
    case "tool.returned":
      return `${d.tool} → ${d.error ? d.error : compact(d.result, 200)}`;
    case "job.queued":
      return [d.agent || d.name, d.queue && `queue ${d.queue}`].filter(Boolean).join(" · ");
    case "job.received":
    case "job.started":
      return d.worker ? `on ${d.worker}` : "";
    case "job.succeeded":
      return compact(d.result, 200);
    case "job.failed":
      return String(d.error ?? "");
    case "job.cancelled":
      return String(d.reason ?? "");
    case "job.lost":
      return String(d.error ?? "");
    case "job.retrying":
      return `${d.reason ?? ""}${d.retries !== undefined ? ` (retry ${d.retries})` : ""}`;
    case "input.requested":
      return String(d.question ?? "");
    case "input.received":
      return compact(d.answer, 200);
    default:
      return compact(d, 200);
  }
}

const typeClass = (type) => `ev-${String(type).replace(/[^a-z0-9]+/gi, "-")}`;

function timelineRow(ev) {
  return el(
    "li",
    { class: `ev ${typeClass(ev.type)}`, dataset: { seq: ev.seq, type: ev.type } },
    el("span", { class: "ev-seq" }, `#${ev.seq}`),
    el("time", { class: "ev-t", datetime: isoTime(ev.ts), title: absTime(ev.ts) }, offset(ev.ts)),
    el("span", { class: `ev-type ${ev.type.startsWith("job.") ? `state-${String(ev.state).toLowerCase()}` : ""}` }, ev.type),
    el("span", { class: "ev-sum" }, summary(ev)),
  );
}

function shownInTimeline(ev) {
  return !(ui.hideOutput.checked && ev.type === "output");
}

function rebuildTimeline() {
  const shown = events.filter(shownInTimeline);
  const from = Math.max(0, shown.length - timelineWindow);
  const frag = document.createDocumentFragment();
  for (let i = from; i < shown.length; i++) frag.append(timelineRow(shown[i]));
  clear(ui.timeline).append(frag);
  updateEarlier(from);
  markLong(ui.timeline);
}

function updateEarlier(hiddenCount) {
  ui.showEarlier.hidden = hiddenCount === 0;
  ui.showEarlier.textContent = `Show ${Math.min(hiddenCount, TIMELINE_WINDOW)} earlier of ${hiddenCount} hidden`;
  ui.showEarlier.dataset.hidden = String(hiddenCount);
}

function appendTimeline(batch) {
  const shown = batch.filter(shownInTimeline);
  // A burst longer than the window: rows that would be dropped at once are never built.
  const skip = Math.max(0, shown.length - timelineWindow);
  const frag = document.createDocumentFragment();
  for (let i = skip; i < shown.length; i++) frag.append(timelineRow(shown[i]));
  let extra = ui.timeline.childElementCount + shown.length - skip - timelineWindow;
  const hidden = Number(ui.showEarlier.dataset.hidden || 0) + skip + Math.max(0, extra);
  while (extra-- > 0) ui.timeline.firstElementChild.remove();
  ui.timeline.append(frag);
  if (hidden) updateEarlier(hidden);
  markLong(ui.timeline);
}

const LONG_LIST = 100;
function markLong(list) {
  const long = list.childElementCount > LONG_LIST;
  if (list.classList.contains("long") !== long) list.classList.toggle("long", long);
}

function drawOutput(ev) {
  const text = String(ev.data?.text ?? "");
  outputText.appendData(text);
  outputChars += text.length;
  if (outputChars) ui.output.dataset.empty = "false";
}

function stepAt(name) {
  for (let i = steps.length - 1; i >= 0; i--) if (steps[i].name === name && steps[i].end === null) return steps[i];
  return null;
}

function drawStep(ev) {
  const d = ev.data || {};
  const name = String(d.name ?? "");
  if (ev.type === "step.started") {
    const bar = el("span", { class: "wf-bar running" });
    const label = el("span", { class: "wf-dur muted small" }, "running…");
    const row = el(
      "li",
      { class: "wf-row", dataset: { step: name } },
      el("span", { class: "wf-name" }, name),
      el("span", { class: "wf-track", "aria-hidden": "true" }, bar),
      label,
    );
    const step = { name, start: ev.ts, end: null, error: null, row, bar, label };
    steps.push(step);
    ui.steps.append(row);
    ui.stepsEmpty.hidden = true;
    while (ui.steps.childElementCount > STEP_WINDOW) ui.steps.firstElementChild.remove();
    return;
  }
  let step = stepAt(name);
  if (!step) {
    drawStep({ ...ev, type: "step.started", ts: ev.ts - (d.duration_ms ?? 0) / 1000 });
    step = stepAt(name);
  }
  step.end = ev.ts;
  step.duration_ms = d.duration_ms;
  step.bar.classList.remove("running");
  step.label.textContent = duration((d.duration_ms ?? (ev.ts - step.start) * 1000) / 1000);
  if (d.error) {
    step.error = String(d.error);
    step.row.classList.add("failed");
    step.bar.classList.add("failed");
    step.row.append(el("span", { class: "wf-error" }, step.error));
  }
}

function layoutWaterfall() {
  if (!steps.length) return;
  const origin = steps[0].start;
  const now = Date.now() / 1000;
  const running = !FINAL.has(job?.state);
  let end = origin;
  for (const s of steps) end = Math.max(end, s.end ?? (running ? now : s.start));
  const span = Math.max(end - origin, 0.001);
  const from = Math.max(0, steps.length - STEP_WINDOW);
  for (let i = from; i < steps.length; i++) {
    const s = steps[i];
    const stop = s.end ?? (running ? now : s.start);
    s.bar.style.marginLeft = `${((s.start - origin) / span) * 100}%`;
    s.bar.style.width = `${Math.max(((stop - s.start) / span) * 100, 0.6)}%`;
    if (s.end === null && running) s.label.textContent = `${duration(now - s.start)}…`;
  }
}

const LEVELS = { debug: 10, info: 20, warning: 30, warn: 30, error: 40, critical: 50 };

function drawLog(ev) {
  const d = ev.data || {};
  const level = String(d.level || "info").toLowerCase();
  const rank = LEVELS[level] ?? 20;
  ui.logs.append(
    el(
      "li",
      { class: `log log-${rank >= 40 ? "error" : rank >= 30 ? "warning" : rank >= 20 ? "info" : "debug"}`, dataset: { seq: ev.seq } },
      el("time", { class: "ev-t", datetime: isoTime(ev.ts), title: absTime(ev.ts) }, offset(ev.ts)),
      el("span", { class: "log-level" }, level),
      el("span", { class: "log-msg" }, String(d.message ?? "")),
    ),
  );
  logCount += 1;
  ui.logsEmpty.hidden = true;
  while (ui.logs.childElementCount > LOG_WINDOW) ui.logs.firstElementChild.remove();
  markLong(ui.logs);
}

function drawTool(ev) {
  const d = ev.data || {};
  const tool = String(d.tool ?? "");
  if (ev.type === "tool.called") {
    const resultNode = el("pre", { class: "json muted" }, "…waiting");
    const row = el(
      "li",
      { class: "tool", dataset: { seq: ev.seq } },
      el("div", { class: "tool-head" }, el("code", {}, tool), el("span", { class: "muted small" }, ` ${offset(ev.ts)}`)),
      el("div", { class: "tool-io" },
        el("div", {}, el("span", { class: "small muted" }, "arguments"), el("pre", { class: "json" }, pretty(d.args ?? {}))),
        el("div", {}, el("span", { class: "small muted" }, "result"), resultNode)),
    );
    tools.push({ tool, row, resultNode, done: false });
    ui.tools.append(row);
    ui.toolsEmpty.hidden = true;
    while (ui.tools.childElementCount > TOOL_WINDOW) ui.tools.firstElementChild.remove();
    return;
  }
  const call = tools.find((t) => t.tool === tool && !t.done);
  if (!call) return;
  call.done = true;
  call.resultNode.classList.remove("muted");
  if (d.error) {
    call.row.classList.add("failed");
    call.resultNode.textContent = String(d.error);
  } else {
    call.resultNode.textContent = pretty(d.result ?? null);
  }
}

function drawProgress(ev) {
  const d = ev.data || {};
  const total = Number(d.total) || 0;
  const done = Number(d.done) || 0;
  ui.progressRow.hidden = false;
  ui.progress.max = total > 0 ? total : 1;
  ui.progress.value = total > 0 ? Math.min(done, total) : 0;
  ui.progressText.textContent = total > 0 ? `${done} / ${total} (${Math.round((done / total) * 100)}%)` : String(done);
}

function drawOne(ev) {
  switch (ev.type) {
    case "output":
      drawOutput(ev);
      break;
    case "step.started":
    case "step.finished":
      drawStep(ev);
      break;
    case "log":
      drawLog(ev);
      break;
    case "tool.called":
    case "tool.returned":
      drawTool(ev);
      break;
    case "progress":
      drawProgress(ev);
      break;
    case "input.requested":
      ui.askPanel.hidden = false;
      ui.askQuestion.textContent = String(ev.data?.question ?? "");
      ui.askOutcome.textContent = "";
      break;
    case "input.received":
      ui.askPanel.hidden = true;
      break;
    default:
      if (FINAL.has(ev.state)) ui.askPanel.hidden = true;
      if (ev.type === "job.cancelled") showOutcome(`Cancelled (${ev.data?.reason || "revoked"}).`);
      // job.lost says why in `error`, as job.failed does (docs/api.md).
      else if (ev.type === "job.lost") showOutcome(`The worker running this job was lost${ev.data?.error ? `: ${ev.data.error}` : ""}.`);
      break;
  }
}

/** Draw everything queued since the last frame. */
function flush() {
  if (!pending.length) return;
  const began = performance.now();
  const batch = pending;
  pending = [];
  const chars = outputChars;
  // Read before writing: this layout is clean, so reading it costs nothing.
  const wasAtBottom = nearBottom(ui.output);
  for (const ev of batch) drawOne(ev);
  appendTimeline(batch);
  layoutWaterfall();
  renderHeader();
  if (outputChars !== chars) {
    ui.outputSize.textContent = `${outputChars} characters`;
    // Follow the output while the reader is at its end (forces one layout: only when it grew).
    if (wasAtBottom) ui.output.scrollTop = ui.output.scrollHeight;
  }
  const drawnAt = performance.timeOrigin + performance.now();
  stats.flushes += 1;
  stats.flushMs += drawnAt - performance.timeOrigin - began;
  stats.drawn += batch.length;
  const lat = window.__agentdeckLatency;
  for (const ev of batch) {
    if (ev.live && lat.length < LATENCY_MAX) {
      // ms: created in the worker -> drawn; wsMs: created -> handed to the page by the WebSocket
      lat.push({
        seq: ev.seq,
        type: ev.type,
        ts: ev.ts,
        ms: drawnAt - ev.ts * 1000,
        wsMs: ev.receivedAt - ev.ts * 1000,
      });
    }
  }
}

const scheduleFlush = frameBatcher(flush);

function nearBottom(node) {
  return node.scrollHeight - node.scrollTop - node.clientHeight < 40;
}

function take(list, { live }) {
  const receivedAt = live ? performance.timeOrigin + performance.now() : 0;
  for (const ev of list) {
    if (ev.seq <= lastSeq) continue; // never twice
    lastSeq = ev.seq;
    events.push(ev);
    job = fold(job, ev);
    ev.live = live;
    ev.receivedAt = receivedAt;
    pending.push(ev);
  }
}

// ---- loading ------------------------------------------------------------------

async function load() {
  const [loadedJob, loaded] = await Promise.all([getJob(jobId), getAllEvents(jobId, 0)]);
  fresh();
  job = loadedJob;
  epoch = loaded.epoch;
  take(loaded.events, { live: false });
  // The REST job can be behind the events (or ahead, for fields events lack).
  if (lastSeq < (job.last_seq || 0)) job.last_seq = lastSeq;
  rebuildTimeline();
  const queued = pending;
  pending = [];
  for (const ev of queued) drawOne(ev);
  layoutWaterfall();
  renderHeader();
  ui.outputSize.textContent = outputChars ? `${outputChars} characters` : "";
  return lastSeq;
}

function showOutcome(text, isError = false) {
  ui.outcome.textContent = text;
  ui.outcome.classList.toggle("bad", isError);
}

function failLoad(err) {
  ui.runError.hidden = false;
  ui.runError.textContent =
    err instanceof ApiError && err.status === 404 ? `No job with id ${jobId}.` : `Could not load the job: ${err.message}`;
  setBadge(ui.state, "UNKNOWN");
}

async function main() {
  try {
    await load();
  } catch (err) {
    failLoad(err);
    if (!(err instanceof ApiError && err.status === 404)) setTimeout(main, 3000);
    return;
  }
  subscribe(topic, {
    since: lastSeq,
    epoch,
    onEvents(list) {
      take(list, { live: true });
      scheduleFlush();
    },
    async onReset() {
      const seq = await load();
      setLastSeq(topic, seq, epoch);
      return seq;
    },
  });
}

// ---- controls -----------------------------------------------------------------

ui.cancel.addEventListener("click", async () => {
  ui.cancel.disabled = true;
  showOutcome("Cancelling…");
  try {
    const res = await cancelJob(jobId);
    if (job && !FINAL.has(job.state)) showOutcome("Cancel requested; waiting for the worker to stop the job…");
    else if (res && FINAL.has(res.state)) showOutcome(`The job is ${res.state}.`);
  } catch (err) {
    showOutcome(`Cancel failed: ${err.message}`, true);
    ui.cancel.disabled = FINAL.has(job?.state);
  }
});

ui.retry.addEventListener("click", async () => {
  ui.retry.disabled = true;
  showOutcome("Retrying…");
  try {
    const next = await retryJob(jobId);
    clear(ui.outcome).append("Retried as ", el("a", { href: `/jobs/${encodeURIComponent(next.id)}`, id: "retry-link" }, next.id), ".");
    ui.outcome.classList.remove("bad");
  } catch (err) {
    showOutcome(`Retry failed: ${err.message}`, true);
  } finally {
    ui.retry.disabled = !FINAL.has(job?.state);
  }
});

ui.askForm.addEventListener("submit", async (e) => {
  e.preventDefault();
  const send = ui.askForm.querySelector("button");
  send.disabled = true;
  ui.askOutcome.textContent = "Sending…";
  try {
    await answerJob(jobId, ui.askAnswer.value);
    ui.askOutcome.textContent = "Sent; the agent carries on.";
    ui.askAnswer.value = "";
  } catch (err) {
    ui.askOutcome.textContent = `Not sent: ${err.message}`;
  } finally {
    send.disabled = false;
  }
});

ui.logLevel.addEventListener("change", () => {
  ui.logs.dataset.min = ui.logLevel.value;
});

ui.hideOutput.addEventListener("change", () => {
  timelineWindow = TIMELINE_WINDOW;
  rebuildTimeline();
});

ui.showEarlier.addEventListener("click", () => {
  timelineWindow += TIMELINE_WINDOW;
  rebuildTimeline();
});

setInterval(() => {
  if (job && !FINAL.has(job.state)) {
    renderDuration();
    layoutWaterfall();
  }
  refreshTimes(root);
}, 1000);

main();
