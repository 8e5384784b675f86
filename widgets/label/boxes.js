// label/boxes.js: image boxes, on the single-item screen (a session whose task is "boxes").
//
// The image is drawn as image items are (a data URL, scaled up by a whole factor, pixelated
// when small) with an SVG over it whose viewBox is the image's own pixels, so every box is
// drawn, and every pointer read, in image pixels: what the kernel sends and stores. The boxes
// start as the image's own (walked back to, under review), else the model's (pre-annotated),
// else none: boxEditOf() in label/state.js. Class names are SVG text (textContent), never markup.
//
// Mouse: a drag on the image where no box is draws a new box (it takes the current class: the
// last class key pressed, else the first class); a drag on a box moves it; a drag on a corner
// of the box selected resizes it; a click selects a box (on the image: none). Boxes snap to
// whole pixels and stay inside the image.
// Keys: a class key sets the class of the box selected (none selected: of the next box);
// Tab/Shift+Tab select the next/previous box; arrows move the box selected by 1 px (Shift:
// 10), Alt/Ctrl+arrows move its right/bottom edge; n adds a box in the image's centre (no
// mouse needed); Del/⌫ delete the box selected; Esc deselects; Enter saves the boxes
// (enterAction: the model's, untouched, are accepted as its suggestion); ←/→ walk back and
// forward when no box is selected.

const BOXES_HELP = "drag on the image: new box · drag a box: move · drag a corner: resize · number "
  + "keys: class of the box selected (none: of the next box) · Tab: select next · arrows: move "
  + "(Shift: 10 px) · Alt/Ctrl+arrows: resize · n: new box · Del/⌫: delete · Esc: deselect · "
  + "Enter: save the boxes · s: skip · z: undo · ←/→ (no box selected): fix earlier labels";
const BOX_COLOURS = 8;          // .wb-box[data-color="0".."7"] in label.css
const SVG_NS = "http://www.w3.org/2000/svg";
const BOX_DISPLAY_PX = 384;     // a small image is scaled up by a whole factor to about this size
const BOX_DISPLAY_MAX_PX = 560; // and no wider than this
const BOX_HANDLE_PX = 9;        // a corner handle's size on screen
const BOX_TAG_PX = 13;          // a class name's size on screen
const BOX_DRAG_PX = 3;          // the pointer must move this far on screen to drag, not click

