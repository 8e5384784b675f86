// label/widget.js: the widget: the shared core each part gets, the controls, draw(), and the
// wiring to the model. anywidget calls render() once per view; it returns the cleanup.

function render({ model, el }) {
  // The shared core. Each part is a function of it that returns its actions, and reaches the
  // others through it (w.single.advance, w.grid.requestPage, ...) when they are called.
  const w = {
    model,
    S: newState(),                                   // label/state.js
    els: buildDom(el),                               // label/view.js
    view: { drawnItem: null, classButtons: [] },     // what is drawn now
    isGrid: () => model.get("mode") === "grid",
    isMulti: () => model.get("task") === "multi_label",   // a label is a set of classes
    isSpans: () => model.get("task") === "spans",          // a label is the spans of a text
    isBoxes: () => model.get("task") === "boxes",          // a label is the boxes of an image
    // What enterAction() is told: "spans", "boxes", or whether a label is a set of classes.
    task: () => (["spans", "boxes"].includes(model.get("task")) ? model.get("task")
      : model.get("task") === "multi_label"),
    draw: () => draw(w),
  };
  w.kernel = connection(w);
  w.undo = undoStack(w);
  w.single = singleMode(w);
  w.review = reviewMode(w);
  w.spans = spansMode(w);
  w.boxes = boxesMode(w);
  w.grid = gridMode(w);
  w.act = actions(w);
  w.buttons = buildControls(w);
  const stopKeys = listenToKeys(w);

  const { S } = w;
  const onMsg = (msg) => w.kernel.onMessage(msg);
  const onClasses = () => { buildClassButtons(w); w.draw(); };
  const redrawOn = ["progress", "model_state", "error", "mode", "retrain_every", "pool_kind"];
  const classesOn = ["class_names", "class_keys", "task", "overlapping"];
  const onModelState = () => { if (S.flash === RETRAIN_FLASH) { S.flash = ""; w.draw(); } };
  const onErrorShown = () => { if (S.flash === REVIEW_FLASH && model.get("error")) { S.flash = ""; w.draw(); } };
  model.on("msg:custom", onMsg);
  for (const name of classesOn) model.on(`change:${name}`, onClasses);
  for (const name of redrawOn) model.on(`change:${name}`, w.draw);
  model.on("change:model_state", onModelState);
  model.on("change:error", onErrorShown);
  buildClassButtons(w);
  if (w.isGrid()) w.grid.requestPage();
  w.draw();
  model.send({ type: "hello" });
  requestAnimationFrame(() => w.els.root.focus({ preventScroll: true }));

  return () => {
    model.off("msg:custom", onMsg);
    for (const name of classesOn) model.off(`change:${name}`, onClasses);
    for (const name of redrawOn) model.off(`change:${name}`, w.draw);
    model.off("change:model_state", onModelState);
    model.off("change:error", onErrorShown);
    stopKeys();
  };
}

// What each key and button does: the one place that says which mode's part acts.
function actions(w) {
  const { model } = w;
  return {
    pick(i, fill) {
      const names = model.get("class_names");
      if (i >= names.length) return;
      if (w.isGrid()) w.grid.pick(names[i], fill);
      else if (w.isSpans()) w.spans.assign(names[i]);
      else if (w.isBoxes()) w.boxes.assign(names[i]);
      else if (!fill && w.isMulti()) w.single.toggle(names[i]);
      else if (!fill) w.single.label(names[i], "human");
    },
    accept: () => (w.isGrid() ? w.grid.save() : w.single.accept()),
    skip: () => (w.isGrid() ? w.grid.skip() : w.single.skip()),
    undo: () => w.undo.undo(),
    walk: (step) => w.single.walk(step),
    toggleGrid: () => w.grid.toggle(),
  };
}

const ACCEPT_TITLE = "accept the model's suggestion (grid: save the page)";
const SAVE_TITLE = "save the classes selected as the item's label (none selected: no class applies)";
const SAVE_SPANS_TITLE = "save the spans shown as the item's label (none: nothing to mark)";
const SAVE_BOXES_TITLE = "save the boxes shown as the image's label (none: no object in it)";

