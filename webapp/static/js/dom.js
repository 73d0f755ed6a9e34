// Small DOM helpers. Everything from a job or an agent goes in as text
// (textContent / text nodes), never as HTML.

export const STATES = ["PENDING", "RECEIVED", "STARTED", "RETRY", "WAITING", "SUCCESS", "FAILURE", "REVOKED"];
export const FINAL = new Set(["SUCCESS", "FAILURE", "REVOKED"]);

/** el("div", {class: "x", dataset: {seq: 1}, onclick}, "text", child, ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, String(value));
  }
  append(node, children);
  return node;
}

function append(node, children) {
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function $(selector, root = document) {
  return root.querySelector(selector);
}

export function stateBadge(state) {
  const s = String(state || "UNKNOWN");
  return el("span", { class: `badge state-${s.toLowerCase()}`, dataset: { state: s } }, s);
}

export function setBadge(badge, state) {
  const s = String(state || "UNKNOWN");
  badge.className = `badge state-${s.toLowerCase()}`;
  badge.dataset.state = s;
  badge.textContent = s;
}

/** JSON for display (as text), never throwing. */
export function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}

export function compact(value, max = 160) {
  let s;
  if (typeof value === "string") s = value;
  else {
    try {
      s = JSON.stringify(value);
    } catch {
      s = String(value);
    }
  }
  if (s === undefined) s = "";
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

// ---- time -----------------------------------------------------------------

const absFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});

export function absTime(ts) {
  if (ts === null || ts === undefined) return "";
  return absFmt.format(new Date(ts * 1000));
}

export function isoTime(ts) {
  return ts === null || ts === undefined ? "" : new Date(ts * 1000).toISOString();
}

export function relTime(ts, now = Date.now() / 1000) {
  if (ts === null || ts === undefined) return "—";
  const d = Math.round(now - ts);
  if (d < 5 && d > -5) return "just now";
  const a = Math.abs(d);
  const [n, unit] =
    a < 60 ? [a, "s"] : a < 3600 ? [Math.floor(a / 60), "min"] : a < 86400 ? [Math.floor(a / 3600), "h"] : [Math.floor(a / 86400), "d"];
  return d >= 0 ? `${n} ${unit} ago` : `in ${n} ${unit}`;
}

/** A <time> showing the relative time, the absolute one on hover and to readers. */
export function timeEl(ts) {
  return setTime(el("time", { class: "rel" }), ts);
}

/** Point a <time class="rel"> at `ts` (`abs`: its absolute text, when the caller has it). */
export function setTime(t, ts, abs = absTime(ts)) {
  t.setAttribute("datetime", isoTime(ts));
  t.title = abs;
  t.dataset.ts = ts ?? "";
  t.textContent = relTime(ts);
  return t;
}

/** Refresh every relative <time> under root (call on a timer). */
export function refreshTimes(root = document) {
  const now = Date.now() / 1000;
  for (const t of root.querySelectorAll("time.rel[data-ts]")) {
    const ts = parseFloat(t.dataset.ts);
    if (!Number.isNaN(ts)) {
      const text = relTime(ts, now);
      if (t.textContent !== text) t.textContent = text;
    }
  }
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return "—";
  if (seconds < 0) seconds = 0;
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds % 60);
  if (m < 60) return `${m} min ${s} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Run `fn` once per animation frame at most (falls back to a timer when hidden). */
export function frameBatcher(fn) {
  let scheduled = false;
  const run = () => {
    if (!scheduled) return;
    scheduled = false;
    fn();
  };
  return () => {
    if (scheduled) return;
    scheduled = true;
    if (document.hidden) setTimeout(run, 100);
    else {
      requestAnimationFrame(run);
      setTimeout(run, 250); // rAF can be paused; never hold events for long
    }
  };
}

/** A polite announcer for screen readers, throttled so bursts don't flood it. */
export function announcer(node) {
  let last = 0;
  let pending = null;
  let timer = null;
  return (message) => {
    pending = message;
    const wait = Math.max(0, last + 1000 - Date.now());
    clearTimeout(timer);
    timer = setTimeout(() => {
      node.textContent = pending;
      last = Date.now();
    }, wait);
  };
}

/** Text with `code` spans drawn as <code>; still text only, never HTML. */
export function richText(text) {
  const parts = String(text ?? "").split("`");
  return parts.map((part, i) => (i % 2 === 1 && i < parts.length - 1 ? el("code", {}, part) : part));
}