function boxesMode(w) {
  const { S, model, els } = w;
  let drag = null;  // a drag in progress: {kind: "draw" | "move" | "resize", ...}

  function inView() {
    const entry = S.view === null ? null : S.history[S.view];
    return entry ? entry.item : S.current;
  }
  const names = () => model.get("class_names");
  // The class a new box takes: the last class key pressed, else the first class.
  const current = () => (names().includes(S.boxClass) ? S.boxClass : names()[0]);
  const clamp = (v, lo, hi) => Math.min(Math.max(v, lo), hi);
  const round2 = (v) => Math.round(v * 100) / 100;  // the store keeps 2 decimals of a float
  const num = (v) => String(round2(v));

  // The image's size in pixels (the kernel's `width`, `height`); null when it has no image.
  function size(item) {
    if (!item || !item.render || item.render.kind !== "image") return null;
    const W = Number(item.width) || Number(item.render.width);
    const H = Number(item.height) || Number(item.render.height);
    return W > 0 && H > 0 ? [W, H] : null;
  }

  // Another box of the list exactly like `box` (the kernel refuses the same box twice): its index.
  function twin(list, box, except) {
    return list.findIndex((b, i) => i !== except && boxKey(b) === boxKey(box));
  }

  function edited(edit, list, selected) { Object.assign(edit, { list, selected, touched: true }); }

  function say(text) { S.flash = text; w.draw(); }

  // The box selected, or a word in the status line and null.
  function chosen(edit, what) {
    const box = edit.selected === null ? null : edit.list[edit.selected];
    if (!box) say(`no box selected: press Tab (or click a box) to select one, then ${what}`);
    return box || null;
  }

  // -- actions ------------------------------------------------------------------------------
  // A class key: the box selected takes the class; the next box drawn takes it too.
  function assign(label) {
    const item = inView();
    if (!size(item)) return;
    if (S.flash) S.flash = "";
    S.boxClass = label;
    const edit = boxEditOf(S);
    const i = edit.selected;
    if (i === null || !edit.list[i] || edit.list[i][4] === label) { w.draw(); return; }
    const now = [...edit.list[i].slice(0, 4), label];
    if (twin(edit.list, now, i) >= 0) { say(`a ${label} box is there already`); return; }
    edited(edit, edit.list.map((b, k) => (k === i ? now : b)), i);
    w.draw();
  }

  // n: a box a quarter of the image's size in its centre (a step aside when one is there).
  function addDefault() {
    const item = inView();
    const wh = size(item);
    if (!wh) return;
    if (S.flash) S.flash = "";
    const [W, H] = wh;
    const edit = boxEditOf(S);
    const bw = Math.max(1, Math.round(W / 4)), bh = Math.max(1, Math.round(H / 4));
    const box = [Math.floor((W - bw) / 2), Math.floor((H - bh) / 2), bw, bh, current()];
    for (let k = 0; k < 50 && twin(edit.list, box, null) >= 0; k++) {
      box[0] = (box[0] + 2) % (W - bw + 1);
      box[1] = (box[1] + 2) % (H - bh + 1);
    }
    if (twin(edit.list, box, null) >= 0) { say("no free place for a new box: move one first"); return; }
    edited(edit, [...edit.list, box], edit.list.length);
    w.draw();
  }

  // Arrows: the box selected moves by (dx, dy) pixels, inside the image.
  function nudge(dx, dy) {
    const [W, H] = size(inView()) || [0, 0];
    const edit = boxEditOf(S);
    const box = chosen(edit, "move it with the arrows");
    if (!box || !W) return;
    const now = [round2(clamp(box[0] + dx, 0, W - box[2])), round2(clamp(box[1] + dy, 0, H - box[3])),
      box[2], box[3], box[4]];
    put(edit, now);
  }

  // Alt/Ctrl+arrows: the right (←/→) or bottom (↑/↓) edge of the box selected moves.
  function grow(dw, dh) {
    const [W, H] = size(inView()) || [0, 0];
    const edit = boxEditOf(S);
    const box = chosen(edit, "resize it with Alt/Ctrl+arrows");
    if (!box || !W) return;
    const now = [box[0], box[1], round2(clamp(box[2] + dw, Math.min(1, box[2]), W - box[0])),
      round2(clamp(box[3] + dh, Math.min(1, box[3]), H - box[1])), box[4]];
    put(edit, now);
  }

  function put(edit, now) {
    if (S.flash) S.flash = "";
    if (twin(edit.list, now, edit.selected) >= 0) { say("a box of that class is there already"); return; }
    edited(edit, edit.list.map((b, k) => (k === edit.selected ? now : b)), edit.selected);
    w.draw();
  }

  // Tab / Shift+Tab: the next / previous box is selected.
  function cycle(step) {
    if (!size(inView())) return;
    if (S.flash) S.flash = "";
    const edit = boxEditOf(S);
    const n = edit.list.length;
    if (!n) { say("no boxes yet: drag on the image, or press n for a box in the centre"); return; }
    const from = edit.selected === null ? (step > 0 ? -1 : n) : edit.selected;
    edit.selected = (from + step + n) % n;
    w.draw();
  }

  // Del/⌫: the box selected goes.
  function remove() {
    if (!size(inView())) return;
    const edit = boxEditOf(S);
    if (!chosen(edit, "press Del to delete it")) return;
    if (S.flash) S.flash = "";
    edited(edit, edit.list.filter((_, k) => k !== edit.selected), null);
    w.draw();
  }

  function deselect() { S.flash = ""; boxEditOf(S).selected = null; w.draw(); }

  // -- the mouse ----------------------------------------------------------------------------
  // Where the pointer is, in image pixels, inside the image.
  function pointIn(svg, e, W, H) {
    const r = svg.getBoundingClientRect();
    return [clamp((e.clientX - r.left) * W / r.width, 0, W), clamp((e.clientY - r.top) * H / r.height, 0, H)];
  }

  function onPointerDown(e) {
    if (e.button !== 0) return;
    const svg = e.currentTarget;
    const item = inView();
    const wh = size(item);
    if (!wh || w.view.drawnItem !== item) return;
    e.preventDefault();                          // no text selection, no image drag
    els.root.focus({ preventScroll: true });     // the keys keep working after a drag
    if (S.flash) S.flash = "";
    const edit = boxEditOf(S);
    const target = e.target instanceof Element ? e.target : null;
    const handle = target && target.closest("[data-corner]");
    const body = target && target.closest("[data-box]");
    const from = pointIn(svg, e, ...wh);
    const base = { svg, key: edit.key, size: wh, from, at: [e.clientX, e.clientY], moved: false };
    if (handle && edit.list[edit.selected]) {
      drag = { ...base, kind: "resize", corner: handle.dataset.corner, start: [...edit.list[edit.selected]] };
    } else if (body && edit.list[Number(body.dataset.box)]) {
      edit.selected = Number(body.dataset.box);
      drag = { ...base, kind: "move", start: [...edit.list[edit.selected]] };
    } else {
      drag = { ...base, kind: "draw", to: from };
    }
    svg.setPointerCapture(e.pointerId);
    w.draw();
  }

  function onPointerMove(e) {
    if (!drag) return;
    const edit = boxEditOf(S);
    if (edit.key !== drag.key) { drag = null; return; }  // the screen moved on meanwhile
    if (!drag.moved && Math.hypot(e.clientX - drag.at[0], e.clientY - drag.at[1]) < BOX_DRAG_PX) return;
    drag.moved = true;
    const [W, H] = drag.size;
    const p = pointIn(drag.svg, e, W, H);
    const s = drag.start;
    if (drag.kind === "draw") {
      drag.to = p;
    } else if (drag.kind === "move") {          // by whole pixels, inside the image
      const dx = Math.round(p[0] - drag.from[0]), dy = Math.round(p[1] - drag.from[1]);
      edit.list[edit.selected] = [round2(clamp(s[0] + dx, 0, W - s[2])),
        round2(clamp(s[1] + dy, 0, H - s[3])), s[2], s[3], s[4]];
      edit.touched = true;
    } else {                                     // the corner follows the pointer, the opposite one stays
      const fx = drag.corner.includes("w") ? s[0] + s[2] : s[0];
      const fy = drag.corner.includes("n") ? s[1] + s[3] : s[1];
      const mx = Math.round(p[0]), my = Math.round(p[1]);
      edit.list[edit.selected] = [round2(Math.min(fx, mx)), round2(Math.min(fy, my)),
        round2(Math.max(1, Math.abs(fx - mx))), round2(Math.max(1, Math.abs(fy - my))), s[4]];
      const b = edit.list[edit.selected];        // at least a pixel, still inside the image
      b[0] = round2(clamp(b[0], 0, W - b[2]));
      b[1] = round2(clamp(b[1], 0, H - b[3]));
      edit.touched = true;
    }
    w.draw();
  }

  // The box a drawing drag makes: whole pixels from where it began to where it is.
  function drawn(d) {
    const x0 = Math.round(d.from[0]), y0 = Math.round(d.from[1]);
    const x1 = Math.round(d.to[0]), y1 = Math.round(d.to[1]);
    return [Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0), current()];
  }

  function onPointerUp() {
    if (!drag) return;
    const d = drag;
    drag = null;
    const edit = boxEditOf(S);
    if (edit.key !== d.key) { w.draw(); return; }
    if (d.kind === "draw") {
      const box = drawn(d);
      if (!d.moved || box[2] < 1 || box[3] < 1) {
        edit.selected = null;                    // a click on the image: nothing selected
      } else if (twin(edit.list, box, null) >= 0) {
        S.flash = `a ${box[4]} box is there already`;
      } else {
        edited(edit, [...edit.list, box], edit.list.length);
      }
    } else if (d.moved && twin(edit.list, edit.list[edit.selected], edit.selected) >= 0) {
      edit.list[edit.selected] = d.start;        // it would be another box's twin: back it goes
      S.flash = "a box of that class is there already";
    }
    w.draw();
  }

  // -- drawing ------------------------------------------------------------------------------
  function svgEl(tag, attrs = {}, className = null) {  // attributes only: data goes in as textContent
    const node = document.createElementNS(SVG_NS, tag);
    const all = className ? { ...attrs, class: className } : attrs;
    for (const [k, v] of Object.entries(all)) node.setAttribute(k, String(v));
    return node;
  }

  // The image with the SVG over it (drawn once per item; paint() fills the SVG). An item that
  // cannot be shown is drawn as any other is (its reason; s skips it).
  function stage(item) {
    const content = drawContent(item.render);
    const img = content.querySelector("img");
    const wh = size(item);
    if (!img || !wh) return content;
    const [W, H] = wh;
    const scale = Math.max(1, Math.floor(BOX_DISPLAY_PX / Math.max(W, H)));
    const width = Math.min(W * scale, BOX_DISPLAY_MAX_PX);
    const height = Math.round(width * H / W);
    content.classList.add("wb-boxes");
    const frame = h("div", "wb-boxes-stage");
    frame.style.width = `${width}px`;
    frame.style.height = `${height}px`;
    img.style.width = `${width}px`;
    img.style.height = `${height}px`;
    img.draggable = false;
    if (Math.max(W, H) <= 256) img.classList.add("wb-pixelated");
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", width, height,
      role: "img", "aria-label": "the image's boxes: drag to draw a box, drag a box to move it" },
    "wb-boxes-svg");
    svg.dataset.scale = String(width / W);
    svg.addEventListener("pointerdown", onPointerDown);
    svg.addEventListener("pointermove", onPointerMove);
    svg.addEventListener("pointerup", onPointerUp);
    svg.addEventListener("pointercancel", onPointerUp);
    frame.append(img, svg);
    content.replaceChildren(frame);
    return content;
  }

  // A box's body; its stroke stays as wide on screen however far the image is scaled up.
  function bodyRect(x, y, bw, bh) {
    const attrs = { x, y, width: bw, height: bh, "vector-effect": "non-scaling-stroke" };
    return svgEl("rect", attrs, "wb-box-body");
  }

  function colour(label) {
    return String(Math.max(0, names().indexOf(label)) % BOX_COLOURS);
  }

  // One box: its body (a rect), its class name over its top-left corner, and, selected, the
  // corner handles that resize it.
  function boxGroup(box, i, selected, unit, [W, H]) {
    const [x, y, bw, bh, label] = box;
    const g = svgEl("g", {}, "wb-box");
    g.dataset.box = String(i);
    g.dataset.label = String(label);
    g.dataset.color = colour(label);
    g.classList.toggle("wb-box-selected", selected);
    const tip = svgEl("title");
    tip.textContent = `${label}: x ${num(x)}, y ${num(y)}, ${num(bw)}×${num(bh)} px`;
    const body = bodyRect(x, y, bw, bh);
    const tagSize = BOX_TAG_PX * unit;
    const above = y >= tagSize;                  // at the image's top edge: inside the box
    const tag = svgEl("text", { x: clamp(x, 0, W), y: above ? y - 2 * unit : y + tagSize,
      "font-size": tagSize, "stroke-width": 3 * unit }, "wb-box-tag");
    tag.textContent = String(label);
    g.append(tip, body, tag);
    if (selected) {
      const hs = BOX_HANDLE_PX * unit;
      for (const corner of ["nw", "ne", "sw", "se"]) {
        const cx = corner.includes("w") ? x : x + bw, cy = corner.includes("n") ? y : y + bh;
        const handle = svgEl("rect", { x: clamp(cx - hs / 2, 0, W - hs), y: clamp(cy - hs / 2, 0, H - hs),
          width: hs, height: hs, "vector-effect": "non-scaling-stroke" }, "wb-box-handle");
        handle.dataset.corner = corner;
        g.appendChild(handle);
      }
    }
    return g;
  }

  // The boxes of the image in view (the one selected last, on top), and a box being drawn.
  function paint(item) {
    const svg = els.item.querySelector(".wb-boxes-svg");
    const wh = size(item);
    if (!svg || !wh) return;
    const edit = boxEditOf(S);
    const unit = 1 / (Number(svg.dataset.scale) || 1);  // one screen pixel, in image pixels
    const groups = edit.list.map((box, i) => boxGroup(box, i, i === edit.selected, unit, wh));
    if (edit.selected !== null && groups[edit.selected]) groups.push(groups.splice(edit.selected, 1)[0]);
    if (drag && drag.kind === "draw" && drag.moved && drag.key === edit.key) {
      const [x, y, bw, bh, label] = drawn(drag);
      const g = svgEl("g", {}, "wb-box wb-box-new");
      g.dataset.color = colour(label);
      g.appendChild(bodyRect(x, y, bw, bh));
      groups.push(g);
    }
    svg.replaceChildren(...groups);
  }

  // The number of boxes, the one selected (class and geometry) and the class of the next one.
  function stateLine(item) {
    if (!size(item)) return "";
    const edit = boxEditOf(S);
    const n = edit.list.length;
    const count = n ? `${n} box${n === 1 ? "" : "es"}` : "no boxes";
    const box = edit.selected === null ? null : edit.list[edit.selected];
    if (box) {
      return `${count} · box ${edit.selected + 1} of ${n} selected: ${box[4]} at x ${num(box[0])}, `
        + `y ${num(box[1])}, ${num(box[2])}×${num(box[3])} px`;
    }
    return `${count} · none selected · a new box is ${current()}`;
  }

  // The class of the box selected (else the class a new box takes): its class button is pressed.
  function pressed() {
    const edit = boxEditOf(S);
    const box = edit.selected === null ? null : edit.list[edit.selected];
    return box ? [box[4]] : [current()];
  }

  // The keys of this part; false: not one of them (←/→ with no box selected walk back).
  function onKey(e) {
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    const step = e.shiftKey ? 10 : 1;
    if (arrows[e.key]) {
      const [dx, dy] = arrows[e.key];
      if (e.altKey || e.ctrlKey) { grow(dx * step, dy * step); return true; }
      const edit = boxEditOf(S);
      if (edit.selected === null || !edit.list[edit.selected]) return false;
      nudge(dx * step, dy * step);
      return true;
    }
    if (e.altKey || e.ctrlKey || e.metaKey) return false;
    switch (e.key) {
      case "Tab": cycle(e.shiftKey ? -1 : 1); return true;
      case "n": case "N": addDefault(); return true;
      case "Delete": case "Backspace": remove(); return true;
      case "Escape": deselect(); return true;
      default: return false;
    }
  }

  return { assign, addDefault, cycle, remove, onKey, stage, paint, stateLine, pressed };
}
