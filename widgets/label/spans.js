// label/spans.js: text spans, on the single-item screen (a session whose task is "spans").
//
// The item's text is drawn as text nodes, its spans over it as <mark> elements whose text is
// the text they cover (the label is a CSS tag, not text, so the text box's textContent is the
// item's text exactly); the spans start as the item's own (walked back to, or under review),
// else the model's (pre-annotated), else none: spanEditOf() in label/state.js.
//
// Selecting: drag over words with the mouse, or move a caret over the tokens with ←/→ and
// extend a selection with Shift+←/→; either way the selection covers whole tokens (the
// kernel sends each item's tokens, so a word is what it is in Python). A class key gives the
// selection that label (a new span; the caret on a word alone: that word). A click on a span,
// or the caret on it, chooses it: a class key relabels it, Del/⌫ deletes it. Spans may not
// overlap unless the pool says so (the `overlapping` trait): a selection over a span is refused
// with a word in the status line. Enter saves the spans (enterAction), [] included; ↑/↓ walk
// back (←/→ move the caret here). Every offset is in UTF-16 units, as the browser counts: the
// kernel converts them to code points.

const SPANS_HELP = "drag over words, or ←/→ (Shift: extend), to select · number keys: label the "
  + "selection, or relabel the span chosen · Del/⌫: delete the span chosen · Esc: clear · "
  + "Enter: save the spans · s: skip · z: undo · ↑/↓: fix earlier labels";
const SPAN_COLOURS = 8;  // .wb-span[data-color="0".."7"] in label.css

