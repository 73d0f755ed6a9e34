// The run view (/jobs/<id>): header, live timeline, steps waterfall, output,
// logs, tool calls, progress, input/result/error panels, Cancel and Retry.
// Durable runs: replayed steps marked, suspensions and resumptions, questions
// answered through a form made from their schema, child jobs, and a retry from
// the failed step.
//
// The job and its events are loaded over REST, then followed over the
// WebSocket from the last seq seen. Events are queued and drawn once per
// animation frame; long lists keep only their newest rows in the DOM.
import { ApiError, answerJob, cancelJob, getAllEvents, getJob, listJobs, retryJob } from "./api.js";
import { FINAL, $, clear, compact, duration, el, frameBatcher, isoTime, absTime, pretty, refreshTimes, relTime, setBadge, stateBadge, timeEl } from "./dom.js";
import { fold } from "./fold.js";
import { setLastSeq, subscribe } from "./live.js";
import { buildFields } from "./schema_form.js";

const TIMELINE_WINDOW = 300;
const LOG_WINDOW = 1000;
const STEP_WINDOW = 300;
const TOOL_WINDOW = 300;
const CHILD_MAX = 200; // GET /api/jobs serves at most 200 a page
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
  retryFailed: $("#retry-failed"),
  retryHint: $("#retry-failed-hint"),
  outcome: $("#action-outcome"),
  suspended: $("#suspended"),
  factParent: $("#fact-parent"),
  factRetryOf: $("#fact-retry-of"),
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
  questions: $("#questions"),
  childrenPanel: $("#children-panel"),
  children: $("#children"),
  childrenCount: $("#children-count"),
  childrenListLink: $("#children-list-link"),
};

// ---- the model ----------------------------------------------------------------

let job = null; // REST job object, kept current by fold.js
let events = []; // every event seen, in seq order
let lastSeq = 0;
let pending = []; // events received, not drawn yet
let timelineWindow = TIMELINE_WINDOW;
let outputText = null; // the Text node the output chunks are appended to
let outputChars = 0;
let steps = []; // waterfall rows: {key, start, end, error, row, bar, label}
let tools = []; // {tool, step, row, resultNode, done}
let openWait = null; // the waterfall row of the wait the run is suspended on
let suspension = null; // {reason, step, until, ts} while the run is suspended
let questions = new Map(); // step (or "seq-N") -> {key, li, status, schema, form}
let sawRecorded = false; // an event of a recorded step: the run can be retried from its failure
const children = new Map(); // child job id -> {id, job, agent, li}
let childrenFeed = null; // the "jobs" topic, followed once the job has children
let logCount = 0;
let t0 = null; // the run's time origin for the timeline and waterfall
let epoch = ""; // the Redis data generation our seqs count in

