// Reading comfort and accessibility: finished answers announced once to screen readers,
// the narrow-screen drawer, keyboard shortcuts and their help dialog.
// Design: docs/design.md, "Reading position" and "Keyboard and screen readers".
(function () {
  "use strict";

  const app = document.getElementById("app");
  if (!app) return;
  const $ = (id) => document.getElementById(id);

  // ---- One announcement per finished answer, never token by token.
  // The streaming answer is aria-busy (set by the server's HTML); when the socket replaces it
  // with its finished render, its text is put once into the polite live region.
  let streamingId = null;

  function announceAnswer(article) {
    const author = article.querySelector(".msg-model")?.textContent.trim() || "The bot";
    const body = (article.querySelector(".msg-body")?.textContent || "").replace(/\s+/g, " ").trim();
    const problem = article.querySelector(".msg-problem")?.textContent.trim();
    const limit = 2000; // the rest is in the conversation, one landmark away
    let text = body.length > limit ? body.slice(0, limit) + "… (continues in the conversation)" : body;
    if (problem) text = (text ? text + " " : "") + problem;
    const box = $("announcer");
    if (box) box.textContent = `${author} answered: ${text || "(nothing)"}`;
  }

  // After every frame: one lookup by id while an answer streams, so this stays cheap.
  function checkAnswer() {
    if (streamingId) {
      const article = $(streamingId);
      if (article && article.dataset.status === "streaming") return;
      streamingId = null;
      if (article) announceAnswer(article);
    }
    const live = document.querySelector("#messages > article.msg-assistant[data-status=streaming]");
    if (live) streamingId = live.id;
  }
  app.addEventListener("htmx:wsAfterMessage", checkAnswer);
  checkAnswer();

  // ---- The drawer: below 720 px the sidebar slides over the conversation.
  const narrow = window.matchMedia("(max-width: 720px)");
  const drawerOpen = () => app.dataset.drawer === "open";

  function setDrawer(open, { restoreFocus = true } = {}) {
    const sidebar = $("sidebar");
    const main = $("main");
    const toggle = $("drawer-toggle");
    const backdrop = $("drawer-backdrop");
    open = open && narrow.matches;
    if (open === drawerOpen()) return;
    app.dataset.drawer = open ? "open" : "closed";
    if (toggle) toggle.setAttribute("aria-expanded", String(open));
    if (backdrop) backdrop.hidden = !open;
    // While open, only the drawer can be reached (keyboard and screen readers).
    if (main) main.inert = open;
    if (open) {
      const first = sidebar?.querySelector('.conv-link[aria-current="page"]') || $("new-chat");
      first?.focus();
    } else if (restoreFocus) {
      toggle?.focus();
    }
  }
  narrow.addEventListener("change", () => setDrawer(false, { restoreFocus: false }));

  document.addEventListener("click", (e) => {
    if (!e.target.closest) return;
    if (e.target.closest("#drawer-toggle")) {
      setDrawer(!drawerOpen());
    } else if (e.target.closest("#drawer-backdrop")) {
      setDrawer(false);
    } else if (drawerOpen() && e.target.closest("#sidebar a[hx-get], #sidebar .hit")) {
      // a conversation was chosen: the pane is being replaced; the composer takes focus
      setDrawer(false, { restoreFocus: false });
    }
  });

  // ---- A paste longer than a message may be (the server's limit, on the composer) is
  // attached as a text file instead of filling the box: the model still gets all of it, and
  // typing stays quick (a megabyte in a text box costs every keystroke a layout of it all).
  // Too big even for a file: it goes into the box as usual, so nothing is lost.
  document.addEventListener("paste", (e) => {
    if (e.target.id !== "composer-input" || !e.clipboardData) return;
    if ((e.clipboardData.files || []).length) return; // files: attach.js takes them
    const text = e.clipboardData.getData("text/plain");
    const limit = Number($("composer")?.dataset.maxChars || Infinity);
    const button = $("attach-button");
    const picker = $("attach-input");
    if (text.length <= limit || !button || !picker || typeof DataTransfer !== "function") return;
    if (new Blob([text]).size > Number(button.dataset.maxText)) return;
    e.preventDefault();
    const files = new DataTransfer();
    files.items.add(new File([text], "pasted text.txt", { type: "text/plain" }));
    picker.files = files.files;
    picker.dispatchEvent(new Event("change", { bubbles: true })); // attach.js uploads it
    const box = $("announcer");
    if (box) box.textContent = `The pasted text (${text.length.toLocaleString("en")} characters) is attached as a file.`;
  }, true);

  // ---- Keyboard shortcuts. Alt+Shift+letter works everywhere, even while typing (e.code,
  // so that macOS's Option characters do not matter); "/" and "?" only outside text fields.
  const dialog = () => $("shortcuts");
  let dialogOpener = null;

  function openHelp() {
    const d = dialog();
    if (!d || d.open) return;
    dialogOpener = document.activeElement;
    d.showModal();
  }

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function focusSearch() {
    setDrawer(true);
    const search = $("search-input");
    search?.focus();
    search?.select();
  }

  function focusComposer() {
    setDrawer(false, { restoreFocus: false });
    $("composer-input")?.focus();
  }

  function stepConversation(by) {
    const links = [...document.querySelectorAll("#conversations .conv-link")];
    if (!links.length) return;
    const now = links.findIndex((a) => a.getAttribute("aria-current") === "page");
    const next = now < 0 ? (by > 0 ? 0 : links.length - 1) : now + by;
    if (next >= 0 && next < links.length) links[next].click();
  }

  function copyLastAnswer() {
    const buttons = document.querySelectorAll("#messages > article.msg-assistant .copy-answer");
    const last = buttons[buttons.length - 1];
    if (last) last.click();
    const box = $("announcer");
    if (box) box.textContent = last ? "Copied the last answer." : "There is no answer to copy yet.";
  }

  const ALT_SHIFT = {
    KeyN: () => $("new-chat")?.click(),
    KeyF: focusSearch,
    KeyM: focusComposer,
    KeyC: copyLastAnswer,
    ArrowUp: () => stepConversation(-1),
    ArrowDown: () => stepConversation(1),
  };

  // Capture phase on window: runs before app.js's Escape (which stops a reply), so Escape
  // closes the drawer or the dialog first.
  window.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.isComposing) return;
    if (e.key === "Escape") {
      if (dialog()?.open) {
        e.stopPropagation(); // the dialog closes itself
      } else if (drawerOpen()) {
        e.preventDefault();
        e.stopPropagation();
        setDrawer(false);
      }
      return;
    }
    if (dialog()?.open) return;
    if (e.altKey && e.shiftKey && !e.ctrlKey && !e.metaKey && ALT_SHIFT[e.code]) {
      e.preventDefault();
      ALT_SHIFT[e.code]();
      return;
    }
    if (e.altKey || e.ctrlKey || e.metaKey || typing(e.target)) return;
    if (e.key === "?") {
      e.preventDefault();
      openHelp();
    } else if (e.key === "/") {
      e.preventDefault();
      focusSearch();
    }
  }, { capture: true });

  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest(".shortcuts-button")) openHelp();
    if (e.target.closest && e.target.closest(".shortcuts-close")) dialog()?.close();
  });
  dialog()?.addEventListener("close", () => {
    if (dialogOpener && dialogOpener.isConnected) dialogOpener.focus();
    else $("composer-input")?.focus();
    dialogOpener = null;
  });
})();
