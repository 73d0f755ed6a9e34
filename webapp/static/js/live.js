// The one owner of the page's WebSocket to /ws.
//
// Views call `subscribe(topic, handlers)`; this module connects, reconnects
// with exponential backoff and full jitter, resumes every job topic from the
// last seq it delivered (so nothing is missed and nothing is shown twice),
// fills seq gaps over REST, and hands `reset` frames to the view to reload.
//
// handlers: {
//   since?: number                        // job topics: deliver events with seq > since
//   epoch?: string                        // job topics: the epoch `since` counts in (REST gives it)
//   onEvents(events)                      // envelopes, in order, each once (job topics)
//   onLatest?(entries)                    // jobs:latest: one entry per job changed since the last frame
//   onReset?(): Promise<number>           // reload over REST; resolve to the new last seq
//   onSubscribed?()                       // non-job topics: (re)subscribed; load over REST now,
//                                         // so nothing between the load and the live feed is lost
// }

const BACKOFF_BASE_MS = 400;
const BACKOFF_CAP_MS = 10_000;
const PING_EVERY_MS = 20_000;
const SILENCE_LIMIT_MS = 50_000;
const OFFLINE_AFTER_FAILURES = 6;

const topics = new Map(); // topic -> {handlers, lastSeq, buffer, filling, subscribedOnce, epoch}
const statusListeners = new Set();
let ws = null;
let status = "connecting";
let failures = 0;
let retryTimer = null;
let pingTimer = null;
let lastMessageAt = 0;
let started = false;
let retryAt = 0;

