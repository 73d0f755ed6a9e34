// How an event changes a job: the one place the pages fold events into a job.
//
// A job here is the REST job object (`GET /api/jobs/<id>`); `fold(job, ev)`
// changes it as `webapp/history.py::apply_event` changes the job's SQL row,
// rule for rule, and keeps `runtime` as the REST API derives it. Both folds
// are held to the same cases: tests/fixtures/event_folds.json, run through
// the Python fold by tests/test_event_fold.py and through this one in
// Chromium by tests/browser/test_event_fold.py. Change a rule in both, with
// a case.
//
// Pages keep only the drawing: an event's own data (output text, steps, logs,
// tool calls, progress) is drawn from the event, not kept in the job.

// Python's truth, which apply_event's `a or b` uses: in JavaScript an empty
// array or object is true.
function truthy(v) {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/** Python's `a or b`. */
const or = (a, b) => (truthy(a) ? a : b);

/** Python's `d.get(key, fallback)`: a key that is there, even as null, wins. */
const get = (d, key, fallback = null) => (Object.hasOwn(d, key) ? d[key] : fallback);

/** Python's `int()` of a count; null where Python would raise (the caller keeps its count). */
function int(v) {
  const n = Math.trunc(Number(v));
  return Number.isFinite(n) ? n : null;
}

/** `max(job.retries or 0, n)`, keeping the count when `n` is no number. */
function atLeast(current, n) {
  const have = or(current, 0);
  return n === null ? have : Math.max(have, n);
}

/** A job known only from its first event, as `history.new_job_row` makes it. */
export function newJob(ev) {
  return {
    id: ev.job,
    agent: null,
    name: "",
    state: ev.state,
    input: null,
    args: null,
    kwargs: null,
    result: null,
    error: null,
    traceback: null,
    queue: null,
    priority: null,
    idempotency_key: null,
    retry_of: null,
    owner_id: null,
    parent_id: null,
    root_id: null,
    worker: null,
    retries: 0,
    created_at: ev.ts,
    received_at: null,
    started_at: null,
    finished_at: null,
    updated_at: null,
    last_seq: 0,
    runtime: null,
  };
}

/**
 * Fold one event into `job` (changed in place; a new job when it is null) and
 * return the job. Events are folded in seq order. The envelope's `state` is the
 * job's state after the event: the publisher already kept final states final
 * and a late `job.received` from moving a STARTED job back.
 */
export function fold(job, ev) {
  if (!job) job = newJob(ev);
  const d = ev.data || {};
  switch (ev.type) {
    case "job.queued":
      job.name = or(get(d, "name"), job.name);
      if (truthy(get(d, "agent"))) {
        job.agent = d.agent;
        job.input = get(d, "input", job.input);
      }
      job.args = get(d, "args", job.args);
      job.kwargs = get(d, "kwargs", job.kwargs);
      job.queue = or(get(d, "queue"), job.queue);
      // A run sent by the web (a resumed durable run) names no parent and itself as
      // its root, and a retry sent from inside the task names itself its parent: the
      // job keeps the parent and root it has.
      if (truthy(get(d, "parent_id")) && d.parent_id !== job.id) job.parent_id = d.parent_id;
      job.root_id = or(job.root_id, get(d, "root_id"));
      job.created_at = or(job.created_at, ev.ts);
      break;
    case "job.received":
      job.received_at = ev.ts;
      job.worker = or(get(d, "worker"), job.worker);
      job.name = or(or(job.name, get(d, "name")), "");
      break;
    case "job.started":
      job.started_at = ev.ts;
      job.received_at = or(job.received_at, get(d, "received_at"));
      job.worker = or(get(d, "worker"), job.worker);
      job.retries = atLeast(job.retries, int(or(get(d, "retries"), 0)));
      break;
    case "job.retrying":
      job.retries = atLeast(job.retries, int(or(get(d, "retries"), or(job.retries, 0) + 1)));
      job.error = get(d, "reason");
      break;
    case "job.succeeded":
      job.result = get(d, "result");
      job.finished_at = ev.ts;
      break;
    case "job.failed":
      job.error = get(d, "error");
      job.traceback = get(d, "traceback");
      job.finished_at = ev.ts;
      break;
    case "job.cancelled":
      job.error = or(job.error, `cancelled (${get(d, "reason", "revoked")})`);
      job.finished_at = or(job.finished_at, ev.ts);
      job.worker = or(job.worker, get(d, "worker")); // revoked before any worker received it
      break;
    case "job.lost":
      job.error = or(get(d, "error"), "worker lost");
      break;
    default:
      break; // steps, logs, output, progress, tools, input: the state and seq only
  }
  job.state = ev.state;
  job.last_seq = Math.max(or(job.last_seq, 0), ev.seq);
  job.updated_at = ev.ts;
  // As the REST API derives it (`job_to_dict`): seconds from start to finish.
  job.runtime = job.started_at && job.finished_at ? Math.round((job.finished_at - job.started_at) * 1e6) / 1e6 : null;
  return job;
}

/**
 * Fold one `jobs:latest` entry (docs/api.md: the fields its job's events since the
 * last frame set, as `fold` sets them) into `job` (changed in place; a new job when it
 * is null) and return the job; an entry no newer than the job (`seq <= last_seq`) is
 * left out. A job that finished keeps its `finished_at`, and a job keeps the
 * `created_at` it has (a durable run queued again is not a new job).
 */
export function foldLatest(job, e) {
  if (!job) job = newJob({ job: e.id, state: e.state, ts: e.created_at ?? e.updated_at });
  else if (e.seq <= or(job.last_seq, 0)) return job;
  for (const key of ["agent", "name", "worker", "started_at", "parent_id"]) {
    if (Object.hasOwn(e, key)) job[key] = e[key];
  }
  if (Object.hasOwn(e, "finished_at")) job.finished_at = or(job.finished_at, e.finished_at);
  job.created_at = or(job.created_at, e.created_at);
  job.state = e.state;
  job.last_seq = e.seq;
  job.updated_at = e.updated_at;
  job.runtime = job.started_at && job.finished_at ? Math.round((job.finished_at - job.started_at) * 1e6) / 1e6 : null;
  return job;
}
