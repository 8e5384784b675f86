// label/undo.js: the undo stack, for every mode.
//
// Each action sent to the kernel ("label", "skip", "relabel" of an earlier item, a grid
// "page") goes on `S.actions` with the event ids minted for it. z pops the last one, puts the
// screen back as it was and asks the kernel to retract exactly those events; an action the
// kernel refused is taken off the stack and put back the same way.

function undoStack(w) {
  const { S } = w;

  // z takes back the last thing done in this view: a choice on the unsaved grid page, else the
  // last action sent to the kernel, which is asked to retract exactly that action's events.
  function undo() {
    if (w.isGrid() && w.grid.undoEdit()) return;
    const action = S.actions.pop();
    if (!action) {
      S.flash = "nothing to undo in this view (walk back with ← to change an earlier label)";
      w.draw();
      return;
    }
    if (action.kind === "relabel") {
      Object.assign(action.entry, action.prev);
    } else if (action.kind === "page") {
      for (const entry of action.entries) unrecord(S, entry);
    } else {
      unrecord(S, action.entry);
      if (!w.isGrid()) {
        if (S.current) S.buffer.unshift(S.current);
        S.current = action.entry.item;
      }
    }
    S.view = null;
    S.selection = null;                        // multi-label: the item shows its own label again
    S.spans = null;                            // spans: the same
    S.boxes = null;                            // boxes: the same
    w.kernel.send({ type: "undo", event_ids: action.eventIds },
      { kind: "undo", n: action.eventIds.length, action });
    w.draw();
  }

  // A label or skip the kernel refused comes back on screen, so nothing is lost silently.
  function restore(action) {
    S.actions = S.actions.filter((a) => a !== action);
    S.selection = null;
    S.spans = null;
    S.boxes = null;
    if (action.kind === "relabel") { Object.assign(action.entry, action.prev); return; }
    if (action.kind === "page") {
      for (const entry of action.entries) unrecord(S, entry);
      return;
    }
    if (action.kind !== "label" && action.kind !== "skip") return;
    unrecord(S, action.entry);
    if (w.isGrid()) return;
    if (S.current) S.buffer.unshift(S.current);
    S.current = action.entry.item;
    S.view = null;
  }

  return { undo, restore };
}
