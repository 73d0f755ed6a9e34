// The login form: a token, or a name and password. The server sets the session cookie.
import { ApiError, api } from "./api.js";

const form = document.getElementById("login-form");
const message = document.getElementById("login-error");

function nextPath() {
  const target = form.dataset.next || "/";
  return target.startsWith("/") && !target.startsWith("//") ? target : "/";
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const data = new FormData(form);
  const token = String(data.get("token") || "").trim();
  const body = token
    ? { token }
    : { name: String(data.get("name") || "").trim(), password: String(data.get("password") || "") };
  message.textContent = "";
  try {
    await api("/api/session", { method: "POST", body });
    location.assign(nextPath());
  } catch (err) {
    message.textContent = err instanceof ApiError && err.status === 401
      ? "Wrong name, password or token."
      : `Could not log in: ${err.message}`;
  }
});
