// LabelWidget front end: draws the item and reports key presses; Python owns the state.
//
// Speed: the kernel keeps a buffer of the next few items (with their rendered payloads)
// here, so a key press shows the next item at once and the label travels to the kernel
// afterwards. Until the kernel acknowledges a label (it is durable on disk by then), the
// header counts it as "saving".
//
// Safety: item data is only ever put in the page with textContent or as an image's data
// URL, never as HTML, so an item whose text is markup shows as that text.
//
// Keys (JupyterLab's notebook shortcuts fire for any focused element, so the handler stops
// every plain key it owns and every plain letter from reaching the notebook; Ctrl/Cmd/Alt
// combinations and Shift+Enter pass through untouched):
//   1-9, 0  class 1..10 (or the class named by that digit, see class_keys in widgets.py)
//                                Enter   accept the model's suggestion (grid: submit page)
//   s       skip                 z, Backspace  undo
//   ←  →    walk back/forward through recent items to fix a label
//   g       grid of thumbnails (image pools)     Esc  clear the grid selection

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];
const HISTORY_LIMIT = 100;
const RETRAIN_FLASH = "retrain requested…";
const OWNED = new Set(["Enter", "Backspace", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown",
  "Escape", "Delete", "Home", "End", "PageUp", "PageDown", " "]);

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function button(label, hint, title, onClick) {
  const b = h("button", "wb-button");
  b.type = "button";
  if (hint) b.appendChild(h("kbd", "wb-kbd", hint));
  b.appendChild(h("span", "wb-button-label", label));
  if (title) b.title = title;
  b.addEventListener("click", (e) => { e.preventDefault(); onClick(e); });
  return b;
}

function pct(x) {
  return x === null || x === undefined ? "" : `${Math.round(x * 100)}%`;
}

// One item's visual: an image, a text, a key/value table or a placeholder with the reason.
function drawContent(render, { thumb = false } = {}) {
  const box = h("div", "wb-content");
  if (!render || typeof render !== "object") {
    box.appendChild(h("div", "wb-placeholder", "This item has nothing to show."));
    return box;
  }
  if (render.kind === "image" && typeof render.data === "string"
      && /^image\/(png|jpeg|gif|webp|bmp)$/.test(render.mime || "")) {
    const img = h("img", "wb-image");
    const w = Number(render.width) || 28, hgt = Number(render.height) || 28;
    const target = thumb ? 72 : 280;
    const scale = Math.max(1, Math.floor(target / Math.max(w, hgt)));
    const width = Math.min(w * scale, thumb ? 96 : 560);
    img.style.width = `${width}px`;
    img.style.height = `${Math.round(width * hgt / w)}px`;
    if (Math.max(w, hgt) <= 64) img.classList.add("wb-pixelated");
    img.alt = thumb ? "" : "item image";
    img.src = `data:${render.mime};base64,${render.data}`;
    box.appendChild(img);
  } else if (render.kind === "text") {
    box.appendChild(h("pre", thumb ? "wb-text wb-text-thumb" : "wb-text", render.text));
  } else if (render.kind === "table") {
    const table = h("table", "wb-table");
    for (const row of render.rows || []) {
      const tr = h("tr");
      tr.appendChild(h("th", null, row[0]));
      tr.appendChild(h("td", null, row[1]));
      table.appendChild(tr);
    }
    box.appendChild(table);
  } else {
    const reason = render.kind === "error" ? render.reason : `unknown item kind ${render.kind}`;
    const ph = h("div", "wb-placeholder wb-item-error");
    ph.appendChild(h("strong", null, "Cannot show this item"));
    ph.appendChild(h("div", "wb-reason", reason));
    if (!thumb) ph.appendChild(h("div", "wb-hint", "Press s to skip it."));
    box.appendChild(ph);
  }
  return box;
}

