// LabelWidget front end: draws the item and reports key presses; Python owns the state.
//
// Speed: the kernel keeps a buffer of the next few items (with their rendered payloads)
// here, so a key press shows the next item at once and the label travels to the kernel
// afterwards. Until the kernel acknowledges a label (it is durable on disk by then), the
// header counts it as "saving".
//
// Trust: every label goes back with the role its item was shown in (`strategy`), and with an
// event id minted here, so that z undoes exactly the events of the last action, even while
// they are still on their way. An item acted on is never taken back into the buffer unless
// an undo brings it back.
//
// Safety: item data is only ever put in the page with textContent or as an image's data
// URL, never as HTML, so an item whose text is markup shows as that text. `h`, `pct` and
// `drawContent` come from content.js, which the Python side puts in front of this module.
//
// Keys (JupyterLab's notebook shortcuts fire for any focused element, so the handler stops
// every plain key it owns and every plain letter from reaching the notebook; Ctrl/Cmd/Alt
// combinations and Shift+Enter pass through untouched):
//   single item:  1-9, 0 class · Enter accept the suggestion (a review item: keep the label
//                 shown, see enterAction) · s skip · z/Backspace undo
//                 ←/→ walk back/forward to fix a label · g grid (image pools)
//   grid:         1-9, 0 label the highlighted thumbnail (then the next is highlighted)
//                 Shift+1-9/0 that class for every thumbnail still showing "?"
//                 s skip the highlighted · arrows/click move · z undo · Enter save the page

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];
const HISTORY_LIMIT = 100;
const RETRAIN_FLASH = "retrain requested…";
const REVIEW_FLASH = "finding suspected mislabels…";
const OWNED = new Set(["Enter", "Backspace", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown",
  "Escape", "Delete", "Home", "End", "PageUp", "PageDown", " "]);
const SINGLE_HELP = "number keys: class (see the buttons) · Enter: accept suggestion · s: skip · "
  + "z/⌫: undo · ←/→: fix earlier labels";
const REVIEW_HELP = "number keys: relabel · Enter: keep the label · s: later (nothing written) · "
  + "z/⌫: undo · ←/→: fix earlier labels";
const REVIEW_BACK_HELP = "number keys: relabel · Enter: keep the label shown · z/⌫: undo · "
  + "←/→: walk through earlier labels";
const GRID_HELP = "number: label the highlighted thumbnail · Shift+number: that class for every ? · "
  + "s: skip it · arrows/click: move · z: undo · Enter: save the page · g: back";

// ---- small helpers -----------------------------------------------------------------------
function button(label, hint, title, onClick) {
  const b = h("button", "wb-button");
  b.type = "button";
  if (hint) b.appendChild(h("kbd", "wb-kbd", hint));
  b.appendChild(h("span", "wb-button-label", label));
  if (title) b.title = title;
  b.addEventListener("click", (e) => { e.preventDefault(); onClick(e); });
  return b;
}

// 32 hex digits, like Python's uuid4().hex; getRandomValues works outside secure contexts too.
function newEventId() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function hasSuggestion(item) {
  return item && item.suggestion !== null && item.suggestion !== undefined;
}

// ---- state ------------------------------------------------------------------------------------
function newState() {
  return {
    current: null,       // the live item (payload from the kernel)
    buffer: [],          // the items after it
    done: new Set(),     // ids acted on here (labeled/skipped, not undone): never shown again
    history: [],         // [{item, label, skipped}], most recent last
    actions: [],         // undo stack: {kind: "label"|"skip"|"relabel"|"page", eventIds, ...}
    pending: new Map(),  // seq -> {kind, n, action}: sent, not yet acknowledged
    seq: 0,
    view: null,          // index into history while walking back, null when live
    grid: { page: [], cursor: 0, choices: new Map(), edits: [], loading: false },
    flash: "",
    waiting: true,       // no reply to "hello" yet
  };
}

// What a thumbnail will be saved as: a person's choice, else the model's suggestion, else "?".
function gridLabel(grid, item) {
  const choice = grid.choices.get(item.item_id);
  if (choice) return choice;
  if (hasSuggestion(item)) return { label: item.suggestion, from: "suggestion" };
  return { label: null, from: "none" };
}

function gridCounts(grid) {
  const counts = { suggestion: 0, chosen: 0, skip: 0, none: 0 };
  for (const item of grid.page) {
    const { label, from } = gridLabel(grid, item);
    if (label === "skip") counts.skip += 1;
    else if (from === "suggestion") counts.suggestion += 1;
    else if (from === "none") counts.none += 1;
    else counts.chosen += 1;
  }
  return counts;
}

