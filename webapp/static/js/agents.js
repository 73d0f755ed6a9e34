// The agents page (/agents): every registered agent, its description and input
// schema, its recent runs and success rate; recent runs follow the "jobs" topic.
import { listAgents, listJobs } from "./api.js";
import { $, clear, el, pretty, richText, refreshTimes, setBadge, stateBadge, timeEl } from "./dom.js";
import { subscribe } from "./live.js";

const RECENT = 5;
const list = $("#agents");
const status = $("#agents-status");
const cards = new Map(); // agent name -> {recent, rate, jobs: Map}

function typeText(s) {
  if (!s) return "any";
  if (s.$ref) return String(s.$ref).split("/").pop();
  if (Array.isArray(s.enum)) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  if (Array.isArray(s.anyOf)) return s.anyOf.map(typeText).join(" | ");
  if (s.type === "array") return `array of ${typeText(s.items)}`;
  return Array.isArray(s.type) ? s.type.join(" | ") : s.type || "any";
}

function schemaTable(schema) {
  const props = schema.properties || {};
  const required = new Set(schema.required || []);
  const names = Object.keys(props);
  if (!names.length) return el("p", { class: "muted" }, "No input.");
  return el("table", { class: "schema" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Field"), el("th", { scope: "col" }, "Type"), el("th", { scope: "col" }, "Default"))),
    el("tbody", {}, names.map((n) => {
      const p = props[n];
      return el("tr", {},
        el("td", {}, el("code", {}, n), required.has(n) ? el("span", { class: "req" }, " required") : null),
        el("td", {}, typeText(p)),
        el("td", {}, p.default !== undefined ? el("code", {}, JSON.stringify(p.default)) : "—"));
    })));
}

function runItem(job) {
  return el("li", { dataset: { job: job.id } },
    el("a", { href: `/jobs/${encodeURIComponent(job.id)}`, class: "job-id" }, job.id.slice(0, 8)), " ",
    stateBadge(job.state), " ",
    timeEl(job.created_at));
}

function card(agent) {
  const recent = el("ol", { class: "recent" }, el("li", { class: "muted" }, "Loading…"));
  const rate = el("span", { class: "rate" }, "—");
  const node = el("article", { class: "agent-card panel", id: `agent-${agent.name}`, "aria-labelledby": `agent-h-${agent.name}` },
    el("header", { class: "agent-head" },
      el("h2", { id: `agent-h-${agent.name}` }, agent.name),
      el("a", { class: "button", href: `/submit?agent=${encodeURIComponent(agent.name)}` }, "Run…")),
    el("p", {}, agent.description ? richText(agent.description) : el("span", { class: "muted" }, "No description.")),
    el("div", { class: "agent-body" },
      el("section", {}, el("h3", {}, "Input"), schemaTable(agent.input_schema || {}),
        el("details", {}, el("summary", {}, "JSON Schema"), el("pre", { class: "json" }, pretty(agent.input_schema || {})))),
      el("section", {}, el("h3", {}, "Recent runs"), el("p", { class: "small" }, "Success rate ", rate), recent)),
    el("p", { class: "muted small" }, `If its worker is lost: ${agent.on_lost === "fail" ? "fail the run" : "run it again"}.`));
  cards.set(agent.name, { recent, rate, jobs: new Map() });
  return node;
}

async function loadRuns(name) {
  const c = cards.get(name);
  try {
    const page = await listJobs({ agent: name, limit: String(RECENT) });
    clear(c.recent);
    c.jobs.clear();
    for (const job of page.jobs || []) {
      const item = runItem(job);
      c.jobs.set(job.id, item);
      c.recent.append(item);
    }
    if (!c.jobs.size) c.recent.append(el("li", { class: "muted" }, "No runs yet."));
    const n = page.counts || {};
    // Cancelled runs (REVOKED) are neither successes nor failures: they are left out.
    const ok = n.SUCCESS || 0;
    const done = ok + (n.FAILURE || 0);
    const cancelled = n.REVOKED || 0;
    c.rate.dataset.success = String(ok);
    c.rate.dataset.failure = String(n.FAILURE || 0);
    c.rate.textContent =
      (done ? `${Math.round((ok / done) * 100)}% of ${done} finished` : "no finished runs") +
      (cancelled ? ` (${cancelled} cancelled, not counted)` : "");
  } catch (err) {
    clear(c.recent).append(el("li", { class: "muted" }, `Could not load runs: ${err.message}`));
  }
}

const reloads = new Map();
function reloadSoon(name) {
  if (reloads.has(name)) return;
  reloads.set(name, setTimeout(() => {
    reloads.delete(name);
    loadRuns(name);
  }, 400));
}

async function init() {
  let agents;
  try {
    agents = (await listAgents()).agents || [];
  } catch (err) {
    status.textContent = `Could not load agents: ${err.message}`;
    return;
  }
  status.textContent = `${agents.length} agent${agents.length === 1 ? "" : "s"} registered.`;
  for (const a of agents) list.append(card(a));
  let loadedOnce = false;
  const loadAll = () => {
    if (loadedOnce) return;
    loadedOnce = true;
    for (const a of agents) loadRuns(a.name);
  };
  setTimeout(loadAll, 1500); // no live feed: load anyway
  subscribe("jobs", {
    onEvents(events) {
      for (const ev of events) {
        const agent = ev.data?.agent;
        if (ev.type === "job.queued" && agent && cards.has(agent)) {
          reloadSoon(agent);
          continue;
        }
        for (const [name, c] of cards) {
          const item = c.jobs.get(ev.job);
          if (!item) continue;
          setBadge(item.querySelector(".badge"), ev.state);
          if (["SUCCESS", "FAILURE", "REVOKED"].includes(ev.state)) reloadSoon(name);
        }
      }
    },
    onSubscribed() {
      // Loaded once the feed is on, so no change falls between the two.
      if (!loadedOnce) loadAll();
      else for (const name of cards.keys()) reloadSoon(name);
    },
  });
  setInterval(() => refreshTimes(list), 5000);
}

init();