function fresh() {
  events = [];
  lastSeq = 0;
  pending = [];
  steps = [];
  tools = [];
  openWait = null;
  suspension = null;
  questions = new Map();
  sawRecorded = false;
  clear(ui.questions);
  ui.askPanel.hidden = true;
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
  ui.facts.worker.textContent = suspendedNow() ? "none (suspended)" : job.worker || "—";
  ui.facts.retries.textContent = String(job.retries ?? 0);
  ui.facts.queue.textContent = job.queue || "—";
  ui.facts.events.textContent = String(lastSeq);
  renderDuration();
  const final = FINAL.has(job.state);
  ui.output.dataset.placeholder = final ? "No output." : "No output yet.";
  ui.cancel.disabled = final;
  ui.cancel.hidden = final;
  ui.retry.disabled = !final;
  ui.stepsEmpty.textContent = final ? "No steps." : "No steps yet.";
  renderProgressDone();
  renderRetryFailed();
  renderRelations();
  renderSuspension();
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

/** Retry from the failed step: for a failed job with recorded steps. */
function renderRetryFailed() {
  const offered = job.state === "FAILURE" && (sawRecorded || (job.steps?.length ?? 0) > 0);
  ui.retryFailed.hidden = !offered;
  ui.retryHint.hidden = !offered;
  if (!offered) return;
  if (!ui.retryFailed.dataset.busy) ui.retryFailed.disabled = false;
  const list = job.steps || [];
  let kept = 0;
  while (kept < list.length && list[kept].status === "done" && list[kept].idx === kept) kept += 1;
  const again = list[kept];
  const text = list.length
    ? `Replays ${kept} recorded step${kept === 1 ? "" : "s"}${kept ? ` (${list.slice(0, kept).map((s) => s.name).join(", ")})` : ""} without running ${kept === 1 ? "it" : "them"}, then runs ${again ? `“${again.name}”` : "the rest"} again.`
    : "Replays the recorded steps before the failure, then runs the rest again.";
  if (ui.retryHint.textContent !== text) ui.retryHint.textContent = text;
}

/** Links to the job's parent (a child job) and to the job it retries. */
function renderRelations() {
  for (const [box, name, id, linkId] of [
    [ui.factParent, "parent", job.parent_id, "parent-link"],
    [ui.factRetryOf, "retry-of", job.retry_of, "retry-of-link"],
  ]) {
    box.hidden = !id;
    const node = ui.facts[name];
    if (!id || node.dataset.id === id) continue;
    node.dataset.id = id;
    clear(node).append(el("a", { href: `/jobs/${encodeURIComponent(id)}`, id: linkId, class: "job-id", title: id }, id.slice(0, 8)));
  }
}

// ---- suspensions ----------------------------------------------------------------

const SUSPENDED_FOR = {
  input: "waiting for an answer",
  sleep: "sleeping",
  children: "waiting for its child jobs",
};
const RESUMES_WHEN = {
  input: "an answer resumes it",
  sleep: "it resumes when the time comes",
  children: "it resumes when they have all ended",
};
const RESUMED_BY = {
  input: "answered",
  sleep: "woke up",
  children: "child jobs ended",
  timeout: "no answer in time",
};

function suspendedNow() {
  return suspension !== null && job !== null && !FINAL.has(job.state);
}

function suspendedWhy(d) {
  const why = SUSPENDED_FOR[d.reason] || `waiting (${d.reason ?? "?"})`;
  return d.reason === "sleep" && d.until ? `${why} until ${absTime(d.until)}` : why;
}

/** The header's line while the run is suspended: why, since when, and that no worker is held. */
function renderSuspension() {
  const s = suspendedNow() ? suspension : null;
  ui.suspended.hidden = !s;
  if (!s) {
    delete ui.suspended.dataset.seq;
    return;
  }
  if (ui.suspended.dataset.seq !== String(s.seq)) {
    ui.suspended.dataset.seq = String(s.seq);
    ui.suspended.dataset.reason = String(s.reason);
    const when = s.reason === "sleep" && s.until ? el("span", { class: "susp-until", "aria-hidden": "true" }) : null;
    clear(ui.suspended).append(
      el("strong", {}, "Suspended"),
      `: ${suspendedWhy(s)}${s.step !== undefined && s.step !== null ? ` (step ${s.step})` : ""}. No worker is held; ${RESUMES_WHEN[s.reason] || "it resumes when the wait ends"}. `,
      el("span", { class: "susp-for muted", "aria-hidden": "true" }),
    );
    if (when) ui.suspended.append(when);
  }
  const since = ui.suspended.querySelector(".susp-for");
  since.textContent = `Waiting for ${duration(Math.max(0, Date.now() / 1000 - s.ts))}.`;
  const until = ui.suspended.querySelector(".susp-until");
  if (until) until.textContent = ` Wakes ${relTime(s.until)}.`;
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
      return `${d.name ?? ""}${d.duration_ms !== undefined ? ` · ${duration(d.duration_ms / 1000)}` : ""}${d.error ? ` · ${d.error}` : ""}`;
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
      return `${d.question ?? ""}${d.schema ? " · a typed answer" : ""}${d.timeout ? ` · within ${duration(d.timeout)}` : ""}`;
    case "input.received":
      return compact(d.answer, 200);
    case "job.suspended":
      return `${suspendedWhy(d)}${d.step !== undefined ? ` · step ${d.step}` : ""} · no worker held`;
    case "job.resumed":
      return [
        RESUMED_BY[d.reason] || String(d.reason ?? ""),
        `waited ${typeof d.waited_ms === "number" ? duration(d.waited_ms / 1000) : "—"}`,
        d.run !== undefined ? `run ${d.run}` : null,
      ].filter(Boolean).join(" · ");
    case "child.spawned":
      return `${d.agent ?? ""} · ${d.child ?? ""}`;
    default:
      return compact(d, 200);
  }
}