// ---- the DOM, built once per view --------------------------------------------------------------
function buildDom(el) {
  const els = {};
  els.root = h("div", "wb-label");
  els.root.tabIndex = 0;
  els.root.setAttribute("role", "application");
  els.root.setAttribute("aria-label", "labeling widget: number keys pick a class");

  const header = h("div", "wb-header");
  els.progress = h("div", "wb-progress");
  els.saving = h("div", "wb-saving");
  header.append(els.progress, els.saving);

  els.error = h("div", "wb-error");
  els.errorText = h("span", "wb-error-text");
  els.errorClose = h("button", "wb-error-close", "×");
  els.errorClose.type = "button";
  els.errorClose.title = "dismiss";
  els.error.append(els.errorText, els.errorClose);

  els.main = h("div", "wb-main");
  els.item = h("div", "wb-item");
  const side = h("div", "wb-side");
  els.review = h("div", "wb-review");
  els.why = h("div", "wb-why");
  els.suggest = h("div", "wb-suggestion");
  els.blame = h("div", "wb-blame");
  side.append(els.review, els.blame, els.suggest, els.why);
  els.main.append(els.item, side);

  els.grid = h("div", "wb-grid");
  els.classes = h("div", "wb-classes");
  els.actions = h("div", "wb-actions");
  els.footer = h("div", "wb-footer");
  els.model = h("div", "wb-model");
  els.help = h("div", "wb-help");
  els.root.append(header, els.error, els.main, els.grid, els.classes, els.actions, els.footer, els.help);
  el.appendChild(els.root);
  return els;
}

// ---- drawing: functions of the state, writing into the DOM ---------------------------------
// Which queue the item on screen comes from and how many are left in it: the queues opened on
// request (review, spot-check, ...) by their role, anything else from the strategy's queue
// (the last one). Another open queue waiting behind is named too, so none is forgotten.
function queueLine(S, p, model) {
  const queues = p.queues || [];
  const item = S.current;
  if (!item || !queues.length || model.get("mode") === "grid") return "";
  const strategyQueue = queues[queues.length - 1];
  const mine = queues.slice(0, -1).find((q) => q.queue === item.strategy) || strategyQueue;
  const waiting = queues.slice(0, -1).filter((q) => q !== mine && q.left > 0)
    .map((q) => `${q.queue} ${q.left}`);
  return ` · this item: ${mine.queue} queue, ${mine.left} left`
    + (waiting.length ? ` (waiting: ${waiting.join(", ")})` : "");
}

function drawStatus(S, model, els) {
  const p = model.get("progress") || {};
  const rate = p.labels_per_minute ? ` · ${p.labels_per_minute} labels/min` : "";
  els.progress.textContent = `${p.n_labeled ?? 0} labeled · ${p.n_skipped ?? 0} skipped · `
    + `${p.n_queued ?? "?"} queued · pool ${p.pool_size ?? "?"}${rate}${queueLine(S, p, model)}`;
  let n = 0;
  for (const pending of S.pending.values()) n += pending.n || 1;
  els.saving.textContent = n ? `saving ${n}…` : "all saved";
  els.saving.classList.toggle("wb-busy", n > 0);

  const m = model.get("model_state") || {};
  const parts = [];
  if (m.representation) parts.push(m.representation);  // learned once per pool, in the background
  if (m.training) parts.push("training…");
  if (m.rounds || m.started_from) {
    // The kernel words the accuracy (metrics.accuracy_headline): with its 95% interval and
    // sample size, or "not enough audit labels yet" while the interval is wider than ±10 points.
    let acc = m.accuracy_headline ? `, ${m.accuracy_headline}` : "";
    if (m.accuracy_headline && m.accuracy_headline.startsWith("accuracy ")
        && m.last_macro_f1 !== null && m.last_macro_f1 !== undefined) {
      acc += `, macro-F1 ${(m.last_macro_f1 * 100).toFixed(1)}%`;
    }
    parts.push(m.rounds ? `model round ${m.rounds}${acc}` : `the model you started from${acc}`);
  } else if (!m.training) {
    parts.push("no model yet: label a few items of different classes, then Retrain");
  }
  els.model.textContent = parts.join(" · ");
  els.model.classList.toggle("wb-training", !!m.training);

  const err = model.get("error") || (m.last_error ? `last retrain failed: ${m.last_error}` : "");
  const text = err || S.flash;
  els.errorText.textContent = text;
  els.error.classList.toggle("wb-visible", !!text);
  els.error.classList.toggle("wb-info", !err && !!S.flash);
  if (document.activeElement !== els.everyInput) els.everyInput.value = String(model.get("retrain_every") || 0);
}

function markClassButtons(buttons, names, { suggested = null, given = null } = {}) {
  buttons.forEach((b, i) => {
    b.classList.toggle("wb-suggested", names[i] === suggested);
    b.classList.toggle("wb-given", names[i] === given);
  });
}

