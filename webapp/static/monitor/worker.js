// One worker: heartbeat facts live, Celery's inspect on load (and after each control).
import { $, clear, el, pretty, refreshTimes, timeEl } from "../js/dom.js";
import { subscribe } from "../js/live.js";
import { adminBar, bytes, mapi, num, say, seconds, taskUrl } from "./common.js";

const host = $("#worker-title").dataset.host;
const enc = encodeURIComponent(host);
const status = $("#worker-status");
let current = null;

function fact(label, value, key) {
  return el("div", { dataset: { fact: key } }, el("dt", {}, label), el("dd", {}, value));
}

function renderFacts(w) {
  const i = w.info || {};
  const presence = $("#worker-presence");
  presence.textContent = w.online ? "online" : "offline";
  presence.className = `presence ${w.online ? "on" : "off"}`;
  presence.dataset.online = String(w.online);
  $("#worker-facts").replaceChildren(
    fact("Pool", i.pool || "—", "pool"),
    fact("Concurrency", num(i.concurrency), "concurrency"),
    fact("Active", num(i.active), "active"),
    fact("Reserved", num(i.reserved), "reserved"),
    fact("Processed", num(i.processed), "processed"),
    fact("Succeeded", num(i.succeeded), "succeeded"),
    fact("Failed", num(i.failed), "failed"),
    fact("Retried", num(i.retried), "retried"),
    fact("PID", String(i.pid ?? "—"), "pid"),
    fact("Memory", bytes(i.rss), "rss"),
    fact("Load", (i.loadavg || []).map((x) => x.toFixed(2)).join(" "), "loadavg"),
    fact("Started", timeEl(i.started), "started"),
    fact("Last heartbeat", timeEl(w.last_heartbeat), "heartbeat"),
    fact("Celery", i.sw_ver || "—", "version"),
  );
  const rows = Object.entries(i.tasks || {}).sort(([a], [b]) => a.localeCompare(b));
  clear($("#per-task tbody")).append(...rows.map(([name, t]) => {
    const done = (t.succeeded || 0) + (t.failed || 0) + (t.retried || 0);
    return el("tr", {},
      el("td", { class: "mono" }, name),
      el("td", { class: "num" }, num(t.received)),
      el("td", { class: "num" }, num(t.succeeded)),
      el("td", { class: "num" }, num(t.failed)),
      el("td", { class: "num" }, num(t.retried)),
      el("td", { class: "num" }, done ? seconds((t.runtime_sum || 0) / done) : "—"),
      el("td", { class: "num" }, t.prefetch_time !== undefined ? seconds(t.prefetch_time) : "—"));
  }));
  const names = i.registered || [];
  for (const select of document.querySelectorAll(".task-select")) {
    if (select.options.length !== names.length) select.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
  }
}

function taskItems(list) {
  if (!list || !list.length) return [el("li", { class: "muted" }, "none")];
  return list.map((t) => {
    const req = t.request || t; // scheduled entries wrap the request
    return el("li", {}, el("a", { href: taskUrl(req.id), class: "mono" }, (req.id || "").slice(0, 8)), " ", req.name || req.type || "", " ", el("span", { class: "muted" }, req.argsrepr || ""));
  });
}

function renderInspect(insp) {
  if (!insp) return;
  const queues = insp.active_queues || [];
  const canCancel = document.body.dataset.admin === "true";
  $("#queues").replaceChildren(...(queues.length ? queues.map((q) => el("li", {}, el("span", { class: "mono" }, q.name), " ",
    canCancel ? el("button", { type: "button", class: "secondary small", onclick: () => control("cancel-consumer", { queue: q.name }) }, "Stop consuming") : null))
    : [el("li", { class: "muted" }, "none")]));
  const registered = insp.registered || [];
  $("#registered").replaceChildren(...registered.map((n) => el("li", {}, n)));
  $("#active").replaceChildren(...taskItems(insp.active));
  $("#reserved").replaceChildren(...taskItems(insp.reserved));
  $("#scheduled").replaceChildren(...taskItems(insp.scheduled));
  const revoked = insp.revoked || [];
  $("#revoked").replaceChildren(...(revoked.length ? revoked.slice(0, 200).map((id) => el("li", {}, id)) : [el("li", { class: "muted" }, "none")]));
  $("#conf").textContent = pretty(insp.conf || {});
}

async function load(inspect = true) {
  const w = await mapi(`/api/monitor/workers/${enc}${inspect ? "" : "?inspect=0"}`);
  current = w;
  renderFacts(w);
  if (inspect) renderInspect(w.inspect);
}

const PATHS = {
  grow: (f) => `/api/worker/pool/grow/${enc}?n=${encodeURIComponent(f.n || 1)}`,
  shrink: (f) => `/api/worker/pool/shrink/${enc}?n=${encodeURIComponent(f.n || 1)}`,
  autoscale: (f) => `/api/worker/pool/autoscale/${enc}?min=${encodeURIComponent(f.min)}&max=${encodeURIComponent(f.max)}`,
  "add-consumer": (f) => `/api/worker/queue/add-consumer/${enc}?queue=${encodeURIComponent(f.queue)}`,
  "cancel-consumer": (f) => `/api/worker/queue/cancel-consumer/${enc}?queue=${encodeURIComponent(f.queue)}`,
  "pool-restart": () => `/api/worker/pool/restart/${enc}`,
  shutdown: () => `/api/worker/shutdown/${enc}`,
  "rate-limit": (f) => `/api/task/rate-limit/${encodeURIComponent(f.task)}`,
  timeout: (f) => `/api/task/timeout/${encodeURIComponent(f.task)}`,
};

async function control(kind, fields) {
  if (kind === "shutdown" && !confirm(`Shut down ${host}?`)) return;
  const form = kind === "rate-limit" ? { ratelimit: fields.ratelimit, workername: host }
    : kind === "timeout" ? { soft: fields.soft || "", hard: fields.hard || "", workername: host } : undefined;
  say(status, `${kind}…`);
  try {
    const res = await mapi(PATHS[kind](fields), { method: "POST", form });
    say(status, res.message || "done");
    setTimeout(() => load().catch(() => {}), 500);
  } catch (e) {
    say(status, `${kind} failed: ${e.message}`, false);
  }
}

for (const form of document.querySelectorAll("#controls form")) {
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    control(form.dataset.control, Object.fromEntries(new FormData(form)));
  });
}

function setAdmin(isAdmin) {
  document.body.dataset.admin = String(isAdmin);
  for (const b of document.querySelectorAll("#controls button")) b.disabled = !isAdmin;
  if (current) renderInspect(current.inspect);
}

subscribe("workers", {
  onEvents(events) {
    for (const ev of events) {
      if ((ev.worker || ev.data?.hostname) !== host) continue;
      if (ev.type === "worker.heartbeat" || ev.type === "worker.online") {
        current = { ...(current || {}), hostname: host, online: true, last_heartbeat: ev.ts, info: ev.data };
        renderFacts(current);
      } else if (ev.type === "worker.offline" && current) {
        current.online = false;
        renderFacts(current);
      }
    }
  },
  onSubscribed: () => load(false).catch(() => {}),
});
$("#reinspect").addEventListener("click", () => load().catch((e) => say(status, e.message, false)));
adminBar(setAdmin);
load().catch((e) => say(status, `Could not load the worker: ${e.message}`, false));
setInterval(() => refreshTimes(document), 1000);
