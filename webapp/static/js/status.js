// The connection indicator in the header: live / reconnecting / offline.
import { onStatus, start } from "./live.js";

const LABELS = {
  connecting: "Connecting…",
  live: "Live",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

const node = document.getElementById("conn");
if (node) {
  const label = node.querySelector(".conn-label");
  let timer = null;
  onStatus((status, info) => {
    node.dataset.status = status;
    clearInterval(timer);
    const render = () => {
      let text = LABELS[status] || status;
      if (status !== "live" && info && info.retryAt > Date.now() + 1000) {
        text += ` retry in ${Math.ceil((info.retryAt - Date.now()) / 1000)} s`;
      }
      label.textContent = text;
    };
    render();
    if (status !== "live") timer = setInterval(render, 1000);
    node.title = status === "live" ? "Updates arrive as they happen" : "Updates paused; the page catches up on reconnect";
  });
  start();
}