const isJobTopic = (topic) => topic.startsWith("job:");

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws`;
}

function setStatus(next) {
  if (next === status) return;
  status = next;
  for (const fn of statusListeners) fn(status, { retryAt, failures });
}

/** The connection state: "connecting" | "live" | "reconnecting" | "offline". */
export function connectionStatus() {
  return status;
}

/** Call `fn(status, info)` now and on every change; returns an unsubscribe function. */
export function onStatus(fn) {
  statusListeners.add(fn);
  fn(status, { retryAt, failures });
  return () => statusListeners.delete(fn);
}

function send(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify(frame));
    return true;
  }
  return false;
}

function sendSubscribe(topic, entry) {
  const frame = { op: "subscribe", topic };
  if (isJobTopic(topic)) {
    frame.since = entry.lastSeq;
    // The epoch names the Redis data our seqs count in; the server resets us if it changed.
    if (entry.epoch && entry.lastSeq > 0) frame.epoch = entry.epoch;
  }
  send(frame);
}

/** Subscribe a view to a topic; returns a function that unsubscribes it. */
export function subscribe(topic, handlers) {
  const entry = {
    handlers,
    lastSeq: handlers.since ?? 0,
    buffer: [],
    filling: false,
    subscribedOnce: false,
    epoch: handlers.epoch || null,
  };
  topics.set(topic, entry);
  start();
  sendSubscribe(topic, entry);
  return () => {
    if (topics.get(topic) === entry) {
      topics.delete(topic);
      send({ op: "unsubscribe", topic });
    }
  };
}

/** Tell the module the view now holds every event up to `seq` (after a REST reload). */
export function setLastSeq(topic, seq, epoch) {
  const entry = topics.get(topic);
  if (!entry) return;
  entry.lastSeq = Math.max(entry.lastSeq, seq);
  if (epoch) entry.epoch = epoch;
}

export function start() {
  if (started) return;
  started = true;
  window.addEventListener("online", () => reconnectNow());
  window.addEventListener("offline", () => {
    setStatus("offline");
    if (ws) ws.close();
  });
  window.addEventListener("pagehide", () => {
    stopping = true;
    if (ws) ws.close(1000, "page hidden");
  });
  window.addEventListener("pageshow", (e) => {
    if (e.persisted) {
      stopping = false;
      reconnectNow();
    }
  });
  connect();
}

let stopping = false;

function connect() {
  clearTimeout(retryTimer);
  retryTimer = null;
  if (stopping) return;
  let sock;
  try {
    sock = new WebSocket(wsUrl());
  } catch {
    scheduleReconnect(false);
    return;
  }
  ws = sock;
  sock.onopen = () => {
    if (ws !== sock) return;
    lastMessageAt = Date.now();
    for (const [topic, entry] of topics) sendSubscribe(topic, entry);
    setStatus("live");
    clearInterval(pingTimer);
    pingTimer = setInterval(() => {
      if (Date.now() - lastMessageAt > SILENCE_LIMIT_MS) {
        sock.close(4000, "silent");
        return;
      }
      send({ op: "ping" });
    }, PING_EVERY_MS);
  };
  sock.onmessage = (msg) => {
    if (ws !== sock) return;
    lastMessageAt = Date.now();
    failures = 0;
    let frame;
    try {
      frame = JSON.parse(msg.data);
    } catch {
      return;
    }
    dispatch(frame);
  };
  sock.onclose = (e) => {
    if (ws !== sock) return;
    ws = null;
    clearInterval(pingTimer);
    for (const entry of topics.values()) entry.buffer = [];
    if (stopping) return;
    if (e.code === 4401) {
      // Logged out, or the session was revoked: the page has nothing more to show.
      location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
      return;
    }
    // 1001: the server is going away (a restart): come back at once.
    scheduleReconnect(e.code === 1001);
  };
}

function scheduleReconnect(atOnce) {
  failures += 1;
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** Math.min(failures - 1, 10));
  // Full jitter spreads a crowd of clients over the window after a restart.
  const delay = atOnce && failures === 1 ? Math.random() * 150 : Math.random() * ceiling;
  retryAt = Date.now() + delay;
  const offline = !navigator.onLine || failures > OFFLINE_AFTER_FAILURES;
  setStatus(offline ? "offline" : "reconnecting");
  for (const fn of statusListeners) fn(status, { retryAt, failures });
  clearTimeout(retryTimer);
  retryTimer = setTimeout(connect, delay);
}

function reconnectNow() {
  if (ws && (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING)) return;
  failures = 0;
  connect();
}

function dispatch(frame) {
  const entry = frame.topic !== undefined ? topics.get(frame.topic) : undefined;
  switch (frame.type) {
    case "events":
      if (!entry) return;
      if (isJobTopic(frame.topic)) acceptJobEvents(frame.topic, entry, frame.events || []);
      else entry.handlers.onEvents?.(frame.events || []);
      return;
    case "latest":
      if (entry) entry.handlers.onLatest?.(frame.jobs || []);
      return;
    case "subscribed":
      if (!entry) return;
      if (!isJobTopic(frame.topic)) entry.handlers.onSubscribed?.();
      entry.subscribedOnce = true;
      if (typeof frame.epoch === "string" && frame.epoch) entry.epoch = frame.epoch;
      // The server's log ends before what we have shown: it lost data; reload.
      if (isJobTopic(frame.topic) && typeof frame.head === "number" && frame.head < entry.lastSeq) {
        resetTopic(frame.topic, entry);
      }
      return;
    case "reset":
      if (entry) resetTopic(frame.topic, entry);
      return;
    default:
      return; // pong, error: nothing to do
  }
}

async function resetTopic(topic, entry) {
  if (!entry.handlers.onReset) return;
  entry.buffer = [];
  entry.lastSeq = 0;
  entry.epoch = null;
  try {
    const seq = await entry.handlers.onReset();
    if (topics.get(topic) !== entry) return;
    entry.lastSeq = Math.max(entry.lastSeq, seq || 0);
  } catch {
    // keep lastSeq; the subscription below replays what the server still has
  }
  send({ op: "unsubscribe", topic });
  sendSubscribe(topic, entry);
}

function acceptJobEvents(topic, entry, events) {
  if (entry.filling) {
    entry.buffer.push(...events);
    return;
  }
  const ready = [];
  for (let i = 0; i < events.length; i++) {
    const ev = events[i];
    if (ev.seq <= entry.lastSeq) continue; // already shown
    if (ev.seq > entry.lastSeq + 1) {
      // A gap: fetch the missing events over REST, hold the rest meanwhile.
      deliver(entry, ready);
      entry.buffer.push(...events.slice(i));
      fillGap(topic, entry);
      return;
    }
    entry.lastSeq = ev.seq;
    ready.push(ev);
  }
  deliver(entry, ready);
}

function deliver(entry, events) {
  if (events.length) entry.handlers.onEvents(events);
}

async function fillGap(topic, entry) {
  entry.filling = true;
  const jobId = topic.slice("job:".length);
  let fetched = [];
  try {
    const res = await fetch(`/api/jobs/${encodeURIComponent(jobId)}/events?since=${entry.lastSeq}`, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    });
    if (res.ok) fetched = (await res.json()).events || [];
  } catch {
    // fall through: deliver what we hold, in order
  }
  if (topics.get(topic) !== entry) return;
  const held = entry.buffer;
  entry.buffer = [];
  entry.filling = false;
  const bySeq = new Map();
  for (const ev of [...fetched, ...held]) if (ev.seq > entry.lastSeq) bySeq.set(ev.seq, ev);
  const merged = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  for (const ev of merged) entry.lastSeq = Math.max(entry.lastSeq, ev.seq);
  deliver(entry, merged);
}
