// Per-message actions on the conversation tree: Edit opens your message in place (saving
// sends it as a new version over the socket); Delete asks first (confirm.js). Version switching,
// Regenerate and Copy need no script beyond htmx and app.js. The server re-renders the
// branch for every tab (docs/design.md, "Message tree").
(function () {
  "use strict";

  const app = document.getElementById("app");
  if (!app || !window.htmx) return;

  const notice = (text) => window.htmxchatNotice?.(text); // app.js

  function hidden(name, value) {
    const field = document.createElement("input");
    field.type = "hidden";
    field.name = name;
    field.value = value;
    return field;
  }

  function button(type, text, className) {
    const b = document.createElement("button");
    b.type = type;
    b.className = className;
    b.textContent = text;
    return b;
  }

  // The edit form replaces the message's text until it is saved (the server then shows the
  // new branch, which removes it) or cancelled. Built with the DOM, never from HTML strings.
  function openEditor(article) {
    if (article.querySelector(".msg-edit")) {
      article.querySelector(".msg-edit textarea").focus();
      return;
    }
    const body = article.querySelector(".msg-body");
    const form = document.createElement("form");
    form.className = "msg-edit";
    form.setAttribute("ws-send", "");
    if (document.getElementById("model")) form.setAttribute("hx-include", "#model");
    const label = document.createElement("label");
    label.className = "visually-hidden";
    label.htmlFor = "edit-" + article.id;
    label.textContent = "Edit your message";
    const box = document.createElement("textarea");
    box.id = "edit-" + article.id;
    box.name = "message";
    box.rows = Math.min(12, Math.max(2, (article.dataset.markdown || "").split("\n").length));
    box.value = article.dataset.markdown || "";
    const actions = document.createElement("div");
    actions.className = "msg-edit-actions";
    actions.append(
      button("submit", "Save and send", "btn edit-save"),
      button("button", "Cancel", "btn edit-cancel"),
    );
    form.append(
      label, box, actions,
      hidden("action", "edit"),
      hidden("conversation", app.dataset.conversation || ""),
      hidden("target", article.id.replace(/^m-/, "")),
    );
    body.hidden = true;
    body.after(form);
    htmx.process(form);
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

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
    const edit = target.closest(".edit-message");
    if (edit) {
      const article = edit.closest(".msg");
      if (article) openEditor(article);
      return;
    }
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
        notice("An edited message cannot be empty; type something or cancel.");
      } else if (app.dataset.connection !== "open") {
        e.preventDefault();
        notice("Not connected to htmxchat right now. Your edit stays here; save it once the connection is back.");
      }
    }
  });
})();
