// label/state.js: the widget's own state, kept apart from the view.
//
// What is on screen, what is buffered behind it, what was done here (for walking back and for
// undo) and what is still on its way to the kernel. Every function in this part reads or
// updates that state and nothing else (no DOM, no model, no messages), so each rule, such as
// what Enter does or what a thumbnail will be saved as, is written once and drawn everywhere.

const HISTORY_LIMIT = 100;
const RETRAIN_FLASH = "retrain requested…";
const REVIEW_FLASH = "finding suspected mislabels…";

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
    selection: null,     // multi-label: {key, names} toggled on the item in view (selectionOf)
    spans: null,         // spans: the edit of the item in view (spanEditOf)
    boxes: null,         // boxes: the edit of the image in view (boxEditOf)
    boxClass: null,      // boxes: the class the next box drawn takes (the last class key; null: the first)
    grid: newGrid(),
    flash: "",
    waiting: true,       // no reply to "hello" yet
  };
}

// The grid's page: the thumbnails, the highlighted one, the choices made on it (not saved yet)
// and the undo stack of those choices.
function newGrid({ page = [], loading = false } = {}) {
  return { page, cursor: 0, choices: new Map(), edits: [], loading };
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

// A review item: shown again because models that never saw its label doubt it.
function isReview(item) {
  return !!item && item.strategy === "review" && item.given !== null && item.given !== undefined;
}

// A label as the screen shows it: a class name, or a multi-label set written as the store
// writes it (["3", "odd"]; [] when no class applies).
function labelText(label) {
  if (Array.isArray(label) && label.some(Array.isArray)) {
    return label.every((b) => Array.isArray(b) && b.length === 5) ? boxesText(label) : spansText(label);
  }
  return Array.isArray(label) ? `[${label.map((n) => JSON.stringify(String(n))).join(", ")}]` : String(label);
}

function sameSet(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b)) return false;
  const set = new Set(a);
  return new Set(b).size === set.size && b.every((x) => set.has(x));
}

// Multi-label: which item in which place the selection belongs to.
function viewKey(S) {
  if (S.view === null) return `live:${S.current ? S.current.item_id : ""}`;
  return `back:${S.view}:${S.history[S.view].item.item_id}`;
}

// Multi-label: the classes selected for the item in view, in class order, and whether the
// person toggled any. Untouched, it is the label the item has (walked back to: its entry's;
// a review item: the label under review), else the model's suggested set, else none.
function selectionOf(S) {
  if (S.selection && S.selection.key === viewKey(S)) return { names: S.selection.names, touched: true };
  const entry = S.view === null ? null : S.history[S.view];
  const item = entry ? entry.item : S.current;
  let names = [];
  if (entry && !entry.skipped && Array.isArray(entry.label)) names = entry.label;
  else if (!entry && isReview(item) && Array.isArray(item.given)) names = item.given;
  else if (item && Array.isArray(item.suggestion)) names = item.suggestion;
  return { names: [...names], touched: false };
}

// Spans: a label is a list of [start, end, label], offsets in UTF-16 units (what the kernel
// sends and reads back; it converts to code points). Ordered as the store orders them.
function sameSpans(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  const key = (s) => `${s[0]}:${s[1]}:${s[2]}`;
  const set = new Set(a.map(key));
  return b.every((s) => set.has(key(s)));
}

function sortSpans(list, names) {
  const rank = (label) => { const i = names.indexOf(label); return i < 0 ? names.length : i; };
  return [...list].sort((x, y) => x[0] - y[0] || x[1] - y[1] || rank(x[2]) - rank(y[2]));
}

// The spans a label names, in a few words: "3 spans: PER, ORG, LOC", "no spans".
function spansText(list) {
  if (!Array.isArray(list) || !list.length) return "no spans";
  return `${list.length} span${list.length === 1 ? "" : "s"}: ${list.map((s) => s[2]).join(", ")}`;
}

// Spans: the edit of the item in view. Untouched, its spans are the label the item has (walked
// back to: its entry's; a review item: the label under review), else the model's suggestion
// (pre-annotated), else none. Beside them: the caret (a token index), the anchor of a selection
// being extended from the keyboard or made with the mouse (null: none; the selection is the
// tokens from the anchor to the caret), and the span chosen (to relabel or delete), by value.
function spanEditOf(S) {
  const key = viewKey(S);
  const kept = S.spans && S.spans.key === key ? S.spans : null;
  const edit = kept || { key, list: null, touched: false, caret: null, anchor: null, chosen: null };
  if (!edit.touched) {
    const entry = S.view === null ? null : S.history[S.view];
    const item = entry ? entry.item : S.current;
    let list = [];
    if (entry && !entry.skipped && Array.isArray(entry.label)) list = entry.label;
    else if (!entry && isReview(item) && Array.isArray(item.given)) list = item.given;
    else if (item && Array.isArray(item.suggestion)) list = item.suggestion;
    edit.list = list.map((s) => [...s]);
  }
  S.spans = edit;
  return edit;
}

// Boxes: a label is a list of [x, y, w, h, label] in image pixels (x, y the top-left corner),
// what the kernel sends and reads back; it puts them in the store's order. The same boxes in
// any order are the same label.
function boxKey(b) { return `${b[0]}:${b[1]}:${b[2]}:${b[3]}:${b[4]}`; }

