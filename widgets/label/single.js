// label/single.js: the single-item mode: one item on screen, a key labels it.
//
// A class key labels the item on screen and shows the next one at once; Enter accepts the
// model's suggestion (what Enter does comes from enterAction() in label/state.js); s skips;
// ←/→ walk back through the items done here to change a label. Review items (label/review.js)
// are shown on this screen too.
//
// Multi-label sessions (a label is a set of classes): a class key, or a click on a class
// button, toggles the class in the selection shown as pressed buttons (selectionOf() in
// label/state.js: it starts as the model's suggested set, or the label the item has), and
// Enter saves the selection, none selected included (no class applies).
//
// Spans sessions (a label is the list of spans of a text): label/spans.js edits the spans on
// this screen, and Enter saves them the same way (enterAction with "spans").
//
// Boxes sessions (a label is the list of boxes of an image): label/boxes.js edits the boxes
// over the image on this screen, and Enter saves them the same way (enterAction with "boxes").

const SINGLE_HELP = "number keys: class (see the buttons) · Enter: accept suggestion · s: skip · "
  + "z/⌫: undo · ←/→: fix earlier labels";
const MULTI_HELP = "number keys: toggle a class · Enter: save the classes selected (none: no class "
  + "applies) · s: skip · z/⌫: undo · ←/→: fix earlier labels";
const MULTI_REVIEW_HELP = "number keys: toggle a class · Enter: keep the label, or save the classes "
  + "selected · s: later (nothing written) · z/⌫: undo · ←/→: fix earlier labels";

