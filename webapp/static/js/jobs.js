// The jobs page (/): newest first, live over the "jobs:latest" topic (the latest state
// of each changed job, at most ten frames a second); filters, search,
// cursor pagination and per-state counters. `?parent=<id>` lists a job's children.
import { listAgents, listJobs } from "./api.js";
import { FINAL, STATES, $, absTime, announcer, clear, duration, el, refreshTimes, setBadge, setTime } from "./dom.js";
import { foldLatest } from "./fold.js";
import { subscribe } from "./live.js";

const DEFAULT_PAGE_SIZE = 50;
const MAX_KNOWN = 10_000; // jobs whose state the counters follow
const FLASH_MS = 1200; // a new row flashes (tr.fresh) only on a page that had none this long
// A burst of live entries is applied in slices of this long, each its own task, so the
// page answers input between them (no long task however slow the machine).
const SLICE_MS = 8;

const form = $("#filters");
const tbody = $("#jobs tbody");
const empty = $("#jobs-empty");
const status = $("#jobs-status");
const olderBtn = $("#older");
const newerBtn = $("#newer");
const announce = announcer($("#announce"));

const params = new URLSearchParams(location.search);
const PAGE_SIZE = Math.min(Math.max(Number(params.get("limit")) || DEFAULT_PAGE_SIZE, 1), 200);
const filters = { state: params.get("state") || "", agent: params.get("agent") || "", q: params.get("q") || "", parent: params.get("parent") || "" };
let cursor = params.get("cursor") || "";
const cursorStack = []; // the cursors of the newer pages we came through
let nextCursor = null;
const rows = new Map(); // job id -> {tr, job}
const known = new Map(); // job id -> {state, agent, parent} for counters
let counts = {};
let reloadTimer = null;
let loading = false;
let heldEntries = []; // jobs:latest entries applied while a page was loading
const queued = []; // jobs:latest entries not applied yet, oldest first
let queuedHead = 0;
let draining = false;
let announcement = null; // the last thing said by the entries of a slice
let countsTimer = null;
let lastNewRowAt = 0;
const progressOf = new Map(); // job id -> {done, total} from its last progress event

// ---- rendering ------------------------------------------------------------------

function runtimeOf(job) {
  if (typeof job.runtime === "number" && FINAL.has(job.state)) return job.runtime;
  if (!job.started_at) return null;
  const end = job.finished_at ?? (FINAL.has(job.state) ? null : Date.now() / 1000);
  return end ? end - job.started_at : null;
}

// One row's cells, cloned for each new row: cheaper than building its nodes one by one.
const ROW = el(
  "tr",
  {},
  el("td", { class: "job-cell" }, el("a", { class: "job-id" })),
  el("td", {}),
  el("td", { class: "state-cell" }, el("span", { class: "badge" })),
  el("td", {}, el("time", { class: "rel" }), el("span", { class: "abs muted small" })),
  el("td", { class: "dur" }),
  el("td", { class: "wide muted" }),
);

function jobRow(job) {
  const tr = ROW.cloneNode(true);
  tr.dataset.job = job.id;
  const [idCell, agentCell, , createdCell] = tr.cells;
  const link = idCell.firstChild;
  link.href = `/jobs/${encodeURIComponent(job.id)}`;
  link.title = job.id;
  link.textContent = job.id.slice(0, 8);
  agentCell.textContent = job.agent || job.name || "—";
  if (job.parent_id) {
    agentCell.append(
      el("span", { class: "child-of muted small" }, "child of ", el("a", { href: `/jobs/${encodeURIComponent(job.parent_id)}`, class: "job-id", title: job.parent_id }, job.parent_id.slice(0, 8))),
    );
  }
  const abs = absTime(job.created_at);
  setTime(createdCell.firstChild, job.created_at, abs);
  createdCell.lastChild.textContent = abs;
  updateRow({ tr, job });
  return tr;
}