const typeClass = (type) => `ev-${String(type).replace(/[^a-z0-9]+/gi, "-")}`;

const isReplayed = (ev) => ev.data?.replayed === true;

/** The mark of a step or tool call replayed from its record (not run again). */
const replayedTag = () => el("span", { class: "tag tag-replayed", title: "replayed from its record: not run again" }, "replayed");

function timelineRow(ev) {
  const replayed = isReplayed(ev);
  const dataset = { seq: ev.seq, type: ev.type };
  if (replayed) dataset.replayed = "true";
  return el(
    "li",
    { class: `ev ${typeClass(ev.type)}${replayed ? " replayed" : ""}`, dataset },
    el("span", { class: "ev-seq" }, `#${ev.seq}`),
    el("time", { class: "ev-t", datetime: isoTime(ev.ts), title: absTime(ev.ts) }, offset(ev.ts)),
    el("span", { class: `ev-type ${ev.type.startsWith("job.") ? `state-${String(ev.state).toLowerCase()}` : ""}` }, ev.type),
    el("span", { class: "ev-sum" }, replayed ? [replayedTag(), " "] : null, summary(ev)),
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

/** A step's key: its recorded index when it has one (durable steps), else its name. */
const stepKey = (d) => (d.step !== undefined && d.step !== null ? `#${d.step}` : `name:${d.name ?? ""}`);

function openRow(key) {
  for (let i = steps.length - 1; i >= 0; i--) if (steps[i].key === key && steps[i].end === null) return steps[i];
  return null;
}

function addRow({ key, name, start, replayed = false, kind = "step" }) {
  const bar = el("span", { class: `wf-bar running${kind === "wait" ? " wait" : ""}` });
  const label = el("span", { class: "wf-dur muted small" }, kind === "wait" ? "waiting…" : "running…");
  const dataset = { step: name, kind };
  if (replayed) dataset.replayed = "true";
  const row = el(
    "li",
    { class: `wf-row${replayed ? " replayed" : ""}${kind === "wait" ? " wf-wait" : ""}`, dataset },
    el("span", { class: "wf-name", title: name }, replayed ? [replayedTag(), " "] : null, name),
    el("span", { class: "wf-track", "aria-hidden": "true" }, bar),
    label,
  );
  const entry = { key, name, start, end: null, error: null, row, bar, label };
  steps.push(entry);
  ui.steps.append(row);
  ui.stepsEmpty.hidden = true;
  while (ui.steps.childElementCount > STEP_WINDOW) ui.steps.firstElementChild.remove();
  return entry;
}

function endRow(entry, end, text, error = null) {
  entry.end = end;
  entry.bar.classList.remove("running");
  entry.label.textContent = text;
  if (error) {
    entry.error = String(error);
    entry.row.classList.add("failed");
    entry.bar.classList.add("failed");
    entry.row.append(el("span", { class: "wf-error" }, entry.error));
  }
}

function drawStep(ev) {
  const d = ev.data || {};
  const name = String(d.name ?? "");
  const key = stepKey(d);
  if (ev.type === "step.started") {
    addRow({ key, name, start: ev.ts, replayed: isReplayed(ev) });
    return;
  }
  let step = openRow(key);
  if (!step) step = addRow({ key, name, start: ev.ts - (d.duration_ms ?? 0) / 1000, replayed: isReplayed(ev) });
  const ms = d.duration_ms ?? (ev.ts - step.start) * 1000;
  endRow(step, ev.ts, duration(ms / 1000), d.error);
}

/** Rows still open when the job ends: a recorded step that raised says no step.finished,
 * and a run whose process died says nothing more. They end with the job, or when the
 * next run starts (`text` "interrupted"). */
function endOpenRows(ev, text = { FAILURE: "failed", REVOKED: "cancelled" }[ev.state] || "—") {
  for (const entry of steps) {
    if (entry.end !== null || entry === openWait) continue;
    endRow(entry, ev.ts, text);
    if (ev.state === "FAILURE") {
      entry.row.classList.add("failed");
      entry.bar.classList.add("failed");
    }
  }
}

/** A wait shows in the waterfall as a row of its own, from suspension to resumption. */
function drawWait(ev) {
  const d = ev.data || {};
  if (ev.type === "job.suspended") {
    if (openWait) endRow(openWait, ev.ts, "—");
    openWait = addRow({ key: `wait:${d.step ?? ev.seq}`, name: `waiting: ${d.reason ?? "?"}`, start: ev.ts, kind: "wait" });
    return;
  }
  if (!openWait) return;
  const waited = ev.type === "job.resumed" && typeof d.waited_ms === "number" ? d.waited_ms / 1000 : ev.ts - openWait.start;
  endRow(openWait, ev.ts, duration(waited));
  openWait = null;
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
  const step = d.step ?? null;
  if (ev.type === "tool.called") {
    const resultNode = el("pre", { class: "json muted" }, "…waiting");
    const replayed = isReplayed(ev);
    const dataset = { seq: ev.seq };
    if (replayed) dataset.replayed = "true";
    const row = el(
      "li",
      { class: `tool${replayed ? " replayed" : ""}`, dataset },
      el("div", { class: "tool-head" }, replayed ? [replayedTag(), " "] : null, el("code", {}, tool), el("span", { class: "muted small" }, ` ${offset(ev.ts)}`)),
      el("div", { class: "tool-io" },
        el("div", {}, el("span", { class: "small muted" }, "arguments"), el("pre", { class: "json" }, pretty(d.args ?? {}))),
        el("div", {}, el("span", { class: "small muted" }, "result"), resultNode)),
    );
    tools.push({ tool, step, row, resultNode, done: false });
    ui.tools.append(row);
    ui.toolsEmpty.hidden = true;
    while (ui.tools.childElementCount > TOOL_WINDOW) ui.tools.firstElementChild.remove();
    return;
  }
  const call = tools.find((t) => t.tool === tool && t.step === step && !t.done);
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

/** A job that succeeded is done: its bar completes even if its last report fell short. */
function renderProgressDone() {
  if (job.state !== "SUCCESS" || ui.progressRow.hidden || ui.progress.value >= ui.progress.max) return;
  ui.progress.value = ui.progress.max;
  const max = ui.progress.max;
  ui.progressText.textContent = max > 1 ? `${max} / ${max} (100%)` : "100%";
}

function drawOne(ev) {
  if (ev.data && ev.data.step !== undefined && ev.data.step !== null) sawRecorded = true;
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
      addQuestion(ev);
      break;
    case "input.received":
      answered(ev);
      break;
    case "child.spawned":
      spawned(ev);
      break;
    case "job.suspended":
      suspension = { ...(ev.data || {}), ts: ev.ts, seq: ev.seq };
      drawWait(ev);
      break;
    case "job.resumed":
      suspension = null;
      drawWait(ev);
      if (ev.data?.reason === "timeout") closeQuestion(ev.data?.step, "expired", "No answer came within its timeout.");
      break;
    default:
      if (FINAL.has(ev.state)) {
        suspension = null;
        drawWait(ev);
        endOpenRows(ev);
        closeQuestion(undefined, "closed", `Not answered: the job ended ${ev.state}.`);
      }
      if (ev.type === "job.started") endOpenRows(ev, "interrupted");
      if (ev.type === "job.cancelled") showOutcome(`Cancelled (${ev.data?.reason || "revoked"}).`);
      // job.lost says why in `error`, as job.failed does (docs/api.md).
      else if (ev.type === "job.lost") showOutcome(`The worker running this job was lost${ev.data?.error ? `: ${ev.data.error}` : ""}.`);
      break;
  }
}

// ---- questions ------------------------------------------------------------------

function questionKey(d, ev) {
  return d.step !== undefined && d.step !== null ? String(d.step) : `seq-${ev.seq}`;
}

function addQuestion(ev) {
  const d = ev.data || {};
  const key = questionKey(d, ev);
  if (questions.has(key)) return;
  const meta = [`asked ${absTime(ev.ts)}`];
  if (d.step !== undefined && d.step !== null) meta.unshift(`step ${d.step}`);
  if (d.timeout) meta.push(`answer within ${duration(d.timeout)} (by ${absTime(ev.ts + d.timeout)})`);
  const li = el(
    "li",
    { class: "q", dataset: { key, status: "open" } },
    el("p", { class: "question" }, String(d.question ?? "")),
    el("p", { class: "q-meta muted small" }, meta.join(" · ")),
  );
  const q = { key, li, status: "open", schema: d.schema ?? null, form: null };
  questions.set(key, q);
  ui.questions.append(li);
  ui.askPanel.hidden = false;
}

function lastOpenQuestion() {
  return [...questions.values()].reverse().find((q) => q.status === "open") || null;
}

/** A question's end: its form goes, and what became of it stays in view. */
function settle(q, status, ...content) {
  q.status = status;
  q.li.dataset.status = status;
  if (q.form) q.form.remove();
  q.form = null;
  q.li.querySelector(".q-end")?.remove();
  q.li.append(el("div", { class: `q-end q-${status}` }, ...content));
}

function answered(ev) {
  const d = ev.data || {};
  const q = (d.step !== undefined && questions.get(String(d.step))) || lastOpenQuestion();
  // The web says input.received once the next run is on its way, so a quick run can
  // end before it: a question "closed" by the job's end was answered after all.
  if (!q || (q.status !== "open" && q.status !== "closed")) return;
  settle(q, "answered", el("span", { class: "small muted" }, `Answered ${absTime(ev.ts)}`), el("pre", { class: "json q-answer" }, pretty(d.answer ?? null)));
}

function closeQuestion(step, status, text) {
  const q = step !== undefined && step !== null ? questions.get(String(step)) : lastOpenQuestion();
  if (q && q.status === "open") settle(q, status, el("p", { class: "muted" }, text));
}

/** The open question gets its form (once the events drawn so far say it is still open). */
function syncQuestionForm() {
  const q = lastOpenQuestion();
  ui.askPanel.classList.toggle("open", Boolean(q) && !FINAL.has(job?.state));
  if (!q || q.form || FINAL.has(job?.state)) return;
  q.form = answerForm(q);
  q.li.append(q.form);
}

/** The form for an answer: fields made from the question's JSON Schema (an object's
 * properties; any other schema is one field), or free text that may be sent as JSON. */
function answerForm(q) {
  const schema = q.schema && typeof q.schema === "object" ? q.schema : null;
  const fieldset = el("fieldset", { class: "fields", id: "ask-fields" });
  const formError = el("p", { id: "ask-error", class: "notice", role: "alert", hidden: true });
  const send = el("button", { type: "submit", id: "ask-send" }, "Answer");
  const outcome = el("p", { id: "ask-outcome", class: "small", role: "status", "aria-live": "polite" });
  const form = el("form", { class: "ask-form", id: "ask-form", novalidate: true }, fieldset, formError, el("div", { class: "form-actions" }, send), outcome);
  const options = { legend: "Your answer", empty: "This question takes no fields." };
  let fields = null;
  let single = false; // a schema that is not an object of properties: one field, `answer`
  let free = null;
  if (schema && schema.properties && Object.keys(schema.properties).length) {
    fields = buildFields(schema, fieldset, "ask", { ...options, errorPrefix: "answer" });
  } else if (schema) {
    single = true;
    const wrapped = { type: "object", properties: { answer: { title: "Answer", ...schema } }, required: ["answer"] };
    if (schema.$defs) wrapped.$defs = schema.$defs;
    if (schema.definitions) wrapped.definitions = schema.definitions;
    fields = buildFields(wrapped, fieldset, "ask", { ...options, errorPrefix: "" });
  } else {
    free = { text: el("textarea", { id: "ask-answer", name: "answer", rows: 3, "aria-describedby": "ask-answer-error" }), json: el("input", { type: "checkbox", id: "ask-json" }) };
    fieldset.append(
      el("legend", {}, "Your answer"),
      el("div", { class: "field" }, el("label", { for: "ask-answer" }, "Answer"), free.text, el("p", { id: "ask-answer-error", class: "field-error", hidden: true })),
      el("div", { class: "field" }, el("div", { class: "check" }, free.json, el("label", { for: "ask-json" }, "Send it as JSON"))),
    );
  }

  function showFormError(text) {
    formError.hidden = !text;
    formError.textContent = text || "";
  }

  function freeError(text) {
    const node = form.querySelector("#ask-answer-error");
    node.hidden = !text;
    node.textContent = text || "";
    if (text) free.text.setAttribute("aria-invalid", "true");
    else free.text.removeAttribute("aria-invalid");
  }

  /** The answer the form holds, or undefined (with the errors shown) when it holds none. */
  function collect() {
    if (free) {
      freeError("");
      if (!free.json.checked) return free.text.value;
      try {
        return JSON.parse(free.text.value);
      } catch {
        freeError("Not valid JSON.");
        free.text.focus();
        return undefined;
      }
    }
    fields.clearErrors();
    const { values, errors } = fields.collect();
    if (errors.length) {
      fields.showErrors(errors);
      return undefined;
    }
    if (!single) return values;
    if (Object.hasOwn(values, "answer")) return values.answer;
    return fields.fields[0]?.kind === "string" ? "" : null;
  }

  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    showFormError("");
    const answer = collect();
    if (answer === undefined) return;
    send.disabled = true;
    outcome.textContent = "Sending…";
    try {
      await answerJob(jobId, answer);
      outcome.textContent = "Sent; the run resumes.";
    } catch (err) {
      outcome.textContent = "";
      send.disabled = false;
      if (!(err instanceof ApiError)) throw err;
      const list = err.status === 422 ? (err.errors.length ? err.errors : err.field ? [{ field: err.field, message: err.message }] : []) : [];
      if (free) {
        if (list.length) freeError(list.map((x) => x.message).join(" "));
        else showFormError(`Not sent: ${err.message}`);
        return;
      }
      const unmatched = list.length ? fields.showErrors(list) : [];
      if (!list.length) showFormError(`Not sent: ${err.message}`);
      else if (unmatched.length) showFormError(unmatched.map((x) => (x.field ? `${x.field}: ${x.message}` : x.message)).join(" "));
    }
  });
  return form;
}

