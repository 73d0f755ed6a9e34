// Broker queues: ready, unacked, consumers; refreshed whenever a dashboard sample is pushed.
import { $, clear, el } from "../js/dom.js";
import { subscribe } from "../js/live.js";
import { mapi, num, workerUrl } from "./common.js";

const tbody = $("#queues tbody");
const status = $("#broker-status");
let busy = false;

async function load() {
  if (busy) return;
  busy = true;
  try {
    const data = await mapi("/api/monitor/broker");
    clear(tbody).append(...data.queues.map((q) => el("tr", { dataset: { queue: q.name } },
      el("td", { class: "mono" }, q.name),
      el("td", { class: "num", dataset: { field: "messages" } }, num(q.messages)),
      el("td", { class: "num", dataset: { field: "unacked" } }, num(q.unacked)),
      el("td", { class: "num", dataset: { field: "consumers" } }, num(q.consumers)),
      el("td", {}, ...q.workers.flatMap((w, i) => [i ? ", " : "", el("a", { href: workerUrl(w) }, w)])),
    )));
    status.textContent = `${data.broker} · updated ${new Date(data.ts * 1000).toLocaleTimeString()}`;
  } catch (e) {
    status.textContent = `Could not load the broker: ${e.message}`;
  } finally {
    busy = false;
  }
}

subscribe("workers", {
  onEvents(events) {
    if (events.some((ev) => ev.type === "dashboard.sample" || ev.type === "worker.offline" || ev.type === "worker.online")) load();
  },
  onSubscribed: load,
});
load();