function render({ model, el }) {
  const S = {
    current: null,      // the live item (payload from the kernel)
    buffer: [],         // the items after it
    history: [],        // [{item, label, skipped}], most recent last
    actions: [],        // undo stack: {kind: "label"|"skip"|"relabel", entry, prev}
    pending: new Map(), // seq -> {kind, entry, prev, n}: sent, not yet acknowledged
    seq: 0,
    view: null,         // index into history while walking back, null when live
    page: [],           // grid: the items on the page
    pageClass: null,    // grid: class for every thumbnail without its own
    exceptions: new Map(), // grid: item_id -> class name or "skip"
    selected: null,     // grid: index of the selected thumbnail
    pageLoading: false,
    flash: "",
    waiting: true,      // no reply to "hello" yet
  };

  // ---- the DOM, built once ------------------------------------------------------------
  const root = h("div", "wb-label");
  root.tabIndex = 0;
  root.setAttribute("role", "application");
  root.setAttribute("aria-label", "labeling widget: number keys pick a class");

  const header = h("div", "wb-header");
  const progressEl = h("div", "wb-progress");
  const savingEl = h("div", "wb-saving");
  header.append(progressEl, savingEl);

  const errorEl = h("div", "wb-error");
  const errorText = h("span", "wb-error-text");
  const errorClose = h("button", "wb-error-close", "×");
  errorClose.type = "button";
  errorClose.title = "dismiss";
  errorClose.addEventListener("click", () => { model.set("error", ""); model.save_changes(); S.flash = ""; draw(); });
  errorEl.append(errorText, errorClose);

  const main = h("div", "wb-main");
  const itemEl = h("div", "wb-item");
  const side = h("div", "wb-side");
  const reviewEl = h("div", "wb-review");
  const whyEl = h("div", "wb-why");
  const suggestEl = h("div", "wb-suggestion");
  side.append(reviewEl, suggestEl, whyEl);
  main.append(itemEl, side);

  const gridEl = h("div", "wb-grid");
  const classesEl = h("div", "wb-classes");

  const actionsEl = h("div", "wb-actions");
  const backBtn = button("back", "←", "walk back to fix an earlier label", () => walk(-1));
  const fwdBtn = button("forward", "→", "walk forward again", () => walk(1));
  const undoBtn = button("undo", "z", "undo the last action (z or Backspace)", () => undo());
  const skipBtn = button("skip", "s", "skip this item", () => skip());
  const acceptBtn = button("accept", "⏎", "accept the model's suggestion", () => accept());
  const gridBtn = button("grid", "g", "label a page of thumbnails at once", () => toggleGrid());
  actionsEl.append(backBtn, fwdBtn, undoBtn, skipBtn, acceptBtn, gridBtn);

  const footer = h("div", "wb-footer");
  const modelEl = h("div", "wb-model");
  const retrainBtn = button("Retrain", null, "train the model on the labels so far (in the background)",
    () => { model.send({ type: "retrain" }); S.flash = RETRAIN_FLASH; draw(); });
  retrainBtn.classList.add("wb-retrain");
  const everyLabel = h("label", "wb-every");
  everyLabel.appendChild(h("span", null, "retrain every "));
  const everyInput = h("input", "wb-every-input");
  everyInput.type = "number";
  everyInput.min = "0";
  everyInput.step = "1";
  everyInput.title = "0: only when you press Retrain";
  everyInput.addEventListener("change", () => {
    const n = Math.max(0, parseInt(everyInput.value, 10) || 0);
    model.set("retrain_every", n);
    model.save_changes();
  });
  everyLabel.append(everyInput, h("span", null, " labels"));
  footer.append(modelEl, retrainBtn, everyLabel);

  const help = h("div", "wb-help");
  const HELP = "number keys: class (see the buttons) · Enter: accept suggestion · s: skip · "
    + "z/⌫: undo · ←/→: fix earlier labels";

  root.append(header, errorEl, main, gridEl, classesEl, actionsEl, footer, help);
  el.appendChild(root);

  // ---- drawing ---------------------------------------------------------------------------
  let classButtons = [];
  function buildClassButtons() {
    classesEl.replaceChildren();
    const keys = model.get("class_keys") || [];
    classButtons = model.get("class_names").map((name, i) => {
      const b = button(name, keys[i] || null, `label as ${name}`, () => pick(i));
      b.classList.add("wb-class");
      b.dataset.classIndex = String(i);
      classesEl.appendChild(b);
      return b;
    });
  }

  function shown() {
    return S.view === null ? S.current : S.history[S.view].item;
  }

  function pendingCount() {
    let n = 0;
    for (const p of S.pending.values()) n += p.n || 1;
    return n;
  }

  function drawStatus() {
    const p = model.get("progress") || {};
    const rate = p.labels_per_minute ? ` · ${p.labels_per_minute} labels/min` : "";
    progressEl.textContent = `${p.n_labeled ?? 0} labeled · ${p.n_skipped ?? 0} skipped · `
      + `${p.n_queued ?? "?"} queued · pool ${p.pool_size ?? "?"}${rate}`;
    const n = pendingCount();
    savingEl.textContent = n ? `saving ${n}…` : "all saved";
    savingEl.classList.toggle("wb-busy", n > 0);

    const m = model.get("model_state") || {};
    const parts = [];
    if (m.training) parts.push("training…");
    if (m.rounds) {
      let acc = "";
      if (m.last_accuracy !== null && m.last_accuracy !== undefined) {
        acc = `, accuracy ${(m.last_accuracy * 100).toFixed(1)}%`;
        if (m.eval_on) acc += ` on ${m.eval_on}`;
      } else if (m.eval_on) {
        acc = ` (${m.eval_on})`;
      }
      parts.push(`model round ${m.rounds}${acc}`);
    } else if (!m.training) {
      parts.push("no model yet: label a few items of different classes, then Retrain");
    }
    modelEl.textContent = parts.join(" · ");
    modelEl.classList.toggle("wb-training", !!m.training);
    retrainBtn.disabled = false;

    const err = model.get("error") || (m.last_error ? `last retrain failed: ${m.last_error}` : "");
    const text = err || S.flash;
    errorText.textContent = text;
    errorEl.classList.toggle("wb-visible", !!text);
    errorEl.classList.toggle("wb-info", !err && !!S.flash);

    if (document.activeElement !== everyInput) everyInput.value = String(model.get("retrain_every") || 0);
  }

  let drawnItem = null;  // the payload whose content is in itemEl (redrawn only on change)
  function drawSingle() {
    const item = shown();
    const names = model.get("class_names");
    reviewEl.replaceChildren();
    for (const b of classButtons) b.classList.remove("wb-suggested", "wb-given");
    if (item !== drawnItem || !item) itemEl.replaceChildren();
    if (!item) {
      drawnItem = null;
      itemEl.removeAttribute("data-item-id");
      const p = model.get("progress") || {};
      const done = !S.waiting && S.buffer.length === 0 && p.n_queued === 0;
      itemEl.appendChild(h("div", "wb-placeholder wb-done",
        done ? "Nothing left to label: every item is labeled or skipped." : "loading…"));
      suggestEl.textContent = "";
      whyEl.textContent = "";
      return;
    }
    if (item !== drawnItem) {
      itemEl.dataset.itemId = item.item_id;
      itemEl.appendChild(drawContent(item.render));
      itemEl.appendChild(h("div", "wb-item-id", item.item_id));
      drawnItem = item;
    }

    if (S.view !== null) {
      const entry = S.history[S.view];
      reviewEl.appendChild(h("strong", null, `Earlier item ${S.history.length - S.view} back: `));
      reviewEl.appendChild(document.createTextNode(
        entry.skipped ? "skipped" : `labeled ${entry.label}`));
      reviewEl.appendChild(h("div", "wb-hint", "press a class key to change it, → to go forward"));
      const given = names.indexOf(entry.label);
      if (given >= 0 && classButtons[given]) classButtons[given].classList.add("wb-given");
    }
    if (item.suggestion !== null && item.suggestion !== undefined) {
      suggestEl.replaceChildren(
        document.createTextNode("model suggests "),
        h("strong", "wb-suggested-name", item.suggestion),
        document.createTextNode(item.confidence !== null ? ` (${pct(item.confidence)})` : ""),
        h("span", "wb-hint", " · Enter accepts"));
      const i = names.indexOf(item.suggestion);
      if (i >= 0 && classButtons[i]) classButtons[i].classList.add("wb-suggested");
    } else {
      suggestEl.textContent = "no suggestion yet (no model)";
    }
    whyEl.replaceChildren();
    // The reason sentence carries the score when there is one; show the raw score otherwise.
    const score = item.reason || item.score === null || item.score === undefined
      ? "" : ` · score ${Number(item.score).toPrecision(3)}`;
    whyEl.appendChild(h("div", "wb-strategy", `why: ${item.strategy}${score}`));
    whyEl.appendChild(h("div", "wb-reason", item.reason || ""));
  }

  function drawGrid() {
    gridEl.replaceChildren();
    const names = model.get("class_names");
    const bar = h("div", "wb-grid-bar");
    const pageLabel = S.pageClass === null ? "none (thumbnails take the suggestion)" : S.pageClass;
    bar.textContent = `page class: ${pageLabel} · click a thumbnail, then a class key, to set an exception · Enter submits`;
    gridEl.appendChild(bar);
    const cells = h("div", "wb-grid-cells");
    if (S.pageLoading && S.page.length === 0) cells.appendChild(h("div", "wb-placeholder", "loading…"));
    if (!S.pageLoading && S.page.length === 0) cells.appendChild(h("div", "wb-placeholder wb-done", "Nothing left to label."));
    S.page.forEach((item, i) => {
      const cell = h("div", "wb-thumb");
      cell.dataset.itemId = item.item_id;
      cell.dataset.index = String(i);
      if (S.selected === i) cell.classList.add("wb-selected");
      cell.appendChild(drawContent(item.render, { thumb: true }));
      const chosen = thumbLabel(item);
      const badge = h("div", "wb-badge", chosen.label === null ? "?" : (chosen.label === "skip" ? "skip" : chosen.label));
      badge.classList.add(`wb-from-${chosen.from}`);
      cell.appendChild(badge);
      cell.addEventListener("click", () => { S.selected = S.selected === i ? null : i; root.focus({ preventScroll: true }); draw(); });
      cells.appendChild(cell);
    });
    gridEl.appendChild(cells);
    for (const b of classButtons) b.classList.remove("wb-suggested", "wb-given");
    const focusName = S.selected !== null ? thumbLabel(S.page[S.selected]).label : S.pageClass;
    const i = names.indexOf(focusName);
    if (i >= 0 && classButtons[i]) classButtons[i].classList.add("wb-given");
  }

  function thumbLabel(item) {
    if (S.exceptions.has(item.item_id)) return { label: S.exceptions.get(item.item_id), from: "exception" };
    if (S.pageClass !== null) return { label: S.pageClass, from: "page" };
    if (item.suggestion !== null && item.suggestion !== undefined) return { label: item.suggestion, from: "suggestion" };
    return { label: null, from: "none" };
  }

  function draw() {
    const grid = model.get("mode") === "grid";
    root.classList.toggle("wb-mode-grid", grid);
    gridBtn.hidden = model.get("pool_kind") !== "image";
    help.textContent = grid ? "number key: class for the page, or for the selected thumbnail · "
      + "click: select · s: skip the selected · Enter: submit the page · g: back"
      : HELP + (gridBtn.hidden ? "" : " · g: grid");
    main.hidden = grid;
    gridEl.hidden = !grid;
    backBtn.disabled = grid || S.history.length === 0 || S.view === 0;
    fwdBtn.disabled = grid || S.view === null;
    if (grid) drawGrid(); else drawSingle();
    drawStatus();
  }

  // ---- talking to the kernel -----------------------------------------------------------
  function send(msg, pending) {
    const seq = ++S.seq;
    if (pending) S.pending.set(seq, pending);
    model.send({ ...msg, seq });
    return seq;
  }

  function held(id) {
    if (S.current && S.current.item_id === id) return true;
    if (S.buffer.some((x) => x.item_id === id)) return true;
    for (const p of S.pending.values()) {
      if (p.entry && p.entry.item.item_id === id && (p.kind === "label" || p.kind === "skip")) return true;
    }
    return false;
  }

  function addItems(items) {
    for (const item of items || []) if (!held(item.item_id)) S.buffer.push(item);
    if (!S.current && S.buffer.length) S.current = S.buffer.shift();
  }

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "reset") {
      S.waiting = false;
      if (msg.replace_current) { S.current = null; S.view = null; }
      S.buffer = [];
      const fresh = S.current && (msg.items || []).find((x) => x.item_id === S.current.item_id);
      if (fresh) {
        S.current = fresh;                 // same item, newer suggestion and reason
      } else if (S.current) {
        // Keep the item the user is looking at, but ask what the new model thinks of it.
        model.send({ type: "suggest", item_id: S.current.item_id });
      }
      addItems(msg.items);
    } else if (msg.type === "suggestion") {
      for (const item of [S.current, ...S.history.map((e) => e.item)]) {
        if (item && item.item_id === msg.item_id) {
          item.suggestion = msg.suggestion;
          item.confidence = msg.confidence;
        }
      }
    } else if (msg.type === "items") {
      addItems(msg.items);
    } else if (msg.type === "ack") {
      const p = S.pending.get(msg.seq);
      S.pending.delete(msg.seq);
      const expected = p && p.undone ? p.undone.entry.item.item_id : null;
      if (msg.action === "undo" && msg.item && msg.item_id !== null && msg.item_id !== expected) {
        // The kernel undid something this view did not know about (another view, or an
        // action from before a reload): bring that item back on screen.
        const id = msg.item_id;
        if (model.get("mode") === "single" && (!S.current || S.current.item_id !== id)) {
          S.history = S.history.filter((e) => e.item.item_id !== id);
          if (S.current) S.buffer.unshift(S.current);
          S.buffer = S.buffer.filter((x) => x.item_id !== id);
          S.current = msg.item;
          S.view = null;
        }
      }
      if (msg.page) { S.page = msg.page; S.pageLoading = false; S.exceptions.clear(); S.selected = null; S.pageClass = null; }
      addItems(msg.items);
    } else if (msg.type === "error") {
      const p = S.pending.get(msg.seq);
      S.pending.delete(msg.seq);
      if (p) restore(p);
      if (msg.action === "page") S.pageLoading = false;
      if (msg.action === "label_page") requestPage();
    }
    draw();
  }

  // A label or skip the kernel refused comes back on screen, so nothing is lost silently.
  function restore(p) {
    if (p.kind === "relabel") { p.entry.label = p.prev; p.entry.skipped = p.prevSkipped; return; }
    if (p.kind !== "label" && p.kind !== "skip") return;
    const at = S.history.indexOf(p.entry);
    if (at < 0) return;
    S.history.splice(at, 1);
    S.actions = S.actions.filter((a) => a.entry !== p.entry);
    if (S.current) S.buffer.unshift(S.current);
    S.current = p.entry.item;
    S.view = null;
  }

  // ---- actions -------------------------------------------------------------------------------
  function labelShown(name, source) {
    if (S.view !== null) {
      const entry = S.history[S.view];
      const prev = entry.label, prevSkipped = entry.skipped;
      entry.label = name;
      entry.skipped = false;
      const p = { kind: "relabel", entry, prev, prevSkipped, n: 1 };
      S.actions.push(p);
      send({ type: "label", item_id: entry.item.item_id, label: name, source }, p);
      S.view = S.view + 1 < S.history.length ? S.view + 1 : null;
      draw();
      return;
    }
    if (!S.current) { waitingFlash(); return; }
    if (S.flash) S.flash = "";
    const entry = { item: S.current, label: name, skipped: false };
    advance(entry);
    const p = { kind: "label", entry, n: 1 };
    S.actions.push(p);
    send({ type: "label", item_id: entry.item.item_id, label: name, source }, p);
    draw();
  }

  // Never label blind: with nothing on screen (the kernel is busy) a key does nothing, and says so.
  function waitingFlash() {
    const p = model.get("progress") || {};
    if (p.n_queued !== 0) S.flash = "waiting for the next item from the kernel… (key ignored)";
    draw();
  }

  function advance(entry) {
    S.history.push(entry);
    if (S.history.length > HISTORY_LIMIT) S.history.shift();
    S.current = S.buffer.shift() || null;
  }

  function pick(i) {
    const names = model.get("class_names");
    if (i >= names.length) return;
    if (model.get("mode") === "grid") {
      if (S.selected !== null && S.page[S.selected]) {
        S.exceptions.set(S.page[S.selected].item_id, names[i]);
        S.selected = S.selected + 1 < S.page.length ? S.selected + 1 : null;
      } else {
        S.pageClass = names[i];
      }
      draw();
      return;
    }
    labelShown(names[i], "human");
  }

  function accept() {
    if (model.get("mode") === "grid") return submitPage();
    const item = shown();
    if (!item) return;
    if (item.suggestion === null || item.suggestion === undefined) {
      S.flash = "no suggestion yet: pick a class with 1-9/0 (Retrain to get suggestions)";
      draw();
      return;
    }
    labelShown(item.suggestion, "suggestion");
  }

  function skip() {
    if (model.get("mode") === "grid") {
      if (S.selected !== null && S.page[S.selected]) {
        S.exceptions.set(S.page[S.selected].item_id, "skip");
        S.selected = S.selected + 1 < S.page.length ? S.selected + 1 : null;
        draw();
      }
      return;
    }
    if (S.view !== null) return;
    if (!S.current) { waitingFlash(); return; }
    const entry = { item: S.current, label: null, skipped: true };
    advance(entry);
    const p = { kind: "skip", entry, n: 1 };
    S.actions.push(p);
    send({ type: "skip", item_id: entry.item.item_id }, p);
    draw();
  }

  function undo() {
    const last = S.actions.pop();
    if (last && model.get("mode") === "single") {
      if (last.kind === "relabel") {
        last.entry.label = last.prev;
        last.entry.skipped = last.prevSkipped;
      } else {
        const at = S.history.lastIndexOf(last.entry);
        if (at >= 0) S.history.splice(at, 1);
        if (S.current) S.buffer.unshift(S.current);
        S.current = last.entry.item;
      }
      S.view = null;
    } else if (last) {
      const at = S.history.lastIndexOf(last.entry);
      if (at >= 0 && last.kind !== "relabel") S.history.splice(at, 1);
    }
    send({ type: "undo" }, { kind: "undo", undone: last || null, n: 1 });
    if (model.get("mode") === "grid") requestPage();
    draw();
  }

  function walk(step) {
    if (model.get("mode") === "grid" || S.history.length === 0) return;
    if (step < 0) S.view = S.view === null ? S.history.length - 1 : Math.max(0, S.view - 1);
    else if (S.view !== null) S.view = S.view + 1 < S.history.length ? S.view + 1 : null;
    draw();
  }

  function requestPage() {
    S.pageLoading = true;
    send({ type: "page", n: model.get("grid_size") }, null);
  }

  function toggleGrid() {
    if (model.get("pool_kind") !== "image") return;
    const grid = model.get("mode") !== "grid";
    model.set("mode", grid ? "grid" : "single");
    model.save_changes();
    if (grid) { S.page = []; requestPage(); }
    draw();
  }

  function submitPage() {
    const labels = [], skips = [];
    for (const item of S.page) {
      const { label, from } = thumbLabel(item);
      if (label === null) continue;
      if (label === "skip") { skips.push(item.item_id); continue; }
      labels.push([item.item_id, label, from === "suggestion" ? "suggestion" : "human"]);
      const entry = { item, label, skipped: false };
      S.history.push(entry);
      S.actions.push({ kind: "label", entry, n: 1 });
    }
    if (S.history.length > HISTORY_LIMIT) S.history.splice(0, S.history.length - HISTORY_LIMIT);
    if (!labels.length && !skips.length) {
      S.flash = "choose a class for the page (1-9/0) or for single thumbnails first";
      draw();
      return;
    }
    S.pageLoading = true;
    S.page = [];
    send({ type: "label_page", labels, skips, n: model.get("grid_size") },
      { kind: "page", n: labels.length + skips.length });
    draw();
  }

  // ---- keys ------------------------------------------------------------------------------------
  function handle(key) {
    const grid = model.get("mode") === "grid";
    if (KEYS.includes(key)) {
      const i = (model.get("class_keys") || []).indexOf(key);
      if (i >= 0) pick(i);
      return true;
    }
    switch (key) {
      case "Enter": accept(); return true;
      case "Backspace": case "z": case "Z": undo(); return true;
      case "s": case "S": skip(); return true;
      case "g": case "G": toggleGrid(); return true;
      case "ArrowLeft":
        if (grid) { if (S.page.length) S.selected = S.selected === null ? S.page.length - 1 : Math.max(0, S.selected - 1); draw(); }
        else walk(-1);
        return true;
      case "ArrowRight":
        if (grid) { if (S.page.length) S.selected = S.selected === null ? 0 : Math.min(S.page.length - 1, S.selected + 1); draw(); }
        else walk(1);
        return true;
      case "Escape":
        if (grid) { S.selected = null; draw(); }
        return true;
      default: return false;
    }
  }

  function onKeydown(e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;       // Ctrl+S, Cmd+C ... stay JupyterLab's
    if (e.key === "Enter" && e.shiftKey) return;           // Shift+Enter runs the cell as usual
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT")) {
      // Typing in the "retrain every" box: keep its keys away from the notebook too.
      if (e.key === "Enter" || e.key === "Escape") {
        t.blur();
        root.focus({ preventScroll: true });
        e.preventDefault();
      }
      if (e.key.length === 1 || OWNED.has(e.key)) e.stopPropagation();
      return;
    }
    if (S.flash && e.key.length === 1) S.flash = "";
    if (handle(e.key)) {
      e.preventDefault();
      e.stopPropagation();
    } else if (e.key.length === 1 || OWNED.has(e.key)) {
      e.stopPropagation();                                 // m, a, b, x, d d ... never reach the notebook
    }
  }

  // Listen on window in the capture phase: it runs before every other keydown listener.
  // JupyterLab handles shortcuts on document while bubbling, but Notebook 7 does so while
  // capturing, where a listener on the widget itself would come too late to stop them.
  const onWindowKeydown = (e) => {
    if (root.isConnected && e.target instanceof Node && root.contains(e.target)) onKeydown(e);
  };
  window.addEventListener("keydown", onWindowKeydown, true);
  root.addEventListener("mousedown", (e) => {
    if (e.target && e.target.tagName === "INPUT") return;
    // Keep focus on the root so the keys keep working after a click on a button.
    setTimeout(() => root.focus({ preventScroll: true }), 0);
  });

  // ---- wiring ------------------------------------------------------------------------------------
  const onMsg = (msg) => onMessage(msg);
  const onClasses = () => { buildClassButtons(); draw(); };
  model.on("msg:custom", onMsg);
  model.on("change:class_names", onClasses);
  model.on("change:class_keys", onClasses);
  for (const name of ["progress", "model_state", "error", "mode", "retrain_every", "pool_kind"]) {
    model.on(`change:${name}`, draw);
  }
  const onModelState = () => { if (S.flash === RETRAIN_FLASH) { S.flash = ""; draw(); } };
  model.on("change:model_state", onModelState);
  buildClassButtons();
  if (model.get("mode") === "grid") requestPage();
  draw();
  model.send({ type: "hello" });
  requestAnimationFrame(() => root.focus({ preventScroll: true }));

  return () => {
    model.off("msg:custom", onMsg);
    model.off("change:class_names", onClasses);
    model.off("change:class_keys", onClasses);
    for (const name of ["progress", "model_state", "error", "mode", "retrain_every", "pool_kind"]) {
      model.off(`change:${name}`, draw);
    }
    model.off("change:model_state", onModelState);
    window.removeEventListener("keydown", onWindowKeydown, true);
  };
}

export default { render };