// A review item: shown again because models that never saw its label doubt it.
function isReview(item) {
  return !!item && item.strategy === "review" && item.given !== null && item.given !== undefined;
}

// What Enter does on the single-item screen, worked out in one place from the state, so that
// the hint, the Enter button, the help line and accept() can never disagree:
//   keep    a review item: Enter keeps `label`, the label the screen shows it with (walked
//           back: the label its entry has now). `write`: a confirm event is needed (the live
//           item, or one walked back to that was left for later); otherwise the label stands
//           already (kept or relabeled before) and Enter only moves on.
//   accept  Enter labels the item with the model's suggestion, `label`.
//   none    no suggestion: Enter only says so.
function enterAction(S) {
  const entry = S.view === null ? null : S.history[S.view];
  const item = entry ? entry.item : S.current;
  if (!item) return { kind: "none", item: null, entry };
  if (isReview(item)) {
    if (!entry) return { kind: "keep", item, entry, label: item.given, write: true };
    return { kind: "keep", item, entry, label: entry.label, write: !!entry.deferred };
  }
  if (!hasSuggestion(item)) return { kind: "none", item, entry };
  return { kind: "accept", item, entry, label: item.suggestion };
}

function enterHint(enter) {
  if (enter.kind === "keep") {
    return ` · Enter keeps ${enter.label} · a class key relabels${enter.entry ? "" : " · s: later"}`;
  }
  if (enter.kind === "accept") {
    return ` · ${enter.item.suggested_by ? enter.item.suggested_by + " · " : ""}Enter accepts`;
  }
  return "";
}

function drawSuggestion(els, enter) {
  const item = enter.item;
  const hint = h("span", "wb-hint", enterHint(enter));
  if (!hasSuggestion(item)) {
    els.suggest.replaceChildren(document.createTextNode("no suggestion yet (no model)"), hint);
    return;
  }
  els.suggest.replaceChildren(
    document.createTextNode(isReview(item) ? "held-out models suggest " : "model suggests "),
    h("strong", "wb-suggested-name", item.suggestion),
    document.createTextNode(item.confidence !== null && item.confidence !== undefined
      ? ` (${pct(item.confidence)})` : ""),
    hint);
}

function drawSingle(S, model, els, view, enter) {
  const item = enter.item;
  const names = model.get("class_names");
  els.review.replaceChildren();
  if (item !== view.drawnItem || !item) els.item.replaceChildren();
  if (!item) {
    view.drawnItem = null;
    els.item.removeAttribute("data-item-id");
    const p = model.get("progress") || {};
    const done = !S.waiting && S.buffer.length === 0 && p.n_queued === 0;
    els.item.appendChild(h("div", "wb-placeholder wb-done",
      done ? "Nothing left to label: every item is labeled or skipped." : "loading…"));
    els.suggest.textContent = "";
    els.why.textContent = "";
    els.blame.textContent = "";
    markClassButtons(view.classButtons, names);
    return;
  }
  if (item !== view.drawnItem) {
    els.item.dataset.itemId = item.item_id;
    els.item.appendChild(drawContent(item.render));
    els.item.appendChild(h("div", "wb-item-id", item.name || item.item_id));
    view.drawnItem = item;
  }
  let given = null;
  if (S.view !== null) {
    const entry = S.history[S.view];
    els.review.appendChild(h("strong", null, `Earlier item ${S.history.length - S.view} back: `));
    els.review.appendChild(document.createTextNode(entry.skipped ? "skipped" : `labeled ${entry.label}`));
    els.review.appendChild(h("div", "wb-hint", "press a class key to change it, → to go forward"));
    given = entry.label;
  } else if (isReview(item)) {
    els.review.appendChild(h("strong", null, "Review: "));
    els.review.appendChild(document.createTextNode(`labeled ${item.given}; is that right?`));
    given = item.given;
  }
  drawSuggestion(els, enter);
  // Who gave the label this item has now, when, in which commit (from the kernel's blame).
  els.blame.textContent = S.view === null && item.blame ? item.blame : "";
  markClassButtons(view.classButtons, names, { suggested: hasSuggestion(item) ? item.suggestion : null, given });
  els.why.replaceChildren();
  // The reason sentence carries the score when there is one; show the raw score otherwise.
  const score = item.reason || item.score === null || item.score === undefined
    ? "" : ` · score ${Number(item.score).toPrecision(3)}`;
  els.why.appendChild(h("div", "wb-strategy", `why: ${item.strategy}${score}`));
  els.why.appendChild(h("div", "wb-reason", item.reason || ""));
}

