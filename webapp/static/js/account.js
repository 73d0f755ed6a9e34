// The account page (/account): your API tokens and, for admins, the users.
import { ApiError, api } from "./api.js";
import { $, clear, el, timeEl } from "./dom.js";

const ROLES = ["viewer", "operator", "admin"];
let me = null;

function say(node, text, ok = true) {
  node.textContent = text;
  node.dataset.ok = String(ok);
}

function problem(err) {
  return err instanceof ApiError ? err.message : String(err);
}

// -- tokens ------------------------------------------------------------------------
async function loadTokens() {
  const body = $("#tokens tbody");
  const { tokens } = await api("/api/tokens");
  clear(body);
  if (!tokens.length) body.append(el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No API tokens yet.")));
  for (const t of tokens) {
    body.append(el("tr", { dataset: { token: t.id } },
      el("td", {}, t.name),
      el("td", {}, t.role || "mine"),
      el("td", {}, timeEl(t.created_at)),
      el("td", {}, t.expires_at ? timeEl(t.expires_at) : "never"),
      el("td", {}, el("button", { type: "button", class: "secondary small", onclick: () => revoke(t) }, "Revoke"))));
  }
}

async function revoke(token) {
  if (!confirm(`Revoke the token "${token.name}"? Whatever uses it stops working.`)) return;
  try {
    await api(`/api/tokens/${encodeURIComponent(token.id)}`, { method: "DELETE" });
    say($("#tokens-status"), `Revoked "${token.name}".`);
    await loadTokens();
  } catch (err) {
    say($("#tokens-status"), problem(err), false);
  }
}

$("#token-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  const data = new FormData(form);
  const body = { name: String(data.get("name")).trim() };
  if (data.get("role")) body.role = data.get("role");
  const days = Number(data.get("days"));
  if (days > 0) body.expires_in = days * 86400;
  try {
    const made = await api("/api/tokens", { method: "POST", body });
    $("#new-token-value").textContent = made.token;
    $("#new-token").hidden = false;
    say($("#tokens-status"), `Made "${made.name}".`);
    form.reset();
    await loadTokens();
  } catch (err) {
    say($("#tokens-status"), problem(err), false);
  }
});

// -- users (admins) ---------------------------------------------------------------------
async function loadUsers() {
  const body = $("#users tbody");
  if (!body) return;
  const { users } = await api("/api/users");
  clear(body);
  for (const u of users) {
    const role = el("select", { "aria-label": `Role of ${u.name}`, onchange: (e) => change(u, { role: e.target.value }) },
      ROLES.map((r) => el("option", { value: r, selected: r === u.role }, r)));
    const all = el("input", { type: "checkbox", "aria-label": `${u.name} sees all jobs`, checked: u.all_jobs,
      onchange: (e) => change(u, { all_jobs: e.target.checked }) });
    const toggle = el("button", { type: "button", class: u.disabled ? "small" : "secondary small",
      disabled: u.id === me.id, onclick: () => change(u, { disabled: !u.disabled }) },
      u.disabled ? "Enable" : "Disable");
    body.append(el("tr", { dataset: { user: u.name } },
      el("td", {}, u.name), el("td", {}, role), el("td", {}, all),
      el("td", {}, u.disabled ? "disabled " : "active ", toggle)));
  }
}

async function change(user, patch) {
  try {
    await api(`/api/users/${encodeURIComponent(user.id)}`, { method: "PATCH", body: patch });
    say($("#users-status"), `Changed ${user.name}.`);
  } catch (err) {
    say($("#users-status"), problem(err), false);
  }
  await loadUsers();
}

const userForm = $("#user-form");
if (userForm) {
  userForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = new FormData(userForm);
    const body = { name: String(data.get("name")).trim(), role: data.get("role"), all_jobs: data.get("all_jobs") === "on" };
    if (data.get("password")) body.password = data.get("password");
    try {
      const user = await api("/api/users", { method: "POST", body });
      say($("#users-status"), `Added ${user.name}.`);
      userForm.reset();
      await loadUsers();
    } catch (err) {
      say($("#users-status"), problem(err), false);
    }
  });
}

async function start() {
  me = await api("/api/me");
  const roles = $("#token-role");
  for (const r of ROLES.slice(0, ROLES.indexOf(me.role) + 1)) roles.append(el("option", { value: r }, r));
  await Promise.all([loadTokens(), loadUsers()]);
}

start().catch((err) => say($("#tokens-status"), problem(err), false));
