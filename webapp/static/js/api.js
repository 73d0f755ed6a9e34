// REST helpers: JSON in, JSON out; errors become ApiError with the contract's body.

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.field = err.field;
    this.errors = Array.isArray(err.errors) ? err.errors : [];
  }
}

/** The session's CSRF token, which every state change made with the cookie must carry. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return (meta && meta.content) || "";
}

/** Headers for a request: JSON, and the CSRF token on anything that changes state. */
export function requestHeaders(method) {
  const headers = { Accept: "application/json" };
  const token = csrfToken();
  if (token && !["GET", "HEAD"].includes(method)) headers["X-CSRF-Token"] = token;
  return headers;
}

export async function api(path, { method = "GET", body, signal } = {}) {
  const init = {
    method,
    signal,
    credentials: "same-origin",
    headers: requestHeaders(method),
  };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, { error: { code: "network", message: "The server cannot be reached." } });
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.status === 401 && path !== "/api/session") {
    // The session ended (logged out, revoked, expired): log in again and come back.
    location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const getJob = (id) => api(`/api/jobs/${encodeURIComponent(id)}`);
export const getEvents = (id, since = 0) => api(`/api/jobs/${encodeURIComponent(id)}/events?since=${since}`);
export const listJobs = (params) => api(`/api/jobs?${new URLSearchParams(params)}`);
export const listAgents = () => api("/api/agents");
export const submitJob = (body) => api("/api/jobs", { method: "POST", body });
export const cancelJob = (id) => api(`/api/jobs/${encodeURIComponent(id)}/cancel`, { method: "POST" });
export const answerJob = (id, answer) =>
  api(`/api/jobs/${encodeURIComponent(id)}/input`, { method: "POST", body: { answer } });
/** A new run of the job: from the start, or (`from` "failure") replaying its recorded steps up to the one that failed. */
export const retryJob = (id, from = "start") =>
  api(`/api/jobs/${encodeURIComponent(id)}/retry`, { method: "POST", body: { from } });

/** All of a job's events after `since` ({events, epoch}), following pages until `head`. */
export async function getAllEvents(id, since = 0) {
  const all = [];
  let cursor = since;
  let epoch = "";
  for (let i = 0; i < 1000; i++) {
    const page = await getEvents(id, cursor);
    const events = page.events || [];
    epoch = page.epoch || epoch;
    all.push(...events);
    if (!events.length) break;
    cursor = events[events.length - 1].seq;
    if (typeof page.head === "number" && cursor >= page.head) break;
  }
  return { events: all, epoch };
}