// ---- child jobs -----------------------------------------------------------------

function childEntry(id, agent = null) {
  let entry = children.get(id);
  if (entry) return entry;
  const li = el("li", { class: "child", dataset: { job: id } });
  entry = { id, job: null, agent, li };
  children.set(id, entry);
  if (children.size <= CHILD_MAX) ui.children.append(li);
  ui.childrenPanel.hidden = false;
  ui.childrenCount.textContent = `(${children.size})`;
  ensureChildrenFeed();
  return entry;
}

function renderChild(entry) {
  const job = entry.job;
  const state = job?.state || "PENDING";
  const agent = job?.agent || job?.name || entry.agent || "job";
  entry.li.dataset.state = state;
  let note = "";
  if (job && FINAL.has(state)) {
    note = state === "SUCCESS" ? `→ ${compact(job.result, 80)}` : String(job.error || "");
    if (job.runtime !== null && job.runtime !== undefined) note = `${duration(job.runtime)} · ${note}`;
  } else if (job?.started_at) note = "running";
  clear(entry.li).append(
    el("a", { href: `/jobs/${encodeURIComponent(entry.id)}`, class: "job-id child-link", title: entry.id }, entry.id.slice(0, 8)),
    " ",
    el("span", { class: "child-agent" }, agent),
    " ",
    stateBadge(state),
    " ",
    el("span", { class: "child-note muted small" }, compact(note, 160)),
  );
}