function sameBoxes(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
  const set = new Set(a.map(boxKey));
  return b.every((x) => set.has(boxKey(x)));
}

// The boxes a label names, in a few words: "2 boxes: 3, 7", "no boxes".
function boxesText(list) {
  if (!Array.isArray(list) || !list.length) return "no boxes";
  return `${list.length} box${list.length === 1 ? "" : "es"}: ${list.map((b) => b[4]).join(", ")}`;
}

// Boxes: the edit of the image in view, as spanEditOf for spans: untouched, its boxes are the
// label the image has (walked back to: its entry's; a review item: the label under review),
// else the model's (pre-annotated), else none. Beside them the box selected (an index into
// `list`, null: none), which the keys move, resize, relabel or delete.
function boxEditOf(S) {
  const key = viewKey(S);
  const kept = S.boxes && S.boxes.key === key ? S.boxes : null;
  const edit = kept || { key, list: null, touched: false, selected: null };
  if (!edit.touched) {
    const entry = S.view === null ? null : S.history[S.view];
    const item = entry ? entry.item : S.current;
    let list = [];
    if (entry && !entry.skipped && Array.isArray(entry.label)) list = entry.label;
    else if (!entry && isReview(item) && Array.isArray(item.given)) list = item.given;
    else if (item && Array.isArray(item.suggestion)) list = item.suggestion;
    edit.list = list.map((b) => [...b]);
    if (edit.selected !== null && edit.selected >= edit.list.length) edit.selected = null;
  }
  S.boxes = edit;
  return edit;
}

// What Enter does on the single-item screen, worked out in one place from the state, so that
// the hint, the Enter button, the help line and accept() can never disagree:
//   keep    a review item: Enter keeps `label`, the label the screen shows it with (walked
//           back: the label its entry has now). `write`: a confirm event is needed (the live
//           item, or one walked back to that was left for later); otherwise the label stands
//           already (kept or relabeled before) and Enter only moves on.
//   accept  Enter labels the item with the model's suggestion, `label`.
//   none    no suggestion: Enter only says so.
// In a spans session (`multi` is "spans") the same, with the spans of the edit (spanEditOf) for
// the selection: Enter saves them, [] included (nothing to mark), or keeps what the item has.
// In a boxes session (`multi` is "boxes") the same with the image's boxes (boxEditOf): the
// model's, pre-annotated and untouched, are saved as the suggestion accepted.
// In a multi-label session (`multi`) Enter saves the selection (selectionOf):
//   save    Enter labels the item (walked back: relabels it) with the set `label`; `source`
//           "suggestion" when that is the model's suggested set, untouched.
//   keep    the selection is the label the item has: a review item's Enter keeps it, as
//           above; walked back, Enter moves on (`write`: only for a review left for later).
function enterAction(S, multi = false) {
  const entry = S.view === null ? null : S.history[S.view];
  const item = entry ? entry.item : S.current;
  if (!item) return { kind: "none", item: null, entry };
  if (multi === "spans") {
    const edit = spanEditOf(S);
    return saveAction(item, entry, { names: edit.list, touched: edit.touched }, sameSpans);
  }
  if (multi === "boxes") {
    const edit = boxEditOf(S);
    return saveAction(item, entry, { names: edit.list, touched: edit.touched }, sameBoxes);
  }
  if (multi) return saveAction(item, entry, selectionOf(S));
  if (isReview(item)) {
    if (!entry) return { kind: "keep", item, entry, label: item.given, write: true };
    return { kind: "keep", item, entry, label: entry.label, write: !!entry.deferred };
  }
  if (!hasSuggestion(item)) return { kind: "none", item, entry };
  return { kind: "accept", item, entry, label: item.suggestion };
}

function saveAction(item, entry, { names, touched }, same = sameSet) {
  const has = entry ? (entry.skipped ? null : entry.label) : (isReview(item) ? item.given : null);
  if (same(names, has)) return { kind: "keep", item, entry, label: has, write: entry ? !!entry.deferred : true };
  const suggested = !touched && hasSuggestion(item) && same(names, item.suggestion);
  return { kind: "save", item, entry, label: names, source: suggested ? "suggestion" : "human" };
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

// Whether the view holds an item: acted on here, on screen or buffered.
function held(S, id) {
  if (S.done.has(id)) return true;
  if (S.current && S.current.item_id === id) return true;
  return S.buffer.some((x) => x.item_id === id);
}

// The ids on screen and buffered, in order: what the view tells the kernel it holds.
function holdingIds(S) {
  return [S.current, ...S.buffer].filter(Boolean).map((x) => x.item_id);
}

// An item done with here (labeled, skipped or left for later): walking back can reach it.
function record(S, entry) {
  S.history.push(entry);
  if (S.history.length > HISTORY_LIMIT) S.history.shift();
  S.done.add(entry.item.item_id);
}

function unrecord(S, entry) {
  const at = S.history.lastIndexOf(entry);
  if (at >= 0) S.history.splice(at, 1);
  S.done.delete(entry.item.item_id);
  if (S.view !== null && S.view >= S.history.length) S.view = null;
}

// Labels sent and not acknowledged yet (the kernel acknowledges once they are durable).
function unsaved(S) {
  let n = 0;
  for (const pending of S.pending.values()) n += pending.n || 1;
  return n;
}
