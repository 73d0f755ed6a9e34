// The header's user menu: log out ends this browser's session on the server too.
import { api } from "./api.js";

const button = document.getElementById("logout");
if (button) {
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await api("/api/session", { method: "DELETE" });
    } finally {
      location.assign("/login");
    }
  });
}
