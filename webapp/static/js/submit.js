// The submit page (/submit): pick an agent, fill the form its JSON Schema
// generates, see the server's validation errors at their fields, then go
// straight to the new job's run view.
import { ApiError, listAgents, submitJob } from "./api.js";
import { $, clear, el, richText } from "./dom.js";
import { buildFields } from "./schema_form.js";

const form = $("#submit-form");
const select = $("#agent");
const desc = $("#agent-desc");
const fieldset = $("#input-fields");
const formError = $("#form-error");
const button = $("#submit-btn");
const queue = $("#opt-queue");
const priority = $("#opt-priority");

let agents = [];
let current = null; // the buildFields handle

function showFormError(text) {
  formError.hidden = !text;
  formError.textContent = text || "";
}

function optionError(input, message) {
  const node = document.getElementById(`${input.id}-error`);
  node.hidden = !message;
  node.textContent = message || "";
  if (message) {
    input.setAttribute("aria-invalid", "true");
    input.closest("details").open = true;
  } else input.removeAttribute("aria-invalid");
}

function pick(name) {
  const agent = agents.find((a) => a.name === name) || agents[0];
  if (!agent) return;
  select.value = agent.name;
  clear(desc).append(...richText(agent.description || ""));
  current = buildFields(agent.input_schema || {}, fieldset);
  showFormError("");
  const url = new URL(location.href);
  url.searchParams.set("agent", agent.name);
  history.replaceState(null, "", url);
}

async function init() {
  try {
    agents = (await listAgents()).agents || [];
  } catch (err) {
    fieldset.replaceChildren(el("legend", {}, "Input"), el("p", { class: "notice" }, `Could not load agents: ${err.message}`));
    button.disabled = true;
    return;
  }
  if (!agents.length) {
    fieldset.replaceChildren(el("legend", {}, "Input"), el("p", { class: "muted" }, "No agents are registered."));
    button.disabled = true;
    return;
  }
  for (const a of agents) select.append(el("option", { value: a.name }, a.name));
  pick(form.dataset.agent || new URL(location.href).searchParams.get("agent") || agents[0].name);
}

select.addEventListener("change", () => pick(select.value));

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!current) return;
  current.clearErrors();
  optionError(queue, "");
  optionError(priority, "");
  showFormError("");
  const { values, errors } = current.collect();
  if (errors.length) {
    current.showErrors(errors);
    return;
  }
  const body = { agent: select.value, input: values };
  if (queue.value.trim()) body.queue = queue.value.trim();
  if (priority.value.trim()) body.priority = Number(priority.value);
  button.disabled = true;
  button.textContent = "Submitting…";
  let job = null;
  try {
    job = await submitJob(body);
    location.assign(`/jobs/${encodeURIComponent(job.id)}`);
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    const list = err.errors.length ? err.errors : err.field ? [{ field: err.field, message: err.message }] : [];
    const rest = [];
    for (const item of list) {
      if (item.field === "queue") optionError(queue, item.message);
      else if (item.field === "priority") optionError(priority, item.message);
      else if (item.field === "agent") rest.push(item);
      else rest.push(item);
    }
    const unmatched = current.showErrors(rest.filter((x) => x.field !== "agent"));
    const leftover = [...rest.filter((x) => x.field === "agent"), ...unmatched];
    if (!list.length) showFormError(err.message);
    else if (leftover.length) showFormError(leftover.map((x) => (x.field ? `${x.field}: ${x.message}` : x.message)).join(" "));
    else showFormError(list.length > 1 ? `${list.length} fields need attention.` : "");
  } finally {
    if (!job) {
      button.disabled = false;
      button.textContent = "Run";
    }
  }
});

init();
