// label/grid.js: the grid mode (image pools): a page of thumbnails labeled at once.
//
// Each thumbnail shows what it will be saved as (gridLabel() in label/state.js): a person's
// choice, else the model's suggestion, else "?" (stays in the queue). A number labels the
// highlighted thumbnail and highlights the next; Shift+number fills every "?"; s marks the
// highlighted one to skip; Enter saves the page as one action (one undo). Choices not saved
// yet have their own undo stack (`S.grid.edits`), which z empties first.

const GRID_HELP = "number: label the highlighted thumbnail · Shift+number: that class for every ? · "
  + "s: skip it · arrows/click: move · z: undo · Enter: save the page · g: back";

function gridMode(w) {
  const { S, model, els, view } = w;

  function requestPage() {
    S.grid.loading = true;
    w.kernel.send({ type: "page", n: model.get("grid_size") }, null);
  }

  // Leave the page: the kernel may serve its items to other sessions again. Returns how many
  // choices were made on it (and are dropped).
  function dropPage() {
    const released = S.grid.page.map((x) => x.item_id)
      .filter((id) => !S.done.has(id) && !holdingIds(S).includes(id));
    if (released.length) model.send({ type: "holding", item_ids: [], dropped: released });
    const chosen = S.grid.edits.length;
    S.grid = newGrid();
    return chosen;
  }

  function toggle() {
    if (w.isBoxes()) {                            // an image pool, but a label is its boxes
      S.flash = "the grid labels one class per item; here an image's label is its boxes";
      w.draw();
      return;
    }
    if (w.isMulti()) {                            // a thumbnail's badge holds one class
      S.flash = "the grid labels one class per item; here number keys toggle classes and Enter saves them";
      w.draw();
      return;
    }
    if (model.get("pool_kind") !== "image") return;
    const grid = !w.isGrid();
    if (!grid && dropPage()) S.flash = "left the grid: the unsaved page's choices were dropped";
    model.set("mode", grid ? "grid" : "single");
    model.save_changes();
    if (grid) requestPage();
    w.draw();
  }

  function editChoices(ids, value) {
    const prev = new Map(ids.map((id) => [id, S.grid.choices.get(id) || null]));
    S.grid.edits.push({ prev, cursor: S.grid.cursor });
    for (const id of ids) {
      if (value) S.grid.choices.set(id, value); else S.grid.choices.delete(id);
    }
  }

  // z on the grid: take back the last choice not saved yet. False when there is none.
  function undoEdit() {
    if (!S.grid.edits.length) return false;
    const edit = S.grid.edits.pop();
    for (const [id, prev] of edit.prev) {
      if (prev) S.grid.choices.set(id, prev); else S.grid.choices.delete(id);
    }
    S.grid.cursor = edit.cursor;
    w.draw();
    return true;
  }

  function pick(name, fill) {
    const grid = S.grid;
    if (!grid.page.length) return;
    if (fill) {                                   // only thumbnails with no label of any kind
      const empty = grid.page.filter((x) => gridLabel(grid, x).from === "none").map((x) => x.item_id);
      if (!empty.length) { S.flash = "no thumbnail shows ? on this page: nothing to fill"; w.draw(); return; }
      editChoices(empty, { label: name, from: "fill" });
    } else {
      editChoices([grid.page[grid.cursor].item_id], { label: name, from: "key" });
      grid.cursor = Math.min(grid.cursor + 1, grid.page.length - 1);
    }
    w.draw();
  }

  function skip() {
    const grid = S.grid;
    const item = grid.page[grid.cursor];
    if (!item) return;
    const isSkip = (grid.choices.get(item.item_id) || {}).label === "skip";
    editChoices([item.item_id], isSkip ? null : { label: "skip", from: "key" });
    grid.cursor = Math.min(grid.cursor + 1, grid.page.length - 1);
    w.draw();
  }

  function move(step) {
    const grid = S.grid;
    if (!grid.page.length) return;
    grid.cursor = Math.max(0, Math.min(grid.page.length - 1, grid.cursor + step));
    w.draw();
  }

  // Thumbnails per row, as laid out now (↑/↓ move by a row).
  function columns() {
    const cells = els.grid.querySelectorAll(".wb-thumb");
    if (cells.length < 2) return 1;
    const top = cells[0].offsetTop;
    let n = 0;
    for (const c of cells) { if (c.offsetTop !== top) break; n += 1; }
    return Math.max(1, n);
  }

  // Enter: every thumbnail not "?" is saved as shown, as one action, and the next page comes.
  function save() {
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
      w.draw();
      return;
    }
    for (const entry of entries) record(S, entry);
    const action = { kind: "page", eventIds, entries };
    S.actions.push(action);
    S.grid = newGrid({ loading: true });
    w.kernel.send({ type: "label_page", labels, skips, n: model.get("grid_size") },
      { kind: "page", n: entries.length, action });
    w.draw();
  }

  // A click on a thumbnail highlights it; the keys keep working.
  function select(i) {
    S.grid.cursor = i;
    els.root.focus({ preventScroll: true });
    w.draw();
  }

  function draw() {
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
      cell.addEventListener("click", () => select(i));
      cells.appendChild(cell);
    });
    els.grid.appendChild(cells);
    const names = model.get("class_names");
    const at = grid.page[grid.cursor];
    markClassButtons(view.classButtons, names, { given: at ? gridLabel(grid, at).label : null });
  }

  return { requestPage, toggle, undoEdit, pick, skip, move, columns, save, draw };
}