/** A child job as the REST API gives it; an older copy than the one we hold is ignored. */
function mergeChild(rest) {
  const entry = childEntry(rest.id, rest.agent);
  if (entry.job && (entry.job.last_seq || 0) > (rest.last_seq || 0)) return;
  entry.job = rest;
  renderChild(entry);
}

function spawned(ev) {
  const d = ev.data || {};
  if (!d.child) return;
  const entry = childEntry(String(d.child), d.agent ?? null);
  if (!entry.job) renderChild(entry);
  if (ev.live) loadChildrenSoon();
}

let childrenTimer = null;
function loadChildrenSoon() {
  clearTimeout(childrenTimer);
  childrenTimer = setTimeout(loadChildren, 300);
}

async function loadChildren() {
  try {
    const page = await listJobs({ parent: jobId, limit: String(CHILD_MAX) });
    for (const rest of (page.jobs || []).slice().reverse()) mergeChild(rest);
  } catch {
    // the next child event or resubscription tries again
  }
}

/** The children's live states come over the "jobs" topic (their lifecycle events). */
function ensureChildrenFeed() {
  if (childrenFeed) return;
  childrenFeed = subscribe("jobs", {
    onEvents(list) {
      for (const ev of list) childEvent(ev);
    },
    onSubscribed() {
      loadChildren(); // (again) now that the feed is on: nothing falls between the two
    },
  });
}