function drawGrid(S, model, els, view, onThumb) {
  const grid = S.grid;
  els.grid.replaceChildren();
  const c = gridCounts(grid);
  const bar = h("div", "wb-grid-bar");
  bar.textContent = grid.page.length
    ? `${grid.page.length} items: ${c.chosen} labeled by you, ${c.suggestion} suggested by the model`
      + ` (saved as shown), ${c.skip} to skip, ${c.none} unlabeled (? stays in the queue) · Enter saves the page`
    : "";
  els.grid.appendChild(bar);
  const cells = h("div", "wb-grid-cells");
  if (grid.loading && grid.page.length === 0) cells.appendChild(h("div", "wb-placeholder", "loading…"));
  if (!grid.loading && grid.page.length === 0) {
    cells.appendChild(h("div", "wb-placeholder wb-done", "Nothing left to label."));
  }
  grid.page.forEach((item, i) => {
    const cell = h("div", "wb-thumb");
    cell.dataset.itemId = item.item_id;
    cell.dataset.index = String(i);
    if (grid.cursor === i) cell.classList.add("wb-selected");
    cell.appendChild(drawContent(item.render, { thumb: true }));
    const { label, from } = gridLabel(grid, item);
    const text = label === null ? "?" : (label === "skip" ? "skip"
      : (from === "suggestion" ? `${label}? ${pct(item.confidence)}` : label));
    const badge = h("div", `wb-badge wb-from-${label === "skip" ? "skip" : from}`, text);
    badge.title = { suggestion: "the model's suggestion: saved as shown unless you change it",
      key: "labeled by you", fill: "labeled by you (Shift+number)", none: "no label: stays in the queue",
      skip: "will be skipped" }[label === "skip" ? "skip" : from];
    cell.appendChild(badge);
    cell.addEventListener("click", () => onThumb(i));
    cells.appendChild(cell);
  });
  els.grid.appendChild(cells);
  const names = model.get("class_names");
  const at = grid.page[grid.cursor];
  markClassButtons(view.classButtons, names, { given: at ? gridLabel(grid, at).label : null });
}