function singleMode(w) {
  const { S, model, els, view } = w;

  // -- actions ------------------------------------------------------------------------------
  function label(name, source) {
    if (S.view !== null) {                       // walked back: change an earlier label
      amend(S.history[S.view], name, { type: "label", label: name, source });
      return;
    }
    if (!S.current) { waitingFlash(); return; }
    if (S.flash) S.flash = "";
    advance({ label: name, skipped: false }, "label", { type: "label", label: name, source });
  }

  // Multi-label: a class key toggles the class in the selection Enter saves.
  function toggle(name) {
    if (S.view === null && !S.current) { waitingFlash(); return; }
    if (S.flash) S.flash = "";
    const on = new Set(selectionOf(S).names);
    if (on.has(name)) on.delete(name); else on.add(name);
    S.selection = { key: viewKey(S), names: model.get("class_names").filter((n) => on.has(n)) };
    w.draw();
  }

  // Multi-label: Enter saves the selection as the item's label (walked back: relabels it).
  function save(enter) {
    if (S.flash) S.flash = "";
    const msg = { type: "label", label: enter.label, source: enter.source };
    if (enter.entry) amend(enter.entry, enter.label, msg);
    else advance({ label: enter.label, skipped: false }, "label", msg);
  }

  // Walked back: write `msg` about an earlier item, which then has the label `name` (z puts
  // its entry back as it was), and step forward.
  function amend(entry, name, msg) {
    S.selection = null;
    S.spans = null;
    S.boxes = null;
    const action = { kind: "relabel", eventIds: [newEventId()], entry,
      prev: { label: entry.label, skipped: entry.skipped, deferred: entry.deferred } };
    Object.assign(entry, { label: name, skipped: false, deferred: false });
    S.actions.push(action);
    w.kernel.send({ ...msg, item_id: entry.item.item_id, query: entry.item.strategy, event_id: action.eventIds[0] },
      { kind: msg.type, n: 1, action });
    stepForward();
  }

  function stepForward() {
    S.view = S.view !== null && S.view + 1 < S.history.length ? S.view + 1 : null;
    w.draw();
  }

  // The item on screen is done with: record what happened to it, show the next one, and tell
  // the kernel. `kind` "label" or "skip" puts the action on the undo stack with a fresh event
  // id; null writes nothing (a review left for later), so there is nothing to undo.
  function advance(outcome, kind, msg) {
    S.selection = null;
    S.spans = null;
    S.boxes = null;
    const entry = { item: S.current, ...outcome };
    record(S, entry);
    S.current = S.buffer.shift() || null;
    const full = { ...msg, item_id: entry.item.item_id, query: entry.item.strategy };
    if (kind === null) {
      w.kernel.send(full, null);
    } else {
      const action = { kind, eventIds: [newEventId()], entry };
      S.actions.push(action);
      w.kernel.send({ ...full, event_id: action.eventIds[0] }, { kind, n: 1, action });
    }
    w.draw();
  }

  // Never label blind: with nothing on screen (the kernel is busy) a key does nothing, and says so.
  function waitingFlash() {
    const p = model.get("progress") || {};
    if (p.n_queued !== 0) S.flash = "waiting for the next item from the kernel… (key ignored)";
    w.draw();
  }

  // Enter does what the screen says it does: both come from enterAction().
  function accept() {
    const enter = enterAction(S, w.task());
    if (!enter.item) return;
    if (enter.kind === "keep") { w.review.keep(enter); return; }
    if (enter.kind === "save") { save(enter); return; }
    if (enter.kind === "none") {
      S.flash = "no suggestion yet: pick a class with 1-9/0 (Retrain to get suggestions)";
      w.draw();
      return;
    }
    label(enter.label, "suggestion");
  }

  function skip() {
    if (S.view !== null) return;
    if (!S.current) { waitingFlash(); return; }
    if (isReview(S.current)) { w.review.defer(); return; }
    advance({ label: null, skipped: true }, "skip", { type: "skip" });
  }

  function walk(step) {
    if (w.isGrid() || S.history.length === 0) return;
    if (step < 0) S.view = S.view === null ? S.history.length - 1 : Math.max(0, S.view - 1);
    else if (S.view !== null) S.view = S.view + 1 < S.history.length ? S.view + 1 : null;
    w.draw();
  }

  // -- drawing ------------------------------------------------------------------------------
  function enterHint(enter) {
    if (enter.kind === "save" && w.isBoxes()) {
      return ` · Enter saves ${boxesText(enter.label)}${enter.label.length ? "" : " (no object in the image)"}`;
    }
    if (enter.kind === "keep" && w.isBoxes()) {
      return ` · Enter keeps ${boxesText(enter.label)} · edit them to change it${enter.entry ? "" : " · s: later"}`;
    }
    if (enter.kind === "save" && w.isSpans()) {
      return ` · Enter saves ${spansText(enter.label)}${enter.label.length ? "" : " (nothing to mark)"}`;
    }
    if (enter.kind === "keep" && w.isSpans()) {
      return ` · Enter keeps ${spansText(enter.label)} · edit them to change it${enter.entry ? "" : " · s: later"}`;
    }
    if (enter.kind === "save") {
      return ` · Enter saves ${labelText(enter.label)}${enter.label.length ? "" : " (no class applies)"}`;
    }
    if (enter.kind === "keep" && w.isMulti()) {
      return ` · Enter keeps ${labelText(enter.label)} · a class key changes it${enter.entry ? "" : " · s: later"}`;
    }
    if (enter.kind === "keep") {
      return ` · Enter keeps ${enter.label} · a class key relabels${enter.entry ? "" : " · s: later"}`;
    }
    if (enter.kind === "accept") {
      return ` · ${enter.item.suggested_by ? enter.item.suggested_by + " · " : ""}Enter accepts`;
    }
    return "";
  }

  function drawSuggestion(enter) {
    const item = enter.item;
    const hint = h("span", "wb-hint", enterHint(enter));
    const spans = w.isSpans();
    const boxes = w.isBoxes();
    const line = spans ? [h("div", "wb-hint wb-spans-state", w.spans.stateLine(item))]
      : boxes ? [h("div", "wb-hint wb-boxes-state", w.boxes.stateLine(item))] : [];
    if (!hasSuggestion(item)) {
      els.suggest.replaceChildren(document.createTextNode("no suggestion yet (no model)"), hint, ...line);
      return;
    }
    els.suggest.replaceChildren(
      document.createTextNode(isReview(item) ? "held-out models suggest " : "model suggests "),
      h("strong", "wb-suggested-name", spans ? spansText(item.suggestion)
        : boxes ? boxesText(item.suggestion) : labelText(item.suggestion)),
      document.createTextNode(item.confidence !== null && item.confidence !== undefined
        ? ` (${pct(item.confidence)})` : ""),
      hint, ...line);
  }

  function draw(enter) {
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
      const asSpans = w.isSpans() && typeof item.text === "string";
      els.item.appendChild(asSpans ? w.spans.textBox() : w.isBoxes() ? w.boxes.stage(item) : drawContent(item.render));
      els.item.appendChild(h("div", "wb-item-id", item.name || item.item_id));
      view.drawnItem = item;
    }
    if (w.isSpans()) w.spans.paint(item);
    if (w.isBoxes()) w.boxes.paint(item);
    const multi = w.isMulti();
    const spans = w.isSpans();
    const boxes = w.isBoxes();
    let given = null;
    if (S.view !== null) {
      const entry = S.history[S.view];
      els.review.appendChild(h("strong", null, `Earlier item ${S.history.length - S.view} back: `));
      els.review.appendChild(document.createTextNode(entry.skipped ? "skipped"
        : `labeled ${spans ? spansText(entry.label) : boxes ? boxesText(entry.label) : labelText(entry.label)}`));
      els.review.appendChild(h("div", "wb-hint", spans
        ? "edit the spans and press Enter to change it, ↓ to go forward"
        : boxes ? "edit the boxes and press Enter to change it, → to go forward (no box selected)"
        : multi ? "toggle classes with their keys and press Enter to change it, → to go forward"
          : "press a class key to change it, → to go forward"));
      given = entry.label;
    } else if (isReview(item)) {
      given = w.review.drawQuestion(item);
    }
    drawSuggestion(enter);
    // Who gave the label this item has now, when, in which commit (from the kernel's blame).
    els.blame.textContent = S.view === null && item.blame ? item.blame : "";
    if (spans) markClassButtons(view.classButtons, names, { pressed: w.spans.pressed() });
    else if (boxes) markClassButtons(view.classButtons, names, { pressed: w.boxes.pressed() });
    else markClassButtons(view.classButtons, names, { suggested: hasSuggestion(item) ? item.suggestion : null, given,
      pressed: multi ? selectionOf(S).names : null });
    els.why.replaceChildren();
    // The reason sentence carries the score when there is one; show the raw score otherwise.
    const score = item.reason || item.score === null || item.score === undefined
      ? "" : ` · score ${Number(item.score).toPrecision(3)}`;
    els.why.appendChild(h("div", "wb-strategy", `why: ${item.strategy}${score}`));
    els.why.appendChild(h("div", "wb-reason", item.reason || ""));
  }

  return { label, toggle, amend, advance, stepForward, accept, skip, walk, draw, waitingFlash };
}
