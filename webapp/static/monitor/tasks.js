// Every task from SQL history: Flower's search syntax, sortable columns, server-side
// pages over a fixed snapshot (`until`), so paging is stable while tasks keep coming;
// the rows on screen follow their state over the WebSocket ("jobs" topic).
import { $, absTime, clear, compact, duration, el, setBadge, stateBadge } from "../js/dom.js";
import { subscribe } from "../js/live.js";
import { mapi, taskUrl, workerUrl } from "./common.js";

const PAGE = 50;
const form = $("#task-filters");
const tbody = $("#tasks tbody");
const status = $("#tasks-status");
const empty = $("#tasks-empty");
const newBtn = $("#new-tasks");
const params = new URLSearchParams(location.search);
const query = {
  search: params.get("search") || "",
  state: params.get("state") || "",
  taskname: params.get("taskname") || "",
  workername: params.get("workername") || "",
  sort_by: params.get("sort_by") || "",
  offset: Number(params.get("offset")) || 0,
  until: params.get("until") || "",
};
const rows = new Map(); // task id -> tr
let total = 0;
let fresh = 0;

function row(t) {
  const tr = el("tr", { dataset: { task: t.uuid, state: t.state } });
  tr.append(
    el("td", {}, el("a", { href: taskUrl(t.uuid), class: "job-id", title: t.uuid }, t.uuid.slice(0, 8))),
    el("td", { class: "mono small name" }, t.name || t.agent || "—"),
    el("td", { class: "state" }, stateBadge(t.state)),
    el("td", { class: "mono small clip" }, compact(t.args ?? "", 60)),
    el("td", { class: "mono small clip" }, compact(t.result ?? t.exception ?? "", 60)),
    el("td", { class: "small date" }, absTime(t.received)),
    el("td", { class: "small date" }, absTime(t.started)),
    el("td", { class: "num dur" }, duration(t.runtime)),
    el("td", { class: "small worker" }, t.worker ? el("a", { href: workerUrl(t.worker) }, t.worker) : "—"),
  );
  return tr;
}

// The newest state each task's events gave (by seq), whether or not its row is on
// screen: SQL history is written after the event goes out, so a reload or a row's
// refresh can read an older state than the page has seen; the newer one wins.
const live = new Map(); // task id -> {seq, state}
const LIVE_KEPT = 5000;
const refreshing = new Map(); // task id -> timer: one fetch per burst of events
const REFRESH_MS = 150;
const REFRESH_TRIES = 8;

function noteLive(ev) {
  const known = live.get(ev.job);
  if (known && known.seq >= ev.seq) return false;
  live.delete(ev.job); // re-inserted last: the oldest entries are dropped first
  live.set(ev.job, { seq: ev.seq, state: ev.state });
  if (live.size > LIVE_KEPT) live.delete(live.keys().next().value);
  return true;
}

/** The row for `t`, with the live state if history has not caught up yet; and whether it had. */
function liveRow(t) {
  const known = live.get(t.uuid);
  const behind = known !== undefined && known.seq > (t.clock ?? 0);
  const tr = row(behind ? { ...t, state: known.state } : t);
  return { tr, behind };
}

function refreshRow(id, tries = 0) {
  clearTimeout(refreshing.get(id));
  refreshing.set(id, setTimeout(async () => {
    refreshing.delete(id);
    try {
      const t = await mapi(`/api/monitor/tasks/${encodeURIComponent(id)}`);
      const old = rows.get(id);
      if (!old) return;
      const { tr, behind } = liveRow(t);
      old.replaceWith(tr);
      rows.set(id, tr);
      if (behind && tries < REFRESH_TRIES) refreshRow(id, tries + 1);
    } catch {
      // keep the row as it is
    }
  }, REFRESH_MS * 2 ** tries));
}

function syncUrl() {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v) p.set(k, String(v));
  history.replaceState(null, "", `${location.pathname}${p.size ? `?${p}` : ""}`);
}

async function load() {
  const p = new URLSearchParams({ limit: PAGE, offset: query.offset, types: "1" });
  for (const k of ["search", "state", "taskname", "workername", "sort_by", "until"]) if (query[k]) p.set(k, query[k]);
  status.textContent = "Loading…";
  let data;
  try {
    data = await mapi(`/api/monitor/tasks?${p}`);
  } catch (e) {
    status.textContent = `Could not load tasks: ${e.message}`;
    return;
  }
  query.until = String(data.until);
  total = data.total;
  fresh = 0;
  newBtn.hidden = true;
  rows.clear();
  clear(tbody);
  for (const t of data.tasks) {
    const { tr, behind } = liveRow(t);
    rows.set(t.uuid, tr);
    tbody.append(tr);
    if (behind) refreshRow(t.uuid);
  }
  empty.hidden = data.tasks.length > 0;
  const first = data.tasks.length ? query.offset + 1 : 0;
  const last = query.offset + data.tasks.length;
  status.textContent = `${total} task${total === 1 ? "" : "s"}`;
  $("#page-info").textContent = `${first}–${last} of ${total}`;
  $("#prev-page").disabled = query.offset === 0;
  $("#next-page").disabled = last >= total;
  if (data.types) fillSelect(form.elements.taskname, data.types, query.taskname);
  for (const th of document.querySelectorAll("th[data-sort]")) {
    const key = th.dataset.sort;
    th.setAttribute("aria-sort", query.sort_by === key ? "ascending" : query.sort_by === `-${key}` ? "descending" : "none");
  }
  syncUrl();
}

function fillSelect(select, values, chosen) {
  const keep = new Set([...select.options].map((o) => o.value));
  for (const v of values) if (!keep.has(v)) select.append(el("option", { value: v }, v));
  select.value = chosen;
}

async function loadWorkers() {
  try {
    const data = await mapi("/api/monitor/workers");
    fillSelect(form.elements.workername, data.workers.map((w) => w.hostname), query.workername);
  } catch {
    // the select stays with "any"
  }
}

function restart() {
  query.offset = 0;
  query.until = "";
  load();
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const f = new FormData(form);
  for (const k of ["search", "state", "taskname", "workername"]) query[k] = String(f.get(k) || "");
  restart();
});
form.addEventListener("reset", () => {
  setTimeout(() => {
    for (const k of ["search", "state", "taskname", "workername"]) query[k] = "";
    restart();
  });
});
for (const th of document.querySelectorAll("th[data-sort] button")) {
  th.addEventListener("click", () => {
    const key = th.parentElement.dataset.sort;
    query.sort_by = query.sort_by === `-${key}` ? key : `-${key}`;
    restart();
  });
}
$("#prev-page").addEventListener("click", () => {
  query.offset = Math.max(0, query.offset - PAGE);
  load();
});
$("#next-page").addEventListener("click", () => {
  query.offset += PAGE;
  load();
});
newBtn.addEventListener("click", restart);

subscribe("jobs", {
  onEvents(events) {
    for (const ev of events) {
      if (!noteLive(ev)) continue; // older than what the page holds
      const tr = rows.get(ev.job);
      if (tr) {
        tr.dataset.state = ev.state;
        setBadge(tr.querySelector(".state .badge"), ev.state);
        if (ev.type !== "job.queued") refreshRow(ev.job);
      } else if (ev.type === "job.queued") {
        fresh += 1;
        newBtn.hidden = false;
        newBtn.textContent = `Show ${fresh} new task${fresh === 1 ? "" : "s"}`;
      }
    }
  },
  onSubscribed: () => load(),
});

for (const k of ["search", "state", "taskname", "workername"]) form.elements[k].value = query[k];
loadWorkers();
load();
