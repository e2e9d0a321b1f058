// Attachments in the composer: pick, drop or paste files; each becomes a chip that can be
// removed before sending. Files are checked here (the server checks again), uploaded over
// HTTP at once, and the send frame carries their ids (docs/design.md, "Attachments").
(() => {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const urls = new Set(); // object URLs of thumbnails, revoked when their chip goes

  const showNotice = (text) => window.htmxchatNotice?.(text); // app.js

  function sizeText(size) {
    if (size < 1024) return `${size} bytes`;
    if (size < 1024 * 1024) return `${(size / 1024).toFixed(1)} KB`;
    return `${(size / 1024 / 1024).toFixed(1)} MiB`;
  }

  // The image type from the first bytes, as the server decides it (never the name).
  function sniff(bytes) {
    const starts = (...sig) => sig.every((b, i) => bytes[i] === b);
    if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return "image/png";
    if (starts(0xff, 0xd8, 0xff)) return "image/jpeg";
    if (starts(0x47, 0x49, 0x46, 0x38) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61) return "image/gif";
    if (starts(0x52, 0x49, 0x46, 0x46) && bytes[8] === 0x57 && bytes[9] === 0x45 && bytes[10] === 0x42 && bytes[11] === 0x50) return "image/webp";
    return null;
  }

  async function check(file, limits) {
    const head = new Uint8Array(await file.slice(0, 12).arrayBuffer());
    const image = sniff(head);
    if (image) {
      if (file.size > limits.image) return [null, `${file.name} is ${sizeText(file.size)}; images can be at most ${sizeText(limits.image)}.`];
      return ["image", null];
    }
    if (file.size > limits.text) return [null, `${file.name} is ${sizeText(file.size)}; text files can be at most ${sizeText(limits.text)}.`];
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(await file.arrayBuffer());
    } catch {
      return [null, `${file.name} is neither a text file (UTF-8) nor a PNG, JPEG, WebP or GIF image, so it cannot be attached.`];
    }
    return ["text", null];
  }

  function chips() {
    return Array.from(document.querySelectorAll("#attach-chips .attach-chip"));
  }

  function syncIds() {
    const input = $("attach-ids");
    if (input) input.value = chips().map((c) => c.dataset.id || "").filter(Boolean).join(" ");
  }

  function removeChip(chip) {
    const img = chip.querySelector("img");
    if (img && urls.has(img.src)) {
      URL.revokeObjectURL(img.src);
      urls.delete(img.src);
    }
    chip.remove();
    syncIds();
  }

  function makeChip(file, kind) {
    const chip = document.createElement("div");
    chip.className = `attach-chip attach-${kind}`;
    chip.dataset.state = "uploading";
    if (kind === "image") {
      const img = document.createElement("img");
      img.src = URL.createObjectURL(file);
      urls.add(img.src);
      img.alt = "";
      chip.append(img);
    }
    const name = document.createElement("span");
    name.className = "attach-name";
    name.textContent = file.name;
    const size = document.createElement("span");
    size.className = "attach-size";
    size.textContent = sizeText(file.size);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "attach-remove";
    remove.setAttribute("aria-label", `Remove ${file.name}`);
    remove.title = `Remove ${file.name}`;
    remove.textContent = "×";
    remove.addEventListener("click", () => {
      const next = chip.nextElementSibling?.querySelector(".attach-remove")
        || chip.previousElementSibling?.querySelector(".attach-remove");
      removeChip(chip);
      (next || $("composer-input"))?.focus();
    });
    chip.append(name, size, remove);
    return chip;
  }

  async function addFiles(list) {
    const button = $("attach-button");
    const box = $("attach-chips");
    if (!button || !box) return;
    const files = Array.from(list || []);
    if (!files.length) return;
    const d = button.dataset;
    const limits = { files: Number(d.maxFiles), text: Number(d.maxText), image: Number(d.maxImage) };
    if (chips().length + files.length > limits.files) {
      showNotice(`A message can carry at most ${limits.files} files; remove some first.`);
      return;
    }
    const accepted = [];
    for (const file of files) {
      const [kind, problem] = await check(file, limits);
      if (problem) {
        showNotice(problem);
        return; // nothing of a refused batch is attached; the typed text stays as it is
      }
      accepted.push([file, kind]);
    }
    const made = accepted.map(([file, kind]) => makeChip(file, kind));
    box.append(...made);
    const form = new FormData();
    for (const [file] of accepted) form.append("file", file, file.name);
    let answer;
    try {
      const response = await fetch(d.upload, { method: "POST", body: form, credentials: "same-origin" });
      if (!response.ok) throw new Error(await response.text());
      answer = await response.json();
    } catch (error) {
      made.forEach(removeChip);
      showNotice(`The files were not attached: ${error.message || "the upload failed"}`);
      return;
    }
    answer.attachments.forEach((a, i) => {
      made[i].dataset.id = a.id;
      made[i].dataset.state = "ready";
    });
    syncIds();
    showNotice("");
  }

  document.addEventListener("click", (e) => {
    if (e.target.closest && e.target.closest("#attach-button")) $("attach-input")?.click();
  });
  document.addEventListener("change", (e) => {
    if (e.target.id !== "attach-input") return;
    const files = Array.from(e.target.files);
    e.target.value = "";
    addFiles(files);
  });

  const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files");
  document.addEventListener("dragover", (e) => {
    if (!hasFiles(e) || !e.target.closest || !e.target.closest("#pane")) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = "copy";
    $("pane")?.classList.add("attach-drop");
  });
  document.addEventListener("dragleave", (e) => {
    if (e.target.id === "pane" || !e.relatedTarget) $("pane")?.classList.remove("attach-drop");
  });
  document.addEventListener("drop", (e) => {
    $("pane")?.classList.remove("attach-drop");
    if (!hasFiles(e) || !e.target.closest || !e.target.closest("#pane")) return;
    e.preventDefault();
    addFiles(e.dataTransfer.files);
  });
  document.addEventListener("paste", (e) => {
    if (e.target.id !== "composer-input" || !e.clipboardData) return;
    const files = Array.from(e.clipboardData.files || []);
    if (!files.length) return; // plain text pastes as usual
    e.preventDefault();
    addFiles(files);
  });

  // Not while files are still uploading: their ids are not known yet.
  document.addEventListener("htmx:wsConfigSend", (e) => {
    if (e.detail.parameters.action !== "send") return;
    if (chips().some((c) => c.dataset.state !== "ready")) {
      // Stop it here, before app.js counts the message as sent.
      e.preventDefault();
      e.stopPropagation();
      showNotice("Wait a moment: the attached files are still uploading.");
    }
  }, true);

  // The server empties the chips once it stored the message: free their thumbnails.
  document.addEventListener("htmx:oobBeforeSwap", (e) => {
    if (e.detail.target && e.detail.target.id === "attach-chips") chips().forEach(removeChip);
  });
})();
