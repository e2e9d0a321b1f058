// The top bar's menu (templates/_page_menu.html): a <details> disclosure, closed again by
// Esc (focus back on its button), a click outside it, or choosing one of its items. Chat
// settings open inside it, and working in them keeps it open.
(function () {
  "use strict";

  const menu = () => document.getElementById("page-menu");

  function close(restoreFocus) {
    const m = menu();
    if (!m || !m.open) return;
    m.open = false;
    if (restoreFocus) m.querySelector("summary")?.focus();
  }

  document.addEventListener("click", (e) => {
    const m = menu();
    if (!m || !m.open || !e.target.closest) return;
    if (!m.contains(e.target)) close(false);
    // A choice was made: the focus goes back to the menu button (a dialog opened from the
    // menu returns it there).
    else if (e.target.closest(".menu-item:not(summary)")) close(true);
  });

  // Opened again, the menu shows its items, not the settings left open last time. (Toggle
  // events do not bubble: listen in the capture phase.)
  document.addEventListener("toggle", (e) => {
    const m = menu();
    if (e.target !== m || m.open) return;
    for (const inner of m.querySelectorAll("details[open]")) inner.open = false;
  }, true);

  // Before the page's other Esc handlers (the drawer, stopping a reply): Esc closes the menu.
  window.addEventListener("keydown", (e) => {
    const m = menu();
    if (e.key !== "Escape" || !m || !m.open || document.querySelector("dialog[open]")) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    close(true);
  }, true);
})();