// The buttons under the item and the footer (retrain, review, retrain every n labels).
function buildControls(w) {
  const { S, model, els, act } = w;
  els.errorClose.addEventListener("click", () => { model.set("error", ""); model.save_changes(); S.flash = ""; w.draw(); });
  const buttons = {
    back: button("back", "←", "walk back to fix an earlier label", () => act.walk(-1)),
    forward: button("forward", "→", "walk forward again", () => act.walk(1)),
    undo: button("undo", "z", "undo the last action (z or Backspace)", () => act.undo()),
    skip: button("skip", "s", "skip this item", () => act.skip()),
    accept: button("accept", "⏎", ACCEPT_TITLE, () => act.accept()),
    grid: button("grid", "g", "label a page of thumbnails at once", () => act.toggleGrid()),
  };
  els.actions.append(...Object.values(buttons));

  const retrainBtn = button("Retrain", null, "train the model on the labels so far (in the background)",
    () => { model.send({ type: "retrain" }); S.flash = RETRAIN_FLASH; w.draw(); });
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
    () => { model.send({ type: "review" }); S.flash = REVIEW_FLASH; w.draw(); });
  reviewBtn.classList.add("wb-review-button");  // every task: spans and boxes review their parts
  els.footer.append(els.model, retrainBtn, reviewBtn, everyLabel);
  return buttons;
}

function buildClassButtons(w) {
  const { model, els, view } = w;
  els.classes.replaceChildren();
  const keys = model.get("class_keys") || [];
  const multi = w.isMulti();
  view.classButtons = model.get("class_names").map((name, i) => {
    const title = w.isSpans() ? `mark the words selected as ${name} (a span chosen: relabel it)`
      : w.isBoxes() ? `the box selected becomes ${name} (none selected: the next box drawn)`
      : multi ? `select or unselect ${name} (Enter saves the classes selected)` : `label as ${name}`;
    const b = button(name, keys[i] || null, title, () => w.act.pick(i, false));
    b.classList.add("wb-class");
    b.dataset.classIndex = String(i);
    els.classes.appendChild(b);
    return b;
  });
}

// Everything on screen, from the state and the model's traits: the mode's own part draws the
// item or the grid; the help line and the button labels say what the keys do now.
function draw(w) {
  const { S, model, els, buttons } = w;
  const grid = w.isGrid();
  const spans = w.isSpans();
  const boxes = w.isBoxes();
  const multi = w.isMulti() || spans || boxes;  // the grid labels one class per item: not offered
  els.root.classList.toggle("wb-mode-grid", grid);
  buttons.grid.hidden = multi || model.get("pool_kind") !== "image";
  const enter = enterAction(S, w.task());
  const keeping = !grid && enter.kind === "keep";
  // The live review item: s leaves it for later.
  const reviewing = multi ? !grid && !enter.entry && isReview(enter.item) : keeping && !enter.entry;
  const help = spans ? SPANS_HELP : boxes ? BOXES_HELP : multi ? (reviewing ? MULTI_REVIEW_HELP : MULTI_HELP)
    : keeping ? (reviewing ? REVIEW_HELP : REVIEW_BACK_HELP) : SINGLE_HELP;
  els.help.textContent = grid ? GRID_HELP : help + (buttons.grid.hidden ? "" : " · g: grid");
  // A review item's Enter keeps its label and s leaves it for later: the buttons say so.
  buttons.accept.querySelector(".wb-button-label").textContent = keeping ? "keep" : (multi ? "save" : "accept");
  buttons.accept.title = spans ? SAVE_SPANS_TITLE : boxes ? SAVE_BOXES_TITLE : multi ? SAVE_TITLE : ACCEPT_TITLE;
  // Spans: ←/→ move the caret in the text, so ↑/↓ walk back and forward.
  buttons.back.querySelector(".wb-kbd").textContent = spans ? "↑" : "←";
  buttons.forward.querySelector(".wb-kbd").textContent = spans ? "↓" : "→";
  buttons.skip.querySelector(".wb-button-label").textContent = reviewing ? "later" : "skip";
  els.main.hidden = grid;
  els.grid.hidden = !grid;
  buttons.back.disabled = grid || S.history.length === 0 || S.view === 0;
  buttons.forward.disabled = grid || S.view === null;
  if (grid) w.grid.draw();
  else w.single.draw(enter);
  drawStatus(S, model, els);
}

export default { render };