/** A suspended durable run holds no worker (WAITING: it waits for an answer, a time or its children). */
const workerText = (job) => (job.state === "WAITING" ? "suspended: no worker held" : job.worker || "");

// ---- progress of running rows --------------------------------------------------
// A `jobs:latest` entry carries its job's last `progress` (done, total): a running
// (STARTED) row shows it as a bar under its badge (made when first needed).

function showProgress(tr, job) {
  const p = progressOf.get(job.id);
  let bar = tr.querySelector(".row-progress");
  if (!p || job.state !== "STARTED") {
    if (bar) bar.hidden = true;
    return;
  }
  if (!bar) {
    bar = el("progress", { class: "row-progress", max: "1", value: "0", "aria-label": "Progress" });
    tr.cells[2].append(bar);
  }
  bar.hidden = false;
  const { done, total } = p;
  bar.max = total > 0 ? total : 1;
  bar.value = total > 0 ? Math.min(done, total) : 0;
  bar.title = total > 0 ? `${done} / ${total} (${Math.round((done / total) * 100)}%)` : String(done);
}

function updateRow(entry) {
  const { tr, job } = entry;
  tr.dataset.state = job.state;
  setBadge(tr.querySelector(".badge"), job.state);
  tr.querySelector(".dur").textContent = duration(runtimeOf(job));
  tr.querySelector(".wide").textContent = workerText(job);
  showProgress(tr, job);
}

function renderCounts() {
  for (const s of STATES) {
    const node = document.querySelector(`[data-count="${s}"]`);
    if (node) node.textContent = String(counts[s] ?? 0);
  }
  for (const a of document.querySelectorAll(".count")) {
    a.setAttribute("aria-current", filters.state === a.dataset.state ? "true" : "false");
    const q = new URLSearchParams({ ...filters, state: a.dataset.state });
    if (PAGE_SIZE !== DEFAULT_PAGE_SIZE) q.set("limit", String(PAGE_SIZE));
    for (const [k, v] of [...q]) if (!v) q.delete(k);
    a.href = `?${q}`;
  }
}

function renderEmpty() {
  empty.hidden = rows.size > 0;
  if (rows.size === 0 && (filters.state || filters.agent || filters.q || filters.parent)) {
    empty.textContent = "No jobs match these filters.";
  }
}

// ---- loading ------------------------------------------------------------------

function query(extra = {}) {
  const q = { limit: String(PAGE_SIZE) };
  for (const [k, v] of Object.entries({ ...filters, ...extra })) if (v) q[k] = v;
  return q;
}

async function load() {
  status.textContent = "Loading…";
  loading = true;
  heldEntries = [];
  try {
    const page = await listJobs(query(cursor ? { cursor } : {}));
    rows.clear();
    const frag = document.createDocumentFragment();
    for (const job of page.jobs || []) {
      const tr = jobRow(job);
      rows.set(job.id, { tr, job });
      remember(job.id, { state: job.state, agent: job.agent, parent: job.parent_id });
      frag.append(tr);
    }
    clear(tbody).append(frag);
    nextCursor = page.next_cursor || null;
    counts = page.counts || {};
    renderCounts();
    renderEmpty();
    olderBtn.disabled = !nextCursor;
    newerBtn.disabled = !cursor;
    status.textContent = "";
  } catch (err) {
    status.textContent = `Could not load jobs: ${err.message}`;
  } finally {
    loading = false;
  }
  // What happened while the page was on its way: apply it on top.
  const held = heldEntries;
  heldEntries = [];
  for (const e of held) applyLatest(e);
  announcement = null; // said when first applied
  if (held.length) {
    renderCounts();
    refreshCountsSoon();
  }
}

function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(load, 300);
}

async function refreshCounts() {
  try {
    const page = await listJobs(query({ state: "", limit: "1" }));
    counts = page.counts || counts;
    renderCounts();
  } catch {
    // the next event tries again
  }
}

