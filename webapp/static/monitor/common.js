// Shared by the monitoring pages: REST with the session's CSRF token, admin bar, formatting.
import { ApiError, requestHeaders } from "../js/api.js";
import { $, el } from "../js/dom.js";

/** fetch JSON (a body as JSON, or `form` as a form, as Flower's API takes). */
export async function mapi(path, { method = "GET", body, form } = {}) {
  const headers = requestHeaders(method);
  const init = { method, headers, credentials: "same-origin" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  } else if (form !== undefined) {
    init.body = new URLSearchParams(form);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, { error: { code: "network", message: "The server cannot be reached." } });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

/** The admin bar: says whether this user's role allows the controls. */
export async function adminBar(onChange) {
  const bar = $("#admin-bar");
  if (!bar) return false;
  let who = { admin: false };
  try {
    who = await mapi("/api/monitor/whoami");
  } catch {
    // keep the defaults
  }
  bar.replaceChildren();
  bar.dataset.admin = String(who.admin);
  bar.append(el("span", { class: "muted small" },
    who.admin ? "Admin controls enabled." : "Controls need the admin role."));
  onChange?.(who.admin);
  return who.admin;
}

/** Show a control's outcome in the page's status line. */
export function say(node, message, ok = true) {
  if (!node) return;
  node.textContent = message;
  node.dataset.ok = String(ok);
}

export function bytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let v = Number(n);
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(v < 10 && i ? 1 : 0)} ${units[i]}`;
}

export function num(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(n)) return "—";
  return Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export function seconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 1) return `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  return `${(s / 60).toFixed(1)} min`;
}

export const workerUrl = (host) => `/monitor/workers/${encodeURIComponent(host)}`;
export const taskUrl = (id) => `/monitor/tasks/${encodeURIComponent(id)}`;