function childEvent(ev) {
  const entry = children.get(ev.job);
  if (!entry) {
    if (ev.type === "job.queued" && ev.data?.parent_id === jobId) mergeChild(fold(null, ev));
    return;
  }
  if (entry.job) {
    if (ev.seq <= (entry.job.last_seq || 0)) return; // the REST copy has it already
    fold(entry.job, ev);
  } else if (ev.type === "job.queued") {
    entry.job = fold(null, ev);
  } else {
    loadChildrenSoon(); // known only by its spawn: ask the API for the rest
    return;
  }
  renderChild(entry);
}

// ---- drawing a batch ------------------------------------------------------------

/** Draw everything queued since the last frame. */
function flush() {
  if (!pending.length) return;
  const began = performance.now();
  const batch = pending;
  pending = [];
  const chars = outputChars;
  // Read before writing: this layout is clean, so reading it costs nothing.
  const wasAtBottom = nearBottom(ui.output);
  const timelineAtBottom = nearBottom(ui.timeline);
  for (const ev of batch) drawOne(ev);
  appendTimeline(batch);
  // Follow the timeline while the reader is at its end; one scrolled up stays where they are.
  if (timelineAtBottom) ui.timeline.scrollTop = ui.timeline.scrollHeight;
  layoutWaterfall();
  renderHeader();
  syncQuestionForm();
  if (batch.some((ev) => ev.live && FINAL.has(ev.state) && ev.type.startsWith("job."))) refreshSteps();
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
  ui.timeline.scrollTop = ui.timeline.scrollHeight; // start at the newest, following
  const queued = pending;
  pending = [];
  for (const ev of queued) drawOne(ev);
  layoutWaterfall();
  renderHeader();
  syncQuestionForm();
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

/** The recorded steps as the API has them now (a run that just failed: to retry from them). */
async function refreshSteps() {
  try {
    const fresh = await getJob(jobId);
    if (job) {
      job.steps = fresh.steps || [];
      job.traceback = job.traceback || fresh.traceback;
      renderHeader();
    }
  } catch {
    // the hint stays as it was
  }
}

async function main() {
  ui.childrenListLink.href = `/?parent=${encodeURIComponent(jobId)}`;
  loadChildren();
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
    if (job && suspendedNow()) showOutcome("Cancel requested; the suspended run ends without a worker…");
    else if (job && !FINAL.has(job.state)) showOutcome("Cancel requested; waiting for the worker to stop the job…");
    else if (res && FINAL.has(res.state)) showOutcome(`The job is ${res.state}.`);
  } catch (err) {
    showOutcome(`Cancel failed: ${err.message}`, true);
    ui.cancel.disabled = FINAL.has(job?.state);
  }
});

async function retry(button, from) {
  button.disabled = true;
  button.dataset.busy = "true";
  const how = from === "failure" ? "from the failed step" : "from the start";
  showOutcome(`Retrying ${how}…`);
  try {
    const next = await retryJob(jobId, from);
    clear(ui.outcome).append(`Retried ${how} as `, el("a", { href: `/jobs/${encodeURIComponent(next.id)}`, id: "retry-link" }, next.id), ".");
    ui.outcome.classList.remove("bad");
  } catch (err) {
    showOutcome(`Retry failed: ${err.message}`, true);
  } finally {
    delete button.dataset.busy;
    button.disabled = !FINAL.has(job?.state);
  }
}

ui.retry.addEventListener("click", () => retry(ui.retry, "start"));
ui.retryFailed.addEventListener("click", () => retry(ui.retryFailed, "failure"));

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
    renderSuspension();
  }
  refreshTimes(root);
}, 1000);

main();
