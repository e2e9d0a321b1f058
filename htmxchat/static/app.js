// htmxchat page behaviour: keyboard, auto-scroll, connection status, conversation sync.
// No inline scripts anywhere (strict CSP); htmx does the swapping.
(function () {
  "use strict";

  const app = document.getElementById("app");
  if (!app) return;
  const conversation = app.dataset.conversation;
  let socket = null;      // the ws extension's socket wrapper, once open
  let lastSent = null;    // text of the last message handed to the socket
  let stickToBottom = true;

  const $ = (id) => document.getElementById(id);
  const input = () => $("composer-input");
  const busy = () => $("composer-actions")?.dataset.busy === "true";
  const online = () => app.dataset.connection === "open";

  function setConnection(state, text) {
    app.dataset.connection = state;
    const label = $("connection");
    if (label) {
      label.dataset.state = state;
      label.textContent = text;
    }
  }

  function showNotice(text) {
    const notice = $("notice");
    if (notice) notice.textContent = text;
  }

  function nearBottom() {
    const t = $("transcript");
    return !t || t.scrollHeight - t.scrollTop - t.clientHeight < 80;
  }

  function scrollToBottom() {
    const t = $("transcript");
    if (t) t.scrollTop = t.scrollHeight;
  }

  function autoGrow(el) {
    el.style.height = "auto";
    el.style.height = Math.min(el.scrollHeight, window.innerHeight * 0.4) + "px";
  }

  function send(action) {
    if (!socket) return;
    socket.send(JSON.stringify({ action: action, conversation: conversation }));
  }

  app.addEventListener("htmx:wsConnecting", () => setConnection("connecting", "Connecting…"));
  app.addEventListener("htmx:wsOpen", (e) => {
    socket = e.detail.socketWrapper;
    // Never replay prompts typed while offline: the Send button was disabled then.
    socket.queue.length = 0;
    setConnection("open", "Connected");
    send("sync"); // the server answers with the conversation as it has it now
  });
  app.addEventListener("htmx:wsClose", (e) => {
    const code = e.detail.event.code;
    const retrying = [1006, 1011, 1012, 1013].includes(code);
    setConnection("closed", retrying ? "Reconnecting…" : "Disconnected: reload the page");
  });

  // Remember whether the reader was at the bottom before a frame lands, follow if so.
  app.addEventListener("htmx:wsBeforeMessage", () => { stickToBottom = nearBottom(); });
  app.addEventListener("htmx:wsAfterMessage", () => { if (stickToBottom) scrollToBottom(); });

  // Blank messages never leave the page; nothing is sent while offline or busy.
  app.addEventListener("htmx:wsConfigSend", (e) => {
    const params = e.detail.parameters;
    if (params.action !== "send") return;
    const text = typeof params.message === "string" ? params.message : "";
    if (!text.trim() || !online() || busy()) {
      e.preventDefault();
      if (text.trim() && !online()) {
        showNotice("Not connected to htmxchat right now. Your message stays here; send it once the connection is back.");
      }
      return;
    }
    lastSent = text;
  });

  // The server clears the box once it stored the message; keep anything typed since.
  document.body.addEventListener("htmx:oobBeforeSwap", (e) => {
    const target = e.detail.target;
    if (target && target.id === "composer-input" && lastSent !== null && target.value !== lastSent) {
      e.detail.shouldSwap = false;
    }
  });

  document.body.addEventListener("htmx:oobAfterSwap", (e) => {
    const target = e.detail.target;
    if (target && target.id === "composer-input") lastSent = null;
  });

  document.addEventListener("keydown", (e) => {
    const box = input();
    if (e.key === "Escape" && busy()) {
      e.preventDefault();
      send("stop");
      return;
    }
    if (e.target === box && e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      if (!busy()) $("composer").requestSubmit();
    }
  });

  document.addEventListener("input", (e) => {
    if (e.target === input()) autoGrow(e.target);
  });

  scrollToBottom();
})();
