// Questions before erasing something, in the page's own dialog (templates/_confirm.html)
// instead of the browser's confirm(): it is styled, the rest of the page is out of reach
// while it is open (a modal dialog; Tab also wraps inside it), Esc or Cancel says no, and
// Cancel has the focus, so Enter never erases by accident.
// Any button with data-confirm asks first. Its click is held back (capture phase, before
// htmx or the ws extension see it) and, after a yes, clicked again for real.
(function () {
  "use strict";

  const dialog = document.getElementById("confirm");
  if (!dialog || typeof dialog.showModal !== "function") return;
  let asking = null;   // the button whose click waits for an answer
  let approved = null; // the button whose next click goes through

  function ask(button) {
    asking = button;
    document.getElementById("confirm-title").textContent = button.dataset.confirmTitle || "Are you sure?";
    document.getElementById("confirm-text").textContent = button.dataset.confirm;
    dialog.querySelector(".confirm-ok").textContent = button.dataset.confirmAction || "Delete";
    dialog.returnValue = "";
    dialog.showModal();
    dialog.querySelector(".confirm-cancel").focus();
  }

  document.addEventListener("click", (e) => {
    const button = e.target.closest ? e.target.closest("[data-confirm]") : null;
    if (!button) return;
    if (approved === button) {
      approved = null;
      return; // the yes: on to htmx
    }
    e.preventDefault();
    e.stopImmediatePropagation();
    ask(button);
  }, true);

  dialog.addEventListener("close", () => {
    const button = asking;
    asking = null;
    if (!button) return;
    if (dialog.returnValue === "ok" && button.isConnected) {
      approved = button;
      button.click();
    }
    // Back where the reader was; the button may be gone (its conversation was deleted).
    if (button.isConnected && !button.closest("[inert]")) button.focus();
    else document.getElementById("composer-input")?.focus();
  });

  // Before the page's other keys (reading.js closes the drawer on Esc, app.js stops a reply):
  // while the question is open, Esc means "no" and nothing else, and Tab stays inside.
  window.addEventListener("keydown", (e) => {
    if (!dialog.open) return;
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopImmediatePropagation();
      dialog.close("cancel");
    } else if (e.key === "Tab") {
      const buttons = [...dialog.querySelectorAll("button")];
      const at = buttons.indexOf(document.activeElement);
      const next = at < 0 ? 0 : (at + (e.shiftKey ? -1 : 1) + buttons.length) % buttons.length;
      e.preventDefault();
      buttons[next].focus();
    }
  }, true);
})();
