// One task: every field and timestamp, revoke / terminate / retry, live over job:<id>.
import { FINAL, $, absTime, el, setBadge } from "../js/dom.js";
import { subscribe } from "../js/live.js";
import { adminBar, mapi, say, seconds, taskUrl, workerUrl } from "./common.js";

const id = $("#task-title").dataset.task;
const status = $("#task-status");
let task = null;
let admin = false;
let timer = null;

function fact(label, value, key) {
  return el("div", { dataset: { fact: key } }, el("dt", {}, label), el("dd", {}, value ?? "—"));
}

function when(ts) {
  return ts ? absTime(ts) : "—";
}

function render(t) {
  task = t;
  $("#task-name").textContent = t.name || t.agent || "Task";
  setBadge($("#task-state"), t.state);
  $("#task-facts").replaceChildren(
    fact("Worker", t.worker ? el("a", { href: workerUrl(t.worker) }, t.worker) : "—", "worker"),
    fact("Queue", t.routing_key, "queue"),
    fact("Retries", String(t.retries ?? 0), "retries"),
    fact("Sent", when(t.sent), "sent"),
    fact("Received", when(t.received), "received"),
    fact("Started", when(t.started), "started"),
    fact("Succeeded", when(t.succeeded), "succeeded"),
    fact("Failed", when(t.failed), "failed"),
    fact("Revoked", when(t.revoked), "revoked"),
    fact("Retried", when(t.retried), "retried"),
    fact("Runtime", seconds(t.runtime), "runtime"),
    fact("Queue wait", seconds(t.queue_wait), "queue-wait"),
    fact("Updated", when(t.timestamp), "timestamp"),
  );
  $("#task-args").textContent = t.args ?? "";
  $("#task-kwargs").textContent = t.kwargs ?? "";
  $("#task-result").textContent = t.result ?? "";
  $("#task-error").hidden = !t.exception && !t.traceback;
  $("#task-exception").textContent = t.exception ?? "";
  $("#task-traceback").textContent = t.traceback ?? "";
  const family = [];
  if (t.parent_id) family.push(el("li", {}, "parent ", el("a", { href: taskUrl(t.parent_id), class: "mono" }, t.parent_id)));
  if (t.root_id && t.root_id !== id && t.root_id !== t.parent_id) family.push(el("li", {}, "root ", el("a", { href: taskUrl(t.root_id), class: "mono" }, t.root_id)));
  if (t.retry_of) family.push(el("li", {}, "retry of ", el("a", { href: taskUrl(t.retry_of), class: "mono" }, t.retry_of)));
  for (const c of t.children || []) family.push(el("li", {}, "child ", el("a", { href: taskUrl(c), class: "mono" }, c)));
  $("#task-family").replaceChildren(...(family.length ? family : [el("li", { class: "muted" }, "none")]));
  const open = !FINAL.has(t.state);
  $("#revoke").hidden = !admin || !open;
  $("#terminate").hidden = !admin || !open;
  $("#retry").hidden = !admin || !t.retryable;
}

// SQL history is written after an event goes out: a read soon after one can be older
// than the page has seen. Then the event's state is shown and the read tried again.
let seen = { seq: 0, state: null };
const RELOAD_MS = 150;
const RELOAD_TRIES = 8;

async function load(tries = 0) {
  try {
    const t = await mapi(`/api/monitor/tasks/${encodeURIComponent(id)}`);
    const behind = (t.clock || 0) < seen.seq;
    render(behind ? { ...t, state: seen.state } : t);
    if (behind && tries < RELOAD_TRIES) reloadSoon(tries + 1);
    return t.clock || 0;
  } catch (e) {
    say(status, e.status === 404 ? "No such task (yet)." : `Could not load: ${e.message}`, false);
    return 0;
  }
}

function reloadSoon(tries = 0) {
  clearTimeout(timer);
  timer = setTimeout(() => load(tries), RELOAD_MS * 2 ** tries);
}

function onEvents(events) {
  for (const ev of events) if (ev.seq > seen.seq) seen = { seq: ev.seq, state: ev.state };
  if (task) setBadge($("#task-state"), seen.state);
  reloadSoon();
}

async function act(path, label) {
  say(status, `${label}…`);
  try {
    const res = await mapi(path, { method: "POST" });
    if (res["task-id"]) {
      say(status, `Sent again as ${res["task-id"]}`);
      const link = el("a", { href: taskUrl(res["task-id"]), id: "retried-link" }, "open the new task");
      status.append(" — ", link);
    } else {
      say(status, res.message || "done");
    }
    reloadSoon();
  } catch (e) {
    say(status, `${label} failed: ${e.message}`, false);
  }
}

$("#revoke").addEventListener("click", () => act(`/api/task/revoke/${encodeURIComponent(id)}`, "Revoke"));
$("#terminate").addEventListener("click", () => act(`/api/task/revoke/${encodeURIComponent(id)}?terminate=true`, "Terminate"));
$("#retry").addEventListener("click", () => act(`/api/monitor/tasks/${encodeURIComponent(id)}/retry`, "Retry"));

adminBar((isAdmin) => {
  admin = isAdmin;
  if (task) render(task);
});
load().then((seq) => {
  subscribe(`job:${id}`, { since: seq, onEvents, onReset: () => load() });
});