function refreshCountsSoon() {
  if (countsTimer) return;
  countsTimer = setTimeout(() => {
    countsTimer = null;
    refreshCounts();
  }, 500);
}

// ---- live -----------------------------------------------------------------------

function matchesFilters(job) {
  if (filters.q) return false; // only the server knows what the text matches
  if (filters.state && job.state !== filters.state) return false;
  if (filters.agent && job.agent !== filters.agent) return false;
  if (filters.parent && job.parent_id !== filters.parent) return false;
  return true;
}

function remember(id, state) {
  known.set(id, state);
  if (known.size > MAX_KNOWN) known.delete(known.keys().next().value);
}

function countTransition(id, e) {
  const prev = known.get(id);
  if (!prev) {
    const parent = e.parent_id ?? null;
    if (e.queued && !filters.q && (!filters.agent || e.agent === filters.agent) && (!filters.parent || parent === filters.parent)) {
      counts[e.state] = (counts[e.state] ?? 0) + 1;
      remember(id, { state: e.state, agent: e.agent ?? null, parent });
    } else {
      refreshCountsSoon();
    }
    return;
  }
  if (prev.state !== e.state) {
    if (filters.q || (filters.agent && prev.agent !== filters.agent) || (filters.parent && prev.parent !== filters.parent)) {
      if (filters.q) refreshCountsSoon();
    } else {
      counts[prev.state] = Math.max(0, (counts[prev.state] ?? 1) - 1);
      counts[e.state] = (counts[e.state] ?? 0) + 1;
    }
    prev.state = e.state;
  }
}

/** One jobs:latest entry: the fields its job's events set since the last frame. */
function applyLatest(e) {
  const id = e.id;
  const entry = rows.get(id);
  if (entry && e.seq <= (entry.job.last_seq || 0)) return; // the row is newer (reloaded)
  countTransition(id, e);
  if (e.progress) progressOf.set(id, { done: Number(e.progress.done) || 0, total: Number(e.progress.total) || 0 });
  if (FINAL.has(e.state)) progressOf.delete(id);
  if (entry) {
    const wasFinal = FINAL.has(entry.job.state);
    const job = foldLatest(entry.job, e);
    if (!wasFinal && FINAL.has(job.state)) {
      announcement = `Job ${id.slice(0, 8)} (${job.agent || job.name || "job"}) is ${job.state}`;
    }
    updateRow(entry);
    return;
  }
  if (cursor) return; // an older page: new jobs don't belong here
  if (e.queued) {
    const job = foldLatest(null, e);
    if (matchesFilters(job)) {
      const tr = jobRow(job);
      // Under a stream of new jobs the flash would repaint the table without pause.
      const now = performance.now();
      if (now - lastNewRowAt > FLASH_MS) tr.classList.add("fresh");
      lastNewRowAt = now;
      rows.set(id, { tr, job });
      tbody.prepend(tr);
      // A page keeps its size: more rows would be laid out and painted on every frame.
      while (tbody.childElementCount > PAGE_SIZE) {
        const last = tbody.lastElementChild;
        rows.delete(last.dataset.job);
        progressOf.delete(last.dataset.job);
        last.remove();
      }
      renderEmpty();
      announcement = `New job ${id.slice(0, 8)} (${job.agent || job.name})`;
      return;
    }
  }
  if (filters.state || filters.agent || filters.q || filters.parent) reloadSoon();
}

// A slice ends by yielding through a message, not a timer: timers of a hidden tab are
// throttled to one a second (or a minute), messages are not.
const nextSlice = new MessageChannel();
nextSlice.port1.onmessage = drainQueued;

/** Apply queued entries for up to SLICE_MS (all of them when the page is hidden). */
function drainQueued() {
  const until = document.hidden ? Infinity : performance.now() + SLICE_MS;
  do {
    const e = queued[queuedHead++];
    if (loading) heldEntries.push(e); // the page on its way may predate it: applied again
    applyLatest(e);
  } while (queuedHead < queued.length && performance.now() < until);
  renderCounts();
  if (announcement) announce(announcement);
  announcement = null;
  if (queuedHead < queued.length) {
    nextSlice.port2.postMessage(null);
    return;
  }
  queued.length = 0;
  queuedHead = 0;
  draining = false;
}

