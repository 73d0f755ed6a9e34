// Workers: one row per worker, moved by its heartbeats over the WebSocket.
import { $, clear, el, refreshTimes, timeEl } from "../js/dom.js";
import { subscribe } from "../js/live.js";
import { adminBar, bytes, mapi, num, say, workerUrl } from "./common.js";

const tbody = $("#workers tbody");
const empty = $("#workers-empty");
const status = $("#workers-status");
const workers = new Map(); // hostname -> {online, last_heartbeat, info}
let admin = false;

function render() {
  const list = [...workers.values()].sort((a, b) => (b.online - a.online) || a.hostname.localeCompare(b.hostname));
  clear(tbody);
  for (const w of list) tbody.append(row(w));
  empty.hidden = list.length > 0;
  const online = list.filter((w) => w.online).length;
  status.textContent = `${online} online, ${list.length - online} offline`;
}

function row(w) {
  const i = w.info || {};
  const tr = el("tr", {
    class: w.online ? "" : "offline",
    dataset: { worker: w.hostname, online: String(w.online), lastHeartbeat: String(w.last_heartbeat ?? ""), concurrency: String(i.concurrency ?? "") },
  });
  const purge = !w.online && admin
    ? el("button", { type: "button", class: "secondary small", onclick: () => purgeWorker(w.hostname) }, "Purge")
    : null;
  tr.append(
    el("td", {}, el("a", { href: workerUrl(w.hostname) }, w.hostname)),
    el("td", {}, el("span", { class: `presence ${w.online ? "on" : "off"}` }, w.online ? "online" : "offline")),
    el("td", {}, i.pool || "—"),
    el("td", { class: "num" }, num(i.concurrency)),
    el("td", { class: "num" }, num(i.active)),
    el("td", { class: "num" }, num(i.processed)),
    el("td", { class: "num" }, num(i.succeeded)),
    el("td", { class: "num" }, num(i.failed)),
    el("td", { class: "num" }, num(i.retried)),
    el("td", { class: "mono small" }, (i.loadavg || []).map((x) => x.toFixed(2)).join(" ")),
    el("td", { class: "num" }, bytes(i.rss)),
    el("td", { class: "hb" }, timeEl(w.last_heartbeat)),
    el("td", {}, purge),
  );
  return tr;
}

async function purgeWorker(host) {
  try {
    await mapi(`/api/monitor/workers/${encodeURIComponent(host)}`, { method: "DELETE" });
    workers.delete(host);
    render();
  } catch (e) {
    say(status, `Purge failed: ${e.message}`, false);
  }
}

async function load() {
  const data = await mapi("/api/monitor/workers");
  workers.clear();
  for (const w of data.workers) workers.set(w.hostname, w);
  render();
}

function onEvents(events) {
  let changed = false;
  for (const ev of events) {
    const host = ev.worker || ev.data?.hostname;
    if (!host) continue;
    if (ev.type === "worker.heartbeat" || ev.type === "worker.online") {
      workers.set(host, { hostname: host, online: true, last_heartbeat: ev.ts, info: ev.data });
      changed = true;
    } else if (ev.type === "worker.offline") {
      const w = workers.get(host) || { hostname: host, info: ev.data, last_heartbeat: ev.ts };
      w.online = false;
      if (ev.data && ev.data.pid) w.info = ev.data;
      workers.set(host, w);
      changed = true;
    } else if (ev.type === "worker.purged") {
      changed = workers.delete(host) || changed;
    }
  }
  if (changed) render();
}

subscribe("workers", { onEvents, onSubscribed: () => load().catch(() => {}) });
adminBar((isAdmin) => {
  admin = isAdmin;
  render();
});
load().catch((e) => say(status, `Could not load workers: ${e.message}`, false));
setInterval(() => refreshTimes(tbody), 1000);