// ---- the widget ----------------------------------------------------------------------------------
function render({ model, el }) {
  const S = newState();
  const els = buildDom(el);
  const view = { drawnItem: null, classButtons: [] };
  const isGrid = () => model.get("mode") === "grid";

  // -- controls ---------------------------------------------------------------------------
  els.errorClose.addEventListener("click", () => { model.set("error", ""); model.save_changes(); S.flash = ""; draw(); });
  const backBtn = button("back", "←", "walk back to fix an earlier label", () => walk(-1));
  const fwdBtn = button("forward", "→", "walk forward again", () => walk(1));
  const undoBtn = button("undo", "z", "undo the last action (z or Backspace)", () => undo());
  const skipBtn = button("skip", "s", "skip this item", () => skip());
  const acceptBtn = button("accept", "⏎", "accept the model's suggestion (grid: save the page)", () => accept());
  const gridBtn = button("grid", "g", "label a page of thumbnails at once", () => toggleGrid());
  els.actions.append(backBtn, fwdBtn, undoBtn, skipBtn, acceptBtn, gridBtn);

  const retrainBtn = button("Retrain", null, "train the model on the labels so far (in the background)",
    () => { model.send({ type: "retrain" }); S.flash = RETRAIN_FLASH; draw(); });
  retrainBtn.classList.add("wb-retrain");
  const everyLabel = h("label", "wb-every");
  everyLabel.appendChild(h("span", null, "retrain every "));
  els.everyInput = h("input", "wb-every-input");
  els.everyInput.type = "number";
  els.everyInput.min = "0";
  els.everyInput.step = "1";
  els.everyInput.title = "0: only when you press Retrain";
  els.everyInput.addEventListener("change", () => {
    model.set("retrain_every", Math.max(0, parseInt(els.everyInput.value, 10) || 0));
    model.save_changes();
  });
  everyLabel.append(els.everyInput, h("span", null, " labels"));
  // Review: the labels that models trained without them doubt come first (Enter keeps one).
  const reviewBtn = button("Review labels", null,
    "show the labels that models trained without them doubt, most suspicious first",
    () => { model.send({ type: "review" }); S.flash = REVIEW_FLASH; draw(); });
  reviewBtn.classList.add("wb-review-button");
  els.footer.append(els.model, retrainBtn, reviewBtn, everyLabel);

  function buildClassButtons() {
    els.classes.replaceChildren();
    const keys = model.get("class_keys") || [];
    view.classButtons = model.get("class_names").map((name, i) => {
      const b = button(name, keys[i] || null, `label as ${name}`, () => pick(i, false));
      b.classList.add("wb-class");
      b.dataset.classIndex = String(i);
      els.classes.appendChild(b);
      return b;
    });
  }

  function draw() {
    const grid = isGrid();
    els.root.classList.toggle("wb-mode-grid", grid);
    gridBtn.hidden = model.get("pool_kind") !== "image";
    const enter = enterAction(S);
    const keeping = !grid && enter.kind === "keep";
    const reviewing = keeping && !enter.entry;  // the live review item: s leaves it for later
    const help = keeping ? (reviewing ? REVIEW_HELP : REVIEW_BACK_HELP) : SINGLE_HELP;
    els.help.textContent = grid ? GRID_HELP : help + (gridBtn.hidden ? "" : " · g: grid");
    // A review item's Enter keeps its label and s leaves it for later: the buttons say so.
    acceptBtn.querySelector(".wb-button-label").textContent = keeping ? "keep" : "accept";
    skipBtn.querySelector(".wb-button-label").textContent = reviewing ? "later" : "skip";
    els.main.hidden = grid;
    els.grid.hidden = !grid;
    backBtn.disabled = grid || S.history.length === 0 || S.view === 0;
    fwdBtn.disabled = grid || S.view === null;
    if (grid) drawGrid(S, model, els, view, (i) => { S.grid.cursor = i; els.root.focus({ preventScroll: true }); draw(); });
    else drawSingle(S, model, els, view, enter);
    drawStatus(S, model, els);
  }

  // -- talking to the kernel ------------------------------------------------------------------
  function send(msg, pending) {
    const seq = ++S.seq;
    if (pending) S.pending.set(seq, pending);
    model.send({ ...msg, seq });
    return seq;
  }

  function held(id) {
    if (S.done.has(id)) return true;
    if (S.current && S.current.item_id === id) return true;
    return S.buffer.some((x) => x.item_id === id);
  }

  function addItems(items) {
    for (const item of items || []) if (!held(item.item_id)) S.buffer.push(item);
    if (!S.current && S.buffer.length) S.current = S.buffer.shift();
  }

  function holdingIds() {
    return [S.current, ...S.buffer].filter(Boolean).map((x) => x.item_id);
  }

  function onReset(msg) {
    S.waiting = false;
    if (msg.reason === "focus" && S.flash === REVIEW_FLASH) S.flash = "";
    const before = holdingIds();
    if (msg.replace_current) { S.current = null; S.view = null; }
    S.buffer = [];
    const fresh = S.current && (msg.items || []).find((x) => x.item_id === S.current.item_id);
    if (fresh) {
      S.current = fresh;                 // same item, newer suggestion and reason
    } else if (S.current) {
      // Keep the item the user is looking at (in the role it was shown in), but ask what the
      // new model thinks of it.
      model.send({ type: "suggest", item_id: S.current.item_id });
    }
    addItems(msg.items);
    const now = holdingIds();
    model.send({ type: "holding", item_ids: now, dropped: before.filter((id) => !now.includes(id)) });
  }

  function onWithdraw(msg) {
    const gone = new Set(msg.item_ids || []);
    S.buffer = S.buffer.filter((x) => !gone.has(x.item_id));
    if (S.current && gone.has(S.current.item_id)) {
      if (!msg.quiet) S.flash = `${S.current.name || S.current.item_id} was ${msg.reason || "labeled elsewhere"}; moved on`;
      S.current = S.buffer.shift() || null;
    }
    addItems(msg.items);
  }

  function onAck(msg) {
    const p = S.pending.get(msg.seq);
    S.pending.delete(msg.seq);
    if (msg.action === "undo") bringBack(msg.undone || [], p);
    if (msg.page) {
      S.grid = { page: msg.page, cursor: 0, choices: new Map(), edits: [], loading: false };
      S.grid.page = S.grid.page.filter((x) => !S.done.has(x.item_id));
    }
    addItems(msg.items);
  }

  // Items an undo took back and the kernel sends again: in front, the first one on screen.
  function bringBack(items, p) {
    for (const item of items) S.done.delete(item.item_id);
    // The kernel says which label each item has now: what a review item on screen keeps.
    for (const fresh of items) {
      for (const x of [S.current, ...S.buffer]) if (x && x.item_id === fresh.item_id) x.given = fresh.given;
    }
    if (isGrid()) { requestPage(); return; }
    const onScreen = p && p.action && p.action.kind !== "page" && p.action.kind !== "relabel";
    if (onScreen) return;                       // already brought back locally by undo()
    const back = items.filter((x) => !held(x.item_id));
    if (!back.length) return;
    if (S.current) S.buffer.unshift(S.current);
    S.buffer.unshift(...back.slice(1));
    S.current = back[0];
    S.view = null;
  }

  function onError(msg) {
    const p = S.pending.get(msg.seq);
    S.pending.delete(msg.seq);
    if (p && p.action) restore(p.action);
    if (msg.action === "page") S.grid.loading = false;
    if (msg.action === "label_page") requestPage();
  }

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "reset") onReset(msg);
    else if (msg.type === "items") addItems(msg.items);
    else if (msg.type === "withdraw") onWithdraw(msg);
    else if (msg.type === "ack") onAck(msg);
    else if (msg.type === "error") onError(msg);
    else if (msg.type === "suggestion") {
      for (const item of [S.current, ...S.history.map((e) => e.item)]) {
        if (item && item.item_id === msg.item_id) {
          item.suggestion = msg.suggestion;
          item.confidence = msg.confidence;
          item.suggested_by = msg.suggested_by;
        }
      }
    }
    draw();
  }

  // A label or skip the kernel refused comes back on screen, so nothing is lost silently.
  function restore(action) {
    S.actions = S.actions.filter((a) => a !== action);
    if (action.kind === "relabel") { Object.assign(action.entry, action.prev); return; }
    if (action.kind === "page") {
      for (const entry of action.entries) unrecord(entry);
      return;
    }
    if (action.kind !== "label" && action.kind !== "skip") return;
    unrecord(action.entry);
    if (isGrid()) return;
    if (S.current) S.buffer.unshift(S.current);
    S.current = action.entry.item;
    S.view = null;
  }

  function record(entry) {
    S.history.push(entry);
    if (S.history.length > HISTORY_LIMIT) S.history.shift();
    S.done.add(entry.item.item_id);
  }

  function unrecord(entry) {
    const at = S.history.lastIndexOf(entry);
    if (at >= 0) S.history.splice(at, 1);
    S.done.delete(entry.item.item_id);
    if (S.view !== null && S.view >= S.history.length) S.view = null;
  }

  // -- single-item actions ----------------------------------------------------------------------
  function labelShown(name, source) {
    if (S.view !== null) {                       // walked back: change an earlier label
      amend(S.history[S.view], name, { type: "label", label: name, source });
      return;
    }
    if (!S.current) { waitingFlash(); return; }
    if (S.flash) S.flash = "";
    advance({ label: name, skipped: false }, "label", { type: "label", label: name, source });
  }

  // Walked back: write `msg` about an earlier item, which then has the label `name` (z puts
  // its entry back as it was), and step forward.
  function amend(entry, name, msg) {
    const action = { kind: "relabel", eventIds: [newEventId()], entry,
      prev: { label: entry.label, skipped: entry.skipped, deferred: entry.deferred } };
    Object.assign(entry, { label: name, skipped: false, deferred: false });
    S.actions.push(action);
    send({ ...msg, item_id: entry.item.item_id, query: entry.item.strategy, event_id: action.eventIds[0] },
      { kind: msg.type, n: 1, action });
    stepForward();
  }

  function stepForward() {
    S.view = S.view !== null && S.view + 1 < S.history.length ? S.view + 1 : null;
    draw();
  }

  // The item on screen is done with: record what happened to it, show the next one, and tell
  // the kernel. `kind` "label" or "skip" puts the action on the undo stack with a fresh event
  // id; null writes nothing (a review left for later), so there is nothing to undo.
  function advance(outcome, kind, msg) {
    const entry = { item: S.current, ...outcome };
    record(entry);
    S.current = S.buffer.shift() || null;
    const full = { ...msg, item_id: entry.item.item_id, query: entry.item.strategy };
    if (kind === null) {
      send(full, null);
    } else {
      const action = { kind, eventIds: [newEventId()], entry };
      S.actions.push(action);
      send({ ...full, event_id: action.eventIds[0] }, { kind, n: 1, action });
    }
    draw();
  }

  // Never label blind: with nothing on screen (the kernel is busy) a key does nothing, and says so.
  function waitingFlash() {
    const p = model.get("progress") || {};
    if (p.n_queued !== 0) S.flash = "waiting for the next item from the kernel… (key ignored)";
    draw();
  }

  // Enter does what the screen says it does: both come from enterAction().
  function accept() {
    if (isGrid()) { savePage(); return; }
    const enter = enterAction(S);
    if (!enter.item) return;
    if (enter.kind === "keep") { keep(enter); return; }
    if (enter.kind === "none") {
      S.flash = "no suggestion yet: pick a class with 1-9/0 (Retrain to get suggestions)";
      draw();
      return;
    }
    labelShown(enter.label, "suggestion");
  }

  // Enter on a review item keeps the label the screen names: a confirm event that carries it
  // (the kernel refuses it if the label changed meanwhile), which z takes back like a label.
  function keep(enter) {
    if (S.flash) S.flash = "";
    const msg = { type: "confirm", label: enter.label };
    if (!enter.entry) advance({ label: enter.label, skipped: false }, "label", msg);
    else if (enter.write) amend(enter.entry, enter.label, msg);
    else stepForward();                        // kept or relabeled already: the label stands
  }

  function skip() {
    if (isGrid()) { gridSkip(); return; }
    if (S.view !== null) return;
    if (!S.current) { waitingFlash(); return; }
    if (isReview(S.current)) {  // s on a review item leaves it for later: no event
      advance({ label: S.current.given, skipped: false, deferred: true }, null, { type: "defer" });
      return;
    }
    advance({ label: null, skipped: true }, "skip", { type: "skip" });
  }

  // z takes back the last thing done in this view: a choice on the unsaved grid page, else the
  // last action sent to the kernel, which is asked to retract exactly that action's events.
  function undo() {
    if (isGrid() && S.grid.edits.length) {
      const edit = S.grid.edits.pop();
      for (const [id, prev] of edit.prev) {
        if (prev) S.grid.choices.set(id, prev); else S.grid.choices.delete(id);
      }
      S.grid.cursor = edit.cursor;
      draw();
      return;
    }
    const action = S.actions.pop();
    if (!action) {
      S.flash = "nothing to undo in this view (walk back with ← to change an earlier label)";
      draw();
      return;
    }
    if (action.kind === "relabel") {
      Object.assign(action.entry, action.prev);
    } else if (action.kind === "page") {
      for (const entry of action.entries) unrecord(entry);
    } else {
      unrecord(action.entry);
      if (!isGrid()) {
        if (S.current) S.buffer.unshift(S.current);
        S.current = action.entry.item;
      }
    }
    S.view = null;
    send({ type: "undo", event_ids: action.eventIds }, { kind: "undo", n: action.eventIds.length, action });
    draw();
  }

  function walk(step) {
    if (isGrid() || S.history.length === 0) return;
    if (step < 0) S.view = S.view === null ? S.history.length - 1 : Math.max(0, S.view - 1);
    else if (S.view !== null) S.view = S.view + 1 < S.history.length ? S.view + 1 : null;
    draw();
  }

  // -- the grid ------------------------------------------------------------------------------------
  function requestPage() {
    S.grid.loading = true;
    send({ type: "page", n: model.get("grid_size") }, null);
  }

  function dropPage() {
    const unsaved = S.grid.page.map((x) => x.item_id).filter((id) => !S.done.has(id) && !holdingIds().includes(id));
    if (unsaved.length) model.send({ type: "holding", item_ids: [], dropped: unsaved });
    const chosen = S.grid.edits.length;
    S.grid = { page: [], cursor: 0, choices: new Map(), edits: [], loading: false };
    return chosen;
  }

  function toggleGrid() {
    if (model.get("pool_kind") !== "image") return;
    const grid = !isGrid();
    if (!grid && dropPage()) S.flash = "left the grid: the unsaved page's choices were dropped";
    model.set("mode", grid ? "grid" : "single");
    model.save_changes();
    if (grid) requestPage();
    draw();
  }

  function editChoices(ids, value) {
    const prev = new Map(ids.map((id) => [id, S.grid.choices.get(id) || null]));
    S.grid.edits.push({ prev, cursor: S.grid.cursor });
    for (const id of ids) {
      if (value) S.grid.choices.set(id, value); else S.grid.choices.delete(id);
    }
  }

  function gridPick(name, fill) {
    const grid = S.grid;
    if (!grid.page.length) return;
    if (fill) {                                   // only thumbnails with no label of any kind
      const empty = grid.page.filter((x) => gridLabel(grid, x).from === "none").map((x) => x.item_id);
      if (!empty.length) { S.flash = "no thumbnail shows ? on this page: nothing to fill"; draw(); return; }
      editChoices(empty, { label: name, from: "fill" });
    } else {
      editChoices([grid.page[grid.cursor].item_id], { label: name, from: "key" });
      grid.cursor = Math.min(grid.cursor + 1, grid.page.length - 1);
    }
    draw();
  }

  function gridSkip() {
    const grid = S.grid;
    const item = grid.page[grid.cursor];
    if (!item) return;
    const isSkip = (grid.choices.get(item.item_id) || {}).label === "skip";
    editChoices([item.item_id], isSkip ? null : { label: "skip", from: "key" });
    grid.cursor = Math.min(grid.cursor + 1, grid.page.length - 1);
    draw();
  }

  function gridMove(step) {
    const grid = S.grid;
    if (!grid.page.length) return;
    grid.cursor = Math.max(0, Math.min(grid.page.length - 1, grid.cursor + step));
    draw();
  }

  function gridColumns() {
    const cells = els.grid.querySelectorAll(".wb-thumb");
    if (cells.length < 2) return 1;
    const top = cells[0].offsetTop;
    let n = 0;
    for (const c of cells) { if (c.offsetTop !== top) break; n += 1; }
    return Math.max(1, n);
  }

  function savePage() {
    const grid = S.grid;
    const labels = [], skips = [], entries = [], eventIds = [];
    for (const item of grid.page) {
      const { label, from } = gridLabel(grid, item);
      if (label === null) continue;               // "?": stays in the queue
      const eventId = newEventId();
      eventIds.push(eventId);
      if (label === "skip") {
        skips.push([item.item_id, item.strategy, eventId]);
        entries.push({ item, label: null, skipped: true });
      } else {
        labels.push([item.item_id, label, from === "suggestion" ? "suggestion" : "human", item.strategy, eventId]);
        entries.push({ item, label, skipped: false });
      }
    }
    if (!entries.length) {
      S.flash = "nothing to save: label the highlighted thumbnail with a number key first";
      draw();
      return;
    }
    for (const entry of entries) record(entry);
    const action = { kind: "page", eventIds, entries };
    S.actions.push(action);
    S.grid = { page: [], cursor: 0, choices: new Map(), edits: [], loading: true };
    send({ type: "label_page", labels, skips, n: model.get("grid_size") }, { kind: "page", n: entries.length, action });
    draw();
  }

  // -- keys ----------------------------------------------------------------------------------------
  function pick(i, fill) {
    const names = model.get("class_names");
    if (i >= names.length) return;
    if (isGrid()) gridPick(names[i], fill);
    else if (!fill) labelShown(names[i], "human");
  }

  function handle(e) {
    const key = e.key;
    const grid = isGrid();
    // Shift+digit arrives as "!", "@", ... depending on the layout: read the physical key.
    const digit = KEYS.includes(key) ? key : (e.shiftKey && /^Digit\d$/.test(e.code || "") ? e.code.slice(5) : null);
    if (digit !== null) {
      const i = (model.get("class_keys") || []).indexOf(digit);
      if (i >= 0) pick(i, e.shiftKey);
      return true;
    }
    switch (key) {
      case "Enter": accept(); return true;
      case "Backspace": case "z": case "Z": undo(); return true;
      case "s": case "S": skip(); return true;
      case "g": case "G": toggleGrid(); return true;
      case "ArrowLeft": if (grid) gridMove(-1); else walk(-1); return true;
      case "ArrowRight": if (grid) gridMove(1); else walk(1); return true;
      case "ArrowUp": if (grid) gridMove(-gridColumns()); return true;
      case "ArrowDown": if (grid) gridMove(gridColumns()); return true;
      case "Escape": return true;
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
        els.root.focus({ preventScroll: true });
        e.preventDefault();
      }
      if (e.key.length === 1 || OWNED.has(e.key)) e.stopPropagation();
      return;
    }
    if (S.flash && e.key.length === 1) S.flash = "";
    if (handle(e)) {
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
    if (els.root.isConnected && e.target instanceof Node && els.root.contains(e.target)) onKeydown(e);
  };
  window.addEventListener("keydown", onWindowKeydown, true);
  els.root.addEventListener("mousedown", (e) => {
    if (e.target && e.target.tagName === "INPUT") return;
    // Keep focus on the root so the keys keep working after a click on a button.
    setTimeout(() => els.root.focus({ preventScroll: true }), 0);
  });

  // -- wiring ----------------------------------------------------------------------------------------
  const onMsg = (msg) => onMessage(msg);
  const onClasses = () => { buildClassButtons(); draw(); };
  const redrawOn = ["progress", "model_state", "error", "mode", "retrain_every", "pool_kind"];
  const onModelState = () => { if (S.flash === RETRAIN_FLASH) { S.flash = ""; draw(); } };
  const onErrorShown = () => { if (S.flash === REVIEW_FLASH && model.get("error")) { S.flash = ""; draw(); } };
  model.on("msg:custom", onMsg);
  model.on("change:class_names", onClasses);
  model.on("change:class_keys", onClasses);
  for (const name of redrawOn) model.on(`change:${name}`, draw);
  model.on("change:model_state", onModelState);
  model.on("change:error", onErrorShown);
  buildClassButtons();
  if (isGrid()) requestPage();
  draw();
  model.send({ type: "hello" });
  requestAnimationFrame(() => els.root.focus({ preventScroll: true }));

  return () => {
    model.off("msg:custom", onMsg);
    model.off("change:class_names", onClasses);
    model.off("change:class_keys", onClasses);
    for (const name of redrawOn) model.off(`change:${name}`, draw);
    model.off("change:model_state", onModelState);
    model.off("change:error", onErrorShown);
    window.removeEventListener("keydown", onWindowKeydown, true);
  };
}

export default { render };
