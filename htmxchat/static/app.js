// htmxchat page behaviour: keyboard, auto-scroll, connection status, following the
// numbered frames of the conversation and of the conversation list, switching
// conversations without reloading, loading older messages.
// No inline scripts anywhere (strict CSP); htmx does the swapping. The frame protocol is
// described in docs/design.md ("Frames").
(function () {
  "use strict";

  const app = document.getElementById("app");
  if (!app) return;
  let conversation = app.dataset.conversation;
  let socket = null;      // the ws extension's socket wrapper, once open
  let lastSent = null;    // text of the last message handed to the socket
  let focusId = null;     // a message to show (search result) instead of the bottom
  let focusPending = false;
  // Where the page is in the conversation's room and in the feed (epoch and the last event
  // applied), and the number of its latest sync request: frames answering an older one are
  // stale. The first values come from the HTML page, which is a snapshot too.
  const pane0 = document.getElementById("pane");
  const list0 = document.getElementById("conversation-list");
  let room = { epoch: pane0?.dataset.epoch || "", seq: Number(pane0?.dataset.seq ?? -1) };
  let feed = { epoch: list0?.dataset.feedEpoch || "", seq: Number(list0?.dataset.feedSeq ?? -1) };
  let req = 0;

  const $ = (id) => document.getElementById(id);
  const input = () => $("composer-input");
  const busy = () => $("composer-actions")?.dataset.busy === "true";
  const online = () => app.dataset.connection === "open";

  // Reconnect sooner than the extension's default (up to 64 s): a restarted server is
  // usually back within a second or two.
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

  // The server's rules for a message: what counts as blank (it drops those silently) and
  // the longest it accepts (a frame over the socket's limit would close it with 1009).
  const rules = document.getElementById("composer")?.dataset || {};
  const blankChars = new Set((rules.blank || "9 10 13 32").split(" ").map((n) => String.fromCodePoint(Number(n))));
  const MAX_MESSAGE_CHARS = Number(rules.maxChars || 100000);
  // What to say when refusing before sending: the server's own words (data-text-*).
  const say = (name, values = {}) =>
    (rules["text" + name.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase())] || "")
      .replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
  window.htmxchatText = say;

  function isBlank(text) {
    for (const c of text) if (!blankChars.has(c)) return false;
    return true;
  }

  // The one way the page's scripts show a message above the composer (attach.js and tree.js
  // use it too); the server's own notices come as #notice fragments.
  function showNotice(text) {
    const notice = $("notice");
    if (notice) notice.textContent = text;
  }
  window.htmxchatNotice = showNotice;

  // Notices about the connection itself (with say("offline")): the next open socket makes
  // them untrue.
  const UNREACHABLE_NOTICE = "Could not reach htmxchat. Check that it is still running, then try again.";

  // Following the newest text (docs/design.md, "Reading position"). The transcript ends
  // with a sentinel (#scroll-end). While any of it is in view the reader is "at the latest":
  // CSS scroll anchoring (only the sentinel may be the anchor then) keeps it in view as the
  // reply grows, so a frame costs no script and no forced layout. Once the reader scrolls it
  // out of view, the messages take part in anchoring instead, nothing moves, and "Jump to
  // latest" shows. An IntersectionObserver, not a read of the layout per frame, tells which.
  const anchoring = Boolean(window.CSS && CSS.supports("overflow-anchor", "auto"));
  let following = true;
  let endObserver = null;
  let lastTop = 0;          // the transcript's scroll offset at its last scroll event
  let lastBox = 0;          // ...its visible height then
  let lastContent = 0;      // ...and its content's height then
  let scrolledUpAt = -Infinity; // when it last moved up: the reader (or their screen reader)
  let toEndFrame = 0;

  function setFollowing(on) {
    const t = $("transcript");
    if (t && t.classList.contains("is-following") !== on) t.classList.toggle("is-following", on);
    const jump = $("jump-latest");
    if (jump && jump.hidden !== on) jump.hidden = on;
    following = on;
  }

  function scrollToBottom() {
    const t = $("transcript");
    if (t) t.scrollTop = t.scrollHeight;
  }

  // Browsers without scroll anchoring: follow once per rendered frame, in the animation
  // frame callback, where the layout is computed for painting anyway.
  function followSoon() {
    if (toEndFrame) return;
    toEndFrame = requestAnimationFrame(() => {
      toEndFrame = 0;
      if (following && !scrolledUpRecently()) scrollToBottom(); // never against the reader
    });
  }

  function scrolledUpRecently() {
    return performance.now() - scrolledUpAt < 1000;
  }

  // Scroll events come just before the page is laid out for painting anyway, so reading
  // the offset here costs no extra layout. Growing text never moves the view up.
  // (Moving up to the very bottom is the text getting shorter, not the reader.)
  // (Nor is a move caused by the transcript itself changing size: its box resized by the
  // layout around it, or its content getting shorter.)
  function onScroll(e) {
    if (!following) return;
    const t = e.target;
    const top = t.scrollTop;
    const box = t.clientHeight;
    const content = t.scrollHeight;
    if (top < lastTop - 1 && box === lastBox && content >= lastContent && content - box - top > 2) {
      scrolledUpAt = performance.now();
    }
    lastTop = top;
    lastBox = box;
    lastContent = content;
  }

  function watchEnd() {
    if (endObserver) endObserver.disconnect();
    const t = $("transcript");
    const end = $("scroll-end");
    if (!t || !end || !window.IntersectionObserver) return;
    lastTop = t.scrollTop;
    lastBox = t.clientHeight;
    lastContent = t.scrollHeight;
    t.addEventListener("scroll", onScroll, { passive: true });
    endObserver = new IntersectionObserver((entries) => {
      if (entries[entries.length - 1].isIntersecting) setFollowing(true);
      // Out of view without moving up: the text grew past it where anchoring could not
      // keep up (e.g. from the very top): keep following.
      else if (following && !scrolledUpRecently()) scrollToBottom();
      else setFollowing(false);
    }, { root: t });
    endObserver.observe(end);
  }

  // Scroll first, then follow: while the reader was up in the answer every chunk was laid
  // out at its real height, so this end is where the newest words are. Following makes the
  // chunks away from the view skippable (markdown.css), which only shrinks what is above the
  // view. The next frame checks once more, in case the end moved without the sentinel
  // (which the observer watches) ever coming into view.
  function jumpToLatest() {
    scrollToBottom();
    setFollowing(true);
    requestAnimationFrame(() => {
      if (following) scrollToBottom();
    });
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

  // The message box grows with its text up to 40% of the window, then scrolls. It is
  // measured at most once a frame, and not at all while it is at its limit and the text only
  // grew: after a large paste, a keystroke must not cost a layout of the whole text.
  let growFrame = 0;
  let grownFull = false;
  let grownLength = 0;
  let grownBox = null; // the server replaces the box when it clears it: measure the new one

  function autoGrow(el) {
    if (el !== grownBox) {
      grownBox = el;
      grownFull = false;
    }
    const longer = el.value.length >= grownLength;
    grownLength = el.value.length;
    if ((grownFull && longer) || growFrame) return;
    growFrame = requestAnimationFrame(() => {
      growFrame = 0;
      const limit = Math.floor(window.innerHeight * 0.4);
      el.style.height = "auto";
      const height = Math.min(el.scrollHeight, limit);
      el.style.height = height + "px";
      grownFull = height >= limit;
    });
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
      req += 1;
      room.live = feed.live = false; // until the server's answer (the join) arrives
      Object.assign(frame, {
        req: req, since: oldestShown(),
        epoch: room.epoch, seq: room.seq, feed_epoch: feed.epoch, feed_seq: feed.seq,
      });
    }
    socket.send(JSON.stringify(frame));
  }

  // A numbered frame starts with its header, a comment htmx leaves alone. The frame that
  // answers a sync (the join) spells out the request, conversation and epoch:
  // <!--frame kind=snapshot req=3 conversation=… epoch=… seq=12-->; every later frame on the
  // same socket carries only its numbers: <!--13--> or <!--13-15--> (the feed: <!--f4-->),
  // with an r when the frame replaces the messages shown (<!--13r-->; a join: rebuild=1).
  // Read only the header, never the rest of the frame's text.
  const JOIN_HEADER = /^<!--frame ([^>]*)-->/;
  const NUMBERS_HEADER = /^<!--(f?)(\d+)(?:-(\d+))?(r?)-->/;
  function frameHeader(message) {
    if (typeof message !== "string") return null;
    const numbers = NUMBERS_HEADER.exec(message);
    if (numbers) {
      const first = Number(numbers[2]);
      return {
        kind: numbers[1] ? "feed" : "events", first: first, seq: Number(numbers[3] || first),
        rebuild: numbers[4] === "r",
      };
    }
    const match = JOIN_HEADER.exec(message);
    if (!match) return null;
    const header = { join: true };
    for (const field of match[1].split(" ")) {
      const eq = field.indexOf("=");
      if (eq > 0) header[field.slice(0, eq)] = field.slice(eq + 1);
    }
    return header;
  }

  // Apply a frame only if it follows on from the page's state: a join must answer the
  // latest sync (older ones were in flight when the page switched conversations), and later
  // frames count only once their join has been applied. A gap (events missed) asks the
  // server to resume from the last event applied.
  function acceptFrame(h) {
    const isFeed = h.kind === "feed" || h.kind === "feed-snapshot" || h.kind === "feed-resume";
    const position = isFeed ? feed : room;
    const seq = Number(h.seq);
    if (h.join) {
      if (Number(h.req) !== req) return false;
      if (!isFeed && h.conversation !== conversation) return false;
      if (h.kind === "snapshot" || h.kind === "feed-snapshot") {
        Object.assign(position, { epoch: h.epoch, seq: seq, live: true });
        return true;
      }
      if (h.epoch !== position.epoch) {
        send("sync"); // cannot happen with a server that resumed us; start again
        return false;
      }
      position.live = true;
      if (h.kind === "resume" || h.kind === "feed-resume") {
        if (seq !== position.seq) send("sync");
        return false; // nothing to swap
      }
    } else if (!position.live) {
      return false; // the rest of a subscription the page has left
    }
    if (seq <= position.seq) return false;
    if (Number(h.first) !== position.seq + 1) {
      send("sync");
      return false;
    }
    position.seq = seq;
    return true;
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

  function markCurrent() {
    document.querySelectorAll("#conversation-list .conv-link").forEach((link) => {
      const current = link.closest(".conv")?.dataset.id === conversation;
      if (current) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    });
  }

  // #pane was replaced (a sidebar link, a search hit, back/forward, a deleted conversation):
  // follow its conversation from the event the new pane was rendered at.
  function paneChanged() {
    const pane = $("pane");
    if (!pane) return;
    const id = pane.dataset.conversation;
    room = { epoch: pane.dataset.epoch || "", seq: Number(pane.dataset.seq ?? -1) };
    if (pane.dataset.url && location.pathname !== pane.dataset.url) {
      history.replaceState(null, "", pane.dataset.url);
    }
    focusId = pane.dataset.focus || null;
    focusPending = Boolean(focusId);
    watchEnd();
    if (showFocus()) setFollowing(false);
    else jumpToLatest();
    const switched = id !== conversation;
    conversation = id;
    app.dataset.conversation = id;
    send("sync");
    markState();
    showTitle();
    if (!switched) return;
    markCurrent();
    input()?.focus();
  }

  // What the styles need to know, kept on attributes written only when it changes: whether
  // the pane has messages (the empty state, the download links) and whether a reply is being
  // written (no tree actions). `:has()` rules over the transcript did this before, and made
  // the browser restyle every message on each streamed frame (docs/design.md, "Reading position").
  function markState() {
    const pane = $("pane");
    const messages = $("messages");
    if (pane && messages) {
      const empty = !messages.querySelector(":scope > .msg");
      if (empty !== pane.hasAttribute("data-empty")) pane.toggleAttribute("data-empty", empty);
    }
    const replying = busy();
    if (replying !== app.hasAttribute("data-replying")) app.toggleAttribute("data-replying", replying);
  }

  function showTitle() {
    const title = $("conversation-title")?.textContent.trim();
    // after every frame: write only a change (a write reaches the browser's window title)
    if (title && document.title !== title + " · htmxchat") document.title = title + " · htmxchat";
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
    const shown = $("notice")?.textContent;
    if (shown && (shown === say("offline") || shown === UNREACHABLE_NOTICE)) showNotice("");
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
    showNotice(UNREACHABLE_NOTICE);
  });

  // A snapshot or another branch rebuilds the messages, which scroll anchoring cannot see
  // through: remember what the reader (not following) was reading, by id, and put it back.
  let frameAnchor = null;
  app.addEventListener("htmx:wsBeforeMessage", (e) => {
    // Numbered frames must answer the latest sync and follow on from the page's state;
    // others (notices, the composer) apply as they come.
    const header = frameHeader(e.detail.message);
    if (header && !acceptFrame(header)) {
      e.preventDefault();
      return;
    }
    const rebuilds = !following && !focusPending && header &&
      (header.kind === "snapshot" || Boolean(header.rebuild));
    frameAnchor = rebuilds ? viewAnchor() : null;
  });
  app.addEventListener("htmx:wsAfterMessage", () => {
    if (focusPending && showFocus()) {
      setFollowing(false); // a search hit was opened: it is now in view
    } else if (frameAnchor) {
      restoreAnchor(frameAnchor);
      frameAnchor = null;
    } else if (following && !anchoring) {
      followSoon();
    }
    showFocus();
    markState();
    showTitle();
  });

  // Blank messages never leave the page; nothing is sent while offline or busy.
  app.addEventListener("htmx:wsConfigSend", (e) => {
    const params = e.detail.parameters;
    if (params.action !== "send") return;
    const text = typeof params.message === "string" ? params.message : "";
    const blank = isBlank(text) && !params.attachments; // files alone make a message
    // lastSent !== null: the previous message has not been answered yet (a double Enter).
    if (blank || !online() || busy() || lastSent !== null) {
      e.preventDefault();
      if (!blank && !online()) {
        showNotice(say("offline"));
      }
      return;
    }
    if (text.length > MAX_MESSAGE_CHARS) {
      e.preventDefault();
      showNotice(say("too-long", {
        length: text.length.toLocaleString("en"), limit: MAX_MESSAGE_CHARS.toLocaleString("en"),
      }));
      return;
    }
    lastSent = text;
    focusId = null;
    jumpToLatest();
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

  // A finished answer replaces its streaming version. Its body and reasoning come empty and
  // marked data-streamed: the page has them already (the last blocks are committed before
  // the answer is marked finished), so they are neither sent nor parsed again. Their blocks
  // move into the finished message before htmx swaps it in, out of their chunks (boxes of
  // their own only while streaming: docs/design.md) and without the lists' stream ids,
  // which leaves the HTML a reload shows. Before removing an element htmx walks all of it,
  // firing an event on every element, to undo what it set up there; it sets up nothing in
  // a message body (hx-disable), so the bodies are left empty and that walk stays short.
  document.body.addEventListener("htmx:oobBeforeSwap", (e) => {
    const target = e.detail.target;
    if (!target || !target.matches || !target.matches("article.msg[data-status=streaming]")) return;
    if (!e.detail.shouldSwap) return;
    const fragment = e.detail.fragment;
    for (const inert of target.querySelectorAll("[hx-disable]")) {
      const kept = fragment && fragment.querySelector(`[id="${inert.id}"][data-streamed]`);
      if (kept) moveStreamed(inert, kept);
      else inert.replaceChildren();
    }
  });

  function moveStreamed(from, to) {
    const nodes = [];
    for (const node of from.childNodes) {
      if (node.nodeType === 1 && node.classList.contains("md-chunk")) nodes.push(...node.childNodes);
      else nodes.push(node);
    }
    to.replaceChildren(...nodes);
    from.replaceChildren(); // the empty chunks: nothing left for htmx to walk
    for (const list of to.querySelectorAll(":scope > ul[id], :scope > ol[id]")) list.removeAttribute("id");
    to.removeAttribute("data-streamed");
  }

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

  // Copy buttons: a code block's text (not its HTML), or a whole answer's Markdown.
  function copyText(text, button) {
    const done = () => {
      button.textContent = "Copied";
      window.setTimeout(() => { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => showNotice("Could not copy: the browser refused."));
      return;
    }
    const holder = document.createElement("textarea");
    holder.value = text;
    holder.setAttribute("readonly", "");
    holder.className = "visually-hidden";
    document.body.appendChild(holder);
    holder.select();
    const ok = document.execCommand("copy");
    holder.remove();
    if (ok) done(); else showNotice("Could not copy: the browser refused.");
  }

  // An answer that streamed into the page does not carry its Markdown (it would travel a
  // second time), nor does a big one (docs/limits.md): Copy fetches it. The clipboard is handed the promise at once,
  // while the click still counts as the reader's (browsers allow a write only then).
  function copySource(article, button) {
    const failed = () => showNotice("Could not copy: the answer's text did not load. Try again.");
    const text = fetch(article.dataset.source, { credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(String(r.status)))));
    if (window.ClipboardItem && navigator.clipboard && navigator.clipboard.write && window.isSecureContext) {
      const blob = text.then((t) => new Blob([t], { type: "text/plain" }));
      navigator.clipboard.write([new ClipboardItem({ "text/plain": blob })]).then(() => {
        button.textContent = "Copied";
        window.setTimeout(() => { button.textContent = "Copy"; }, 1500);
      }, () => text.then((t) => copyText(t, button), failed));
      return;
    }
    text.then((t) => copyText(t, button), failed);
  }

  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#jump-latest")) {
      jumpToLatest();
      input()?.focus(); // the button hides itself: keep the focus somewhere useful
      return;
    }
    const button = e.target.closest && e.target.closest(".copy-code, .copy-answer");
    if (!button) return;
    if (button.classList.contains("copy-code")) {
      const code = button.closest(".code-block")?.querySelector("pre code, pre");
      if (code) copyText(code.textContent, button);
    } else {
      const article = button.closest("article.msg");
      if (article && article.dataset.markdown === undefined && article.dataset.source) {
        copySource(article, button);
      } else if (article) {
        copyText(article.dataset.markdown || "", button);
      }
    }
  });

  document.addEventListener("input", (e) => {
    if (e.target === input()) autoGrow(e.target);
  });

  focusId = $("pane")?.dataset.focus || null;
  focusPending = Boolean(focusId);
  markState();
  watchEnd();
  if (showFocus()) setFollowing(false);
  else jumpToLatest();
})();
