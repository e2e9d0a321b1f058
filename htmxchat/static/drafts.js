// Unsent text survives switching conversations and reloading the tab: each conversation's
// draft is kept in this tab's sessionStorage while it is typed, put back when that
// conversation is shown again, and dropped once the server has taken the message (it then
// empties the box). Nothing leaves the browser.
(function () {
  "use strict";

  const app = document.getElementById("app");
  if (!app) return;
  const PREFIX = "htmxchat:draft:";
  const box = () => document.getElementById("composer-input");
  const key = () => PREFIX + (app.dataset.conversation || "");

  function save() {
    const input = box();
    if (!input) return;
    try {
      if (input.value) sessionStorage.setItem(key(), input.value);
      else sessionStorage.removeItem(key());
    } catch (err) {
      // Storage full or disabled (private mode): the draft lives only in the box, as before.
      console.warn("htmxchat: could not keep the draft", err);
    }
  }

  function restore() {
    const input = box();
    if (!input || input.value) return;
    let draft = null;
    try {
      draft = sessionStorage.getItem(key());
    } catch (err) {
      console.warn("htmxchat: could not read the draft", err);
    }
    if (!draft) return;
    input.value = draft;
    input.dispatchEvent(new Event("input", { bubbles: true })); // lets the box grow to fit
  }

  document.addEventListener("input", (e) => {
    if (e.target && e.target.id === "composer-input") save();
  });
  // The server empties the box when it has taken the message (or the page keeps only what
  // was typed since): keep the draft in step once that frame is applied.
  document.body.addEventListener("htmx:oobBeforeSwap", (e) => {
    if (e.detail.target && e.detail.target.id === "composer-input") queueMicrotask(save);
  });
  // Another conversation's pane came in (app.js updates data-conversation first).
  new MutationObserver(() => queueMicrotask(restore)).observe(
    document.getElementById("main") || app,
    { childList: true },
  );
  restore();
})();