// ---- controls ---------------------------------------------------------------------

function syncUrl() {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
  if (cursor) q.set("cursor", cursor);
  if (PAGE_SIZE !== DEFAULT_PAGE_SIZE) q.set("limit", String(PAGE_SIZE));
  const url = q.toString() ? `?${q}` : location.pathname;
  history.replaceState(null, "", url);
}

const needsInput = $("#needs-input");
/** "Needs input": the WAITING jobs (suspended runs: a question, a time or their children). */
function renderNeedsInput() {
  needsInput.checked = filters.state === "WAITING";
}
needsInput.addEventListener("change", () => {
  form.elements.state.value = needsInput.checked ? "WAITING" : "";
  form.requestSubmit();
});

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const data = new FormData(form);
  filters.state = String(data.get("state") || "");
  renderNeedsInput();
  filters.agent = String(data.get("agent") || "");
  filters.q = String(data.get("q") || "").trim();
  cursor = "";
  cursorStack.length = 0;
  syncUrl();
  load();
});

form.addEventListener("reset", () => {
  filters.parent = "";
  renderParentFilter();
  setTimeout(() => form.requestSubmit(), 0);
});

/** `?parent=<id>`: the children of one job, said above the list with a way back to all. */
function renderParentFilter() {
  const box = $("#parent-filter");
  box.hidden = !filters.parent;
  if (!filters.parent) return;
  const link = $("#parent-filter-link");
  link.href = `/jobs/${encodeURIComponent(filters.parent)}`;
  link.title = filters.parent;
  link.textContent = filters.parent.slice(0, 8);
}

for (const name of ["state", "agent"]) {
  form.elements[name].addEventListener("change", () => form.requestSubmit());
}

document.getElementById("counts").addEventListener("click", (e) => {
  const a = e.target.closest("a.count");
  if (!a) return;
  e.preventDefault();
  form.elements.state.value = filters.state === a.dataset.state ? "" : a.dataset.state;
  form.requestSubmit();
});

olderBtn.addEventListener("click", () => {
  if (!nextCursor) return;
  cursorStack.push(cursor);
  cursor = nextCursor;
  syncUrl();
  load();
});

newerBtn.addEventListener("click", () => {
  cursor = cursorStack.pop() || "";
  syncUrl();
  load();
});

async function loadAgents() {
  try {
    const { agents } = await listAgents();
    const select = form.elements.agent;
    for (const a of agents || []) select.append(el("option", { value: a.name }, a.name));
    select.value = filters.agent;
  } catch {
    // the filter still works by URL
  }
}

function tick() {
  refreshTimes(tbody);
  for (const { job, tr } of rows.values()) {
    if (job.started_at && !FINAL.has(job.state)) tr.querySelector(".dur").textContent = duration(runtimeOf(job));
  }
}

form.elements.state.value = filters.state;
form.elements.q.value = filters.q;
renderNeedsInput();
renderParentFilter();
loadAgents();
// The list is loaded once the live feed is on (and again after each reconnect),
// so no change can fall between the two; without a feed, it loads anyway.
let loadedOnce = false;
subscribe("jobs:latest", {
  onLatest(list) {
    for (const e of list) queued.push(e);
    if (!draining) {
      draining = true;
      drainQueued();
    }
  },
  onSubscribed() {
    if (loadedOnce) reloadSoon();
    else {
      loadedOnce = true;
      load();
    }
  },
  onReset() {
    reloadSoon(); // the server may have missed events: what SQL holds is the truth
    return 0;
  },
});
setTimeout(() => {
  if (!loadedOnce) {
    loadedOnce = true;
    load();
  }
}, 1500);
setInterval(tick, 1000);
