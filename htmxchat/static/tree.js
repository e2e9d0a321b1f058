// Per-message actions on the conversation tree: Edit opens your message in place in a form
// from the server (saving sends it as a new version over the socket); Delete asks first
// (confirm.js). Version switching, Regenerate and Copy need no script beyond htmx and app.js.
// The server re-renders the branch for every tab (docs/design.md, "Message tree").
(function () {
  "use strict";

  const app = document.getElementById("app");
  if (!app || !window.htmx) return;

  const notice = (text) => window.htmxchatNotice?.(text); // app.js

  // The edit form comes from the server (_edit_form.html, GET .../edit) and is put after the
  // message's text, which is hidden until the form is saved (the server then shows the new
  // branch, which removes it) or cancelled.
  function editorOpened(article) {
    const form = article.querySelector(".msg-edit");
    const body = article.querySelector(".msg-body");
    if (!form || !body) return;
    body.hidden = true;
    const box = form.querySelector("textarea");
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  // A second Edit on a message being edited only goes back to its form.
  document.body.addEventListener("htmx:beforeRequest", (e) => {
    const edit = e.detail.elt;
    const open = edit?.matches?.(".edit-message") && edit.closest(".msg")?.querySelector(".msg-edit");
    if (open) {
      e.preventDefault();
      open.querySelector("textarea").focus();
    }
  });
  document.body.addEventListener("htmx:afterSwap", (e) => {
    const edit = e.detail.elt;
    if (edit?.matches?.(".edit-message")) editorOpened(edit.closest(".msg"));
  });

  function closeEditor(form) {
    const article = form.closest(".msg");
    form.remove();
    const body = article?.querySelector(".msg-body");
    if (body) body.hidden = false;
    article?.querySelector(".edit-message")?.focus();
  }

  document.addEventListener("click", (e) => {
    const target = e.target.closest ? e.target : null;
    if (!target) return;
    const cancel = target.closest(".edit-cancel");
    if (cancel) closeEditor(cancel.closest(".msg-edit"));
  });

  document.addEventListener("keydown", (e) => {
    const form = e.target.closest ? e.target.closest(".msg-edit") : null;
    if (!form) return;
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation(); // not the page's Escape (which stops a reply)
      closeEditor(form);
    } else if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.target.tagName === "TEXTAREA") {
      e.preventDefault();
      e.stopPropagation();
      form.requestSubmit();
    }
  }, true);

  // Checks before anything leaves: an edit needs text and a connection (the text stays in
  // the box otherwise). A deletion asks first in the page's dialog (confirm.js).
  app.addEventListener("htmx:wsConfigSend", (e) => {
    const params = e.detail.parameters;
    if (params.action === "edit") {
      const text = typeof params.message === "string" ? params.message : "";
      if (!text.trim()) {
        e.preventDefault();
        notice(window.htmxchatText?.("empty-edit"));
      } else if (app.dataset.connection !== "open") {
        e.preventDefault();
        notice(window.htmxchatText?.("offline-edit"));
      }
    }
  });
})();