function spansMode(w) {
  const { S, model, els } = w;

  function inView() {
    const entry = S.view === null ? null : S.history[S.view];
    return entry ? entry.item : S.current;
  }
  const tokensOf = (item) => (item && Array.isArray(item.tokens) ? item.tokens : []);
  const names = () => model.get("class_names");
  const eq = (a, b) => !!a && !!b && a[0] === b[0] && a[1] === b[1] && a[2] === b[2];
  const quote = (item, a, b) => `"${String(item.text || "").slice(a, b)}"`;

  // The tokens selected (from the anchor to the caret), as [first, last] token indices.
  function selected(edit) {
    if (edit.anchor === null || edit.caret === null) return null;
    return [Math.min(edit.anchor, edit.caret), Math.max(edit.anchor, edit.caret)];
  }

  // The first span (in text order) over token `i`.
  function spanAt(edit, item, i) {
    const t = tokensOf(item)[i];
    return t ? edit.list.find((s) => s[0] < t[1] && t[0] < s[1]) || null : null;
  }

  function tokenRange(item, a, b) {
    const inside = [];
    tokensOf(item).forEach((t, i) => { if (t[0] < b && a < t[1]) inside.push(i); });
    return inside.length ? [inside[0], inside[inside.length - 1]] : null;
  }

  function edited(edit, list, chosen) {
    edit.list = sortSpans(list, names());
    edit.touched = true;
    edit.chosen = chosen;
    edit.anchor = null;
  }

  function say(text) { S.flash = text; w.draw(); }

  // -- actions ------------------------------------------------------------------------------
  // A class key: the selection becomes a span with that label; the span chosen is relabeled.
  function assign(label) {
    const item = inView();
    if (!item || typeof item.text !== "string") return;
    if (S.flash) S.flash = "";
    const edit = spanEditOf(S);
    let range = selected(edit);
    if (!range && edit.chosen) { relabel(edit, edit.chosen, label); return; }
    if (!range && edit.caret !== null) range = [edit.caret, edit.caret];
    const toks = tokensOf(item);
    if (!range || !toks[range[0]] || !toks[range[1]]) {
      say("select words first: drag over them, or move the caret with ←/→ (Shift+←/→ selects more)");
      return;
    }
    const start = toks[range[0]][0], end = toks[range[1]][1];
    const overlapping = !!model.get("overlapping");
    const same = edit.list.find((s) => s[0] === start && s[1] === end);
    if (same && (same[2] === label || !overlapping)) { relabel(edit, same, label); return; }
    const clash = overlapping ? null : edit.list.find((s) => s[0] < end && start < s[1]);
    if (clash) {
      say(`refused: ${quote(item, start, end)} overlaps the ${clash[2]} span ${quote(item, clash[0], clash[1])}, `
        + "and this pool's spans may not overlap (choose that span and press Del first)");
      return;
    }
    const span = [start, end, label];
    edited(edit, [...edit.list, span], span);
    edit.caret = range[1];
    w.draw();
  }

  function relabel(edit, span, label) {
    if (span[2] === label) { edit.chosen = span; edit.anchor = null; w.draw(); return; }
    const now = [span[0], span[1], label];
    if (edit.list.some((s) => eq(s, now))) { say(`that text is marked ${label} already`); return; }
    edited(edit, edit.list.map((s) => (eq(s, span) ? now : s)), now);
    w.draw();
  }

  // Del/⌫: the span chosen goes.
  function remove() {
    const item = inView();
    if (!item) return;
    const edit = spanEditOf(S);
    const target = edit.chosen && edit.list.find((s) => eq(s, edit.chosen));
    if (!target) {
      say("no span chosen: click a span, or move the caret onto it with ←/→, then press Del");
      return;
    }
    edited(edit, edit.list.filter((s) => !eq(s, target)), null);
    w.draw();
  }

  // ←/→ move the caret a token (the first press shows it); with Shift they extend a selection.
  function move(step, extend) {
    const item = inView();
    const n = tokensOf(item).length;
    if (!n) return;
    if (S.flash) S.flash = "";
    const edit = spanEditOf(S);
    const from = edit.caret;
    const caret = from === null ? (step > 0 ? 0 : n - 1) : Math.max(0, Math.min(n - 1, from + step));
    if (extend && edit.anchor === null) edit.anchor = from === null ? caret : from;
    if (!extend) edit.anchor = null;
    edit.caret = caret;
    edit.chosen = extend ? null : spanAt(edit, item, caret);
    w.draw();
  }

  function clear() {
    S.flash = "";
    const edit = spanEditOf(S);
    edit.anchor = null;
    edit.chosen = null;
    edit.caret = null;
    w.draw();
  }

  // -- the mouse ----------------------------------------------------------------------------
  // Where a DOM position falls in the text box, in UTF-16 units: the length of the text before
  // it (the box's text is the item's text, nothing else).
  function offsetIn(box, node, offset) {
    const r = document.createRange();
    r.setStart(box, 0);
    r.setEnd(node, offset);
    return r.toString().length;
  }

  // The browser's selection, clipped to the box: [start, end) in UTF-16 units, or null.
  function selectionIn(box) {
    const sel = window.getSelection();
    if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
    const range = sel.getRangeAt(0);
    const all = document.createRange();
    all.selectNodeContents(box);
    if (range.compareBoundaryPoints(Range.END_TO_START, all) >= 0
        || range.compareBoundaryPoints(Range.START_TO_END, all) <= 0) return null;  // outside it
    const before = range.compareBoundaryPoints(Range.START_TO_START, all) < 0;
    const after = range.compareBoundaryPoints(Range.END_TO_END, all) > 0;
    const a = before ? 0 : offsetIn(box, range.startContainer, range.startOffset);
    const b = after ? box.textContent.length : offsetIn(box, range.endContainer, range.endOffset);
    return a < b ? [a, b] : null;
  }

  // A drag ends anywhere in the widget (past the text's end, say): listened for on all of it.
  function onMouseUp(e) {
    const box = els.item.querySelector(".wb-spans-text");
    const item = inView();
    if (!w.isSpans() || w.isGrid() || !box || !item || w.view.drawnItem !== item) return;
    const edit = spanEditOf(S);
    const range = selectionIn(box);
    if (S.flash) S.flash = "";
    if (range) {                                 // a drag: the words it touches, whole
      window.getSelection().removeAllRanges();
      const toks = tokenRange(item, range[0], range[1]);
      if (!toks) { w.draw(); return; }
      edit.anchor = toks[0];
      edit.caret = toks[1];
      edit.chosen = null;
      w.draw();
      return;
    }
    const target = e.target instanceof Element ? e.target : null;
    const mark = target && target.closest(".wb-span");
    if (mark && box.contains(mark)) {            // a click on a span chooses it
      const span = edit.list[Number(mark.dataset.span)];
      if (!span) return;
      edit.chosen = span;
      edit.anchor = null;
      const toks = tokenRange(item, span[0], span[1]);
      edit.caret = toks ? toks[0] : edit.caret;
      w.draw();
      return;
    }
    const tok = target && target.closest(".wb-tok");
    if (tok && box.contains(tok)) {              // a click on a word puts the caret there
      edit.caret = Number(tok.dataset.tok);
      edit.anchor = null;
      edit.chosen = null;
      w.draw();
    }
  }

  // -- drawing ------------------------------------------------------------------------------
  // The item's text box (drawn once per item); paint() fills it.
  function textBox() {
    const box = h("div", "wb-content wb-spans-text");
    box.setAttribute("aria-label", "the text: select words to mark them");
    return box;
  }

  // The text, cut where a token or a span begins or ends: tokens are <span class="wb-tok">,
  // what lies between them plain text nodes, and each span a <mark> around what it covers
  // (nested spans nest; spans that cross are drawn in pieces, the tag on the last).
  function paint(item) {
    const box = els.item.querySelector(".wb-spans-text");
    if (!box || typeof item.text !== "string") return;
    const edit = spanEditOf(S);
    const sel = selected(edit);
    const picture = JSON.stringify([edit.list, edit.caret, sel, edit.chosen]);
    if (box.wbPainted === picture) return;       // a redraw must not undo a drag in progress
    box.wbPainted = picture;
    box.replaceChildren();
    const text = item.text, toks = tokensOf(item), labels = names();
    const cuts = new Set([0, text.length]);
    for (const [a, b] of [...toks, ...edit.list]) { cuts.add(a); cuts.add(b); }
    const points = [...cuts].filter((x) => x >= 0 && x <= text.length).sort((a, b) => a - b);
    const order = edit.list.map((s, i) => ({ s, i }))
      .sort((x, y) => x.s[0] - y.s[0] || y.s[1] - x.s[1] || x.i - y.i);
    const open = [];                             // [{o, el}] from the outside in
    const last = new Map();
    let t = 0;
    for (let k = 0; k + 1 < points.length; k++) {
      const p = points[k], q = points[k + 1];
      const want = order.filter((o) => o.s[0] <= p && q <= o.s[1]);
      let common = 0;
      while (common < open.length && common < want.length && open[common].o === want[common]) common++;
      open.length = common;
      for (const o of want.slice(common)) {
        const el = h("mark", "wb-span");
        el.dataset.span = String(o.i);
        el.dataset.label = o.s[2];
        el.dataset.color = String(Math.max(0, labels.indexOf(o.s[2])) % SPAN_COLOURS);
        el.title = `${o.s[2]}: ${text.slice(o.s[0], o.s[1])} (click to choose)`;
        el.classList.toggle("wb-span-chosen", eq(o.s, edit.chosen));
        (open.length ? open[open.length - 1].el : box).appendChild(el);
        open.push({ o, el });
        last.set(o.i, el);
      }
      const parent = open.length ? open[open.length - 1].el : box;
      while (t < toks.length && toks[t][1] <= p) t++;
      if (t < toks.length && toks[t][0] <= p && q <= toks[t][1]) {
        const tok = h("span", "wb-tok", text.slice(p, q));
        tok.dataset.tok = String(t);
        tok.classList.toggle("wb-tok-selected", !!sel && sel[0] <= t && t <= sel[1]);
        tok.classList.toggle("wb-tok-caret", t === edit.caret);
        parent.appendChild(tok);
      } else {
        parent.appendChild(document.createTextNode(text.slice(p, q)));
      }
    }
    for (const el of last.values()) el.classList.add("wb-span-last");  // the label's tag
  }

  // What the selection or the span chosen is, and what a key would do with it.
  function stateLine(item) {
    const edit = spanEditOf(S);
    const sel = selected(edit);
    const toks = tokensOf(item);
    if (sel && toks[sel[0]] && toks[sel[1]]) {
      return `selected ${quote(item, toks[sel[0]][0], toks[sel[1]][1])}: a number key marks it`;
    }
    const chosen = edit.chosen && edit.list.find((s) => eq(s, edit.chosen));
    if (chosen) return `${chosen[2]} span ${quote(item, chosen[0], chosen[1])} chosen: a number key relabels it, Del deletes it`;
    if (edit.caret !== null && toks[edit.caret]) {
      return `caret on ${quote(item, toks[edit.caret][0], toks[edit.caret][1])}: a number key marks it, Shift+←/→ selects more`;
    }
    return "";
  }

  // The class a span chosen has: shown as its pressed class button.
  function pressed() {
    const edit = spanEditOf(S);
    const chosen = edit.chosen && edit.list.find((s) => eq(s, edit.chosen));
    return chosen ? [chosen[2]] : [];
  }

  function onKey(e) {
    switch (e.key) {
      case "ArrowLeft": move(-1, e.shiftKey); return true;
      case "ArrowRight": move(1, e.shiftKey); return true;
      case "ArrowUp": w.act.walk(-1); return true;
      case "ArrowDown": w.act.walk(1); return true;
      case "Delete": case "Backspace": remove(); return true;
      case "Escape": clear(); return true;
      default: return false;
    }
  }

  els.root.addEventListener("mouseup", onMouseUp);

  return { assign, remove, move, clear, onKey, textBox, paint, stateLine, pressed };
}
