// label/keys.js: the keyboard, for every mode.
//
// JupyterLab's notebook shortcuts fire for any focused element, so the handler stops every
// plain key it owns and every plain letter from reaching the notebook; Ctrl/Cmd/Alt
// combinations and Shift+Enter pass through untouched.
//   single item:  1-9, 0 class · Enter accept the suggestion (a review item: keep the label
//                 shown, see enterAction) · s skip · z/Backspace undo
//                 ←/→ walk back/forward to fix a label · g grid (image pools)
//                 multi-label: 1-9, 0 toggle a class · Enter save the classes selected
//                 (g only says the grid labels one class per item)
//                 spans: 1-9, 0 mark the words selected (or relabel the span chosen) ·
//                 ←/→ move the caret a word, Shift+←/→ extend the selection · Del/⌫ delete
//                 the span chosen · Esc clear · ↑/↓ walk back/forward · z undo (spans.js)
//                 boxes: 1-9, 0 class of the box selected (none: of the next box) · Tab/
//                 Shift+Tab select a box · arrows move it (Shift: 10 px), Alt/Ctrl+arrows
//                 resize it · n new box · Del/⌫ delete it · Esc deselect · ←/→ with no box
//                 selected walk back/forward · z undo (boxes.js)
//   grid:         1-9, 0 label the highlighted thumbnail (then the next is highlighted)
//                 Shift+1-9/0 that class for every thumbnail still showing "?"
//                 s skip the highlighted · arrows/click move · z undo · Enter save the page

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];
const OWNED = new Set(["Enter", "Backspace", "ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown",
  "Escape", "Delete", "Home", "End", "PageUp", "PageDown", " "]);

// Starts listening; returns the function that stops.
function listenToKeys(w) {
  const { S, model, els, act } = w;

  // True when the key is the widget's (then nothing else sees it).
  function handle(e) {
    const key = e.key;
    const grid = w.isGrid();
    // Shift+digit arrives as "!", "@", ... depending on the layout: read the physical key.
    const digit = KEYS.includes(key) ? key : (e.shiftKey && /^Digit\d$/.test(e.code || "") ? e.code.slice(5) : null);
    if (digit !== null) {
      const i = (model.get("class_keys") || []).indexOf(digit);
      if (i >= 0) act.pick(i, e.shiftKey);
      return true;
    }
    if (!grid && w.isSpans() && w.spans.onKey(e)) return true;
    if (!grid && w.isBoxes() && w.boxes.onKey(e)) return true;
    switch (key) {
      case "Enter": act.accept(); return true;
      case "Backspace": case "z": case "Z": act.undo(); return true;
      case "s": case "S": act.skip(); return true;
      case "g": case "G": act.toggleGrid(); return true;
      case "ArrowLeft": if (grid) w.grid.move(-1); else act.walk(-1); return true;
      case "ArrowRight": if (grid) w.grid.move(1); else act.walk(1); return true;
      case "ArrowUp": if (grid) w.grid.move(-w.grid.columns()); return true;
      case "ArrowDown": if (grid) w.grid.move(w.grid.columns()); return true;
      case "Escape": return true;
      default: return false;
    }
  }

  function onKeydown(e) {
    const t = e.target;
    const field = t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT");
    // Boxes: Alt/Ctrl+arrows resize the box selected (Alt+← would go back a page otherwise).
    if ((e.ctrlKey || e.altKey) && !e.metaKey && e.key.startsWith("Arrow") && !field && w.isBoxes()
        && !w.isGrid()) {
      w.boxes.onKey(e);
      e.preventDefault();
      e.stopPropagation();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;       // Ctrl+S, Cmd+C ... stay JupyterLab's
    if (e.key === "Enter" && e.shiftKey) return;           // Shift+Enter runs the cell as usual
    if (field) {
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
  return () => window.removeEventListener("keydown", onWindowKeydown, true);
}
