// htmxchat page behaviour: keyboard, auto-scroll, connection status, conversation sync,
// switching conversations without reloading, loading older messages.
// No inline scripts anywhere (strict CSP); htmx does the swapping.
(function () {
  "use strict";

  const app = document.getElementById("app");
  if (!app) return;
  let conversation = app.dataset.conversation;
  let socket = null;      // the ws extension's socket wrapper, once open
  let lastSent = null;    // text of the last message handed to the socket
  let stickToBottom = true;
  let focusId = null;     // a message to show (search result) instead of the bottom
  let focusPending = false;
  let awaitingSync = null; // after asking for a sync, frames before its answer are stale

  const $ = (id) => document.getElementById(id);
  const input = () => $("composer-input");
  const busy = () => $("composer-actions")?.dataset.busy === "true";
  const online = () => app.dataset.connection === "open";

  // Reconnect sooner than the extension's default (up to 64 s): a restarted server is
  // usually back within a second or two (issue 4, point 7).
  if (window.htmx) {
    htmx.config.wsReconnectDelay = (retry) =>
      Math.min(500 * 2 ** retry, 4000) * (0.5 + Math.random() / 2);
  }

  function setConnection(state, text) {
    app.dataset.connection = state;
    const label = $("connection");
    if (label) {
      label.dataset.state = state;
      label.textContent = text;
    }
  }

  // Blank as the server sees it (Python's str.isspace also counts U+001C-U+001F and U+0085),
  // so nothing is sent that the server would silently drop.
  function isBlank(text) {
    return /^[\s\u001c-\u001f\u0085]*$/.test(text);
  }

  // Longer than the server accepts: say so here, the text stays in the box. (A frame over
  // the socket's size limit would make the server close it with 1009.)
  const MAX_MESSAGE_CHARS = 100000;

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

  // The message at the top of the view and where it is, to put it back after a swap
  // rebuilt or extended the list above it (a re-sync, older messages loading).
  // Several candidates: a re-sync may drop older messages the reader had loaded.
  function viewAnchor() {
    const t = $("transcript");
    if (!t) return null;
    const top = t.getBoundingClientRect().top;
    const found = [];
    for (const m of document.querySelectorAll("#messages > .msg")) {
      const r = m.getBoundingClientRect();
      if (r.bottom > top) found.push({ id: m.id, offset: r.top });
      if (found.length === 4) break;
    }
    return found;
  }

  function restoreAnchor(anchors) {
    const t = $("transcript");
    for (const anchor of anchors || []) {
      const el = $(anchor.id);
      if (t && el) {
        t.scrollTop += el.getBoundingClientRect().top - anchor.offset;
        return;
      }
    }
  }

  function autoGrow(el) {
    el.style.height = "auto";
    el.style.height = Math.min(el.scrollHeight, window.innerHeight * 0.4) + "px";
  }

  // The oldest message on the page: a re-sync keeps everything from there on.
  function oldestShown() {
    const first = document.querySelector("#messages > .msg");
    return first ? first.id.replace(/^m-/, "") : undefined;
  }

  function send(action) {
    if (!socket) return;
    const frame = { action: action, conversation: conversation };
    if (action === "sync") {
      frame.since = oldestShown();
      awaitingSync = conversation;
    }
    socket.send(JSON.stringify(frame));
  }

  // Show a search hit: scroll it into view once, keep it highlighted across re-syncs.
  function showFocus() {
    if (!focusId) return false;
    const target = $("m-" + focusId);
    if (!target) return false;
    target.classList.add("is-focus");
    if (focusPending) {
      target.scrollIntoView({ block: "center" });
      focusPending = false;
    }
    return true;
  }

  function refreshSidebar() {
    if (!window.htmx || !$("conversation-list")) return;
    htmx.ajax("GET", "/conversations?current=" + encodeURIComponent(conversation), {
      target: "#conversation-list",
      swap: "outerHTML",
    });
  }

  function markCurrent() {
    document.querySelectorAll("#conversation-list .conv-link").forEach((link) => {
      const current = link.closest(".conv")?.dataset.id === conversation;
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
  }

  // #pane was replaced (a sidebar link, a search hit, back/forward): follow its conversation.
  function paneChanged() {
    const pane = $("pane");
    if (!pane) return;
    const id = pane.dataset.conversation;
    focusId = pane.dataset.focus || null;
    focusPending = Boolean(focusId);
    if (!showFocus()) scrollToBottom();
    // Re-sync even for the same conversation: the new pane was rendered over HTTP and a
    // streaming reply may have moved on since; the sync frame plus its deltas are exact.
    syncPane(id);
  }

  function syncPane(id) {
    const switched = id !== conversation;
    conversation = id;
    app.dataset.conversation = id;
    send("sync");
    if (!switched) return;
    markCurrent();
    if (!document.querySelector('#conversation-list .conv-link[aria-current="page"]')) {
      refreshSidebar(); // e.g. after back/forward, which swaps #main only
    }
    input()?.focus();
  }

  new MutationObserver(paneChanged).observe($("main") || app, { childList: true });

  app.addEventListener("htmx:wsConnecting", () => {
    if (app.dataset.connection !== "closed") setConnection("connecting", "Connecting…");
  });
  app.addEventListener("htmx:wsOpen", (e) => {
    socket = e.detail.socketWrapper;
    // Never replay prompts typed while offline: the Send button was disabled then.
    socket.queue.length = 0;
    setConnection("open", "Connected");
    send("sync"); // the server answers with the conversation as it has it now
  });
  let retryTimer = null;
  app.addEventListener("htmx:wsClose", (e) => {
    const code = e.detail.event.code;
    setConnection("closed", "Reconnecting…");
    lastSent = null; // an answer will never come on this socket; the re-sync shows the truth
    // The extension retries by itself only after 1006/1011/1012/1013. A server closing with
    // 1000/1001 (e.g. behind a proxy) should not strand the page either. Other codes (1005)
    // come from the extension closing a socket it replaced: never retry those, or two
    // sockets would keep closing each other.
    if ((code === 1000 || code === 1001) && retryTimer === null) {
      const wrapper = e.detail.socketWrapper;
      retryTimer = window.setTimeout(() => {
        retryTimer = null;
        wrapper.reconnect();
      }, 2000);
    }
  });

  // Rename, delete, search and older pages are plain HTTP requests: show their failures.
  document.body.addEventListener("htmx:responseError", (e) => {
    const xhr = e.detail.xhr;
    const type = (xhr && xhr.getResponseHeader("Content-Type")) || "";
    const text = type.startsWith("text/plain") && xhr.responseText ? xhr.responseText.slice(0, 300) : "";
    showNotice(text || `That did not work (the server answered ${xhr ? xhr.status : "nothing"}). Try again.`);
  });
  document.body.addEventListener("htmx:sendError", () => {
    showNotice("Could not reach htmxchat. Check that it is still running, then try again.");
  });

  // Other tabs may have started, renamed or deleted conversations meanwhile.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshSidebar();
  });

  // Remember whether the reader was at the bottom before a frame lands, follow if so;
  // otherwise keep what they are reading where it is.
  let frameAnchor = null;
  app.addEventListener("htmx:wsBeforeMessage", (e) => {
    // Frames still in flight for the conversation shown before a switch must not land in
    // the new one: drop everything until the new conversation's sync arrives.
    if (awaitingSync !== null) {
      const message = typeof e.detail.message === "string" ? e.detail.message : "";
      if (!message.includes('data-sync="' + awaitingSync + '"')) {
        e.preventDefault();
        return;
      }
      awaitingSync = null;
    }
    stickToBottom = nearBottom() && !focusPending;
    frameAnchor = stickToBottom || focusPending ? null : viewAnchor();
  });
  app.addEventListener("htmx:wsAfterMessage", (e) => {
    if (focusPending && showFocus()) {
      // a search hit was opened: it is now in view
    } else if (stickToBottom) {
      scrollToBottom();
    } else {
      restoreAnchor(frameAnchor);
    }
    showFocus();
    // A user message appeared (sent here or in another tab, or a re-sync): the list order
    // and the title may have changed.
    if (typeof e.detail.message === "string" && e.detail.message.includes("msg-user")) {
      refreshSidebar();
    }
  });

  // Blank messages never leave the page; nothing is sent while offline or busy.
  app.addEventListener("htmx:wsConfigSend", (e) => {
    const params = e.detail.parameters;
    if (params.action !== "send") return;
    const text = typeof params.message === "string" ? params.message : "";
    const blank = isBlank(text);
    // lastSent !== null: the previous message has not been answered yet (a double Enter).
    if (blank || !online() || busy() || lastSent !== null) {
      e.preventDefault();
      if (!blank && !online()) {
        showNotice("Not connected to htmxchat right now. Your message stays here; send it once the connection is back.");
      }
      return;
    }
    if (text.length > MAX_MESSAGE_CHARS) {
      e.preventDefault();
      showNotice(`Your message is ${text.length.toLocaleString("en")} characters long; the limit is ${MAX_MESSAGE_CHARS.toLocaleString("en")}. Shorten it or split it into several messages.`);
      return;
    }
    lastSent = text;
    focusId = null;
    stickToBottom = true;
  });

  // The server clears the box once it stored the message; keep anything typed since
  // (without the part that was sent, so it is not sent twice).
  document.body.addEventListener("htmx:oobBeforeSwap", (e) => {
    const target = e.detail.target;
    if (!target || target.id !== "composer-input" || lastSent === null) return;
    if (target.value !== lastSent) {
      e.detail.shouldSwap = false;
      if (target.value.startsWith(lastSent)) {
        target.value = target.value.slice(lastSent.length).replace(/^\s*\n/, "");
        autoGrow(target);
      }
      lastSent = null;
    }
  });

  document.body.addEventListener("htmx:oobAfterSwap", (e) => {
    const target = e.detail.target;
    // The box was cleared, or the server refused the message (a notice): sending is open again.
    if (target && (target.id === "composer-input" || target.id === "notice")) lastSent = null;
  });

  // Older messages are inserted above what the reader sees: keep that in place.
  document.body.addEventListener("htmx:beforeSwap", (e) => {
    const loader = e.detail.target;
    if (!loader || !loader.classList || !loader.classList.contains("older")) return;
    const anchor = viewAnchor();
    queueMicrotask(() => restoreAnchor(anchor)); // runs right after htmx's synchronous swap
  });

  document.addEventListener("keydown", (e) => {
    const box = input();
    if (e.key === "Escape" && e.target.closest && e.target.closest(".rename")) {
      e.preventDefault();
      e.target.closest(".rename").querySelector(".rename-cancel")?.click();
      return;
    }
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

  focusId = $("pane")?.dataset.focus || null;
  focusPending = Boolean(focusId);
  if (!showFocus()) scrollToBottom();
})();
