// label/view.js: the view every mode shares: the DOM skeleton, buttons, the status line.
//
// The DOM is built once per view; the draw functions here and in the mode parts are functions
// of the state (label/state.js) and the model's traits, writing into it. Item data only ever
// goes in with textContent (`h`, from content.js) or as an image's data URL, never as HTML.

function button(label, hint, title, onClick) {
  const b = h("button", "wb-button");
  b.type = "button";
  if (hint) b.appendChild(h("kbd", "wb-kbd", hint));
  b.appendChild(h("span", "wb-button-label", label));
  if (title) b.title = title;
  b.addEventListener("click", (e) => { e.preventDefault(); onClick(e); });
  return b;
}

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

// The class buttons' marks: the model's suggestion, the label the item has (each a class name,
// or a list of them in a multi-label session) and, multi-label, the classes selected now
// (`pressed`: shown as pressed buttons, aria-pressed; null in a single-label session).
function markClassButtons(buttons, names, { suggested = null, given = null, pressed = null } = {}) {
  const has = (label, name) => (Array.isArray(label) ? label.includes(name) : name === label);
  buttons.forEach((b, i) => {
    b.classList.toggle("wb-suggested", has(suggested, names[i]));
    b.classList.toggle("wb-given", has(given, names[i]));
    if (pressed === null) {
      b.removeAttribute("aria-pressed");
      b.classList.remove("wb-pressed");
    } else {
      b.setAttribute("aria-pressed", String(pressed.includes(names[i])));
      b.classList.toggle("wb-pressed", pressed.includes(names[i]));
    }
  });
}

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
  // The strategy's queue also serves items in other roles (audit, cold start, random picks):
  // name the role the item is shown in, which is what its label will record.
  const role = mine === strategyQueue && item.strategy && item.strategy !== mine.queue
    ? `${item.strategy}, from the ${mine.queue} queue` : `${mine.queue} queue`;
  return ` · this item: ${role}, ${mine.left} left`
    + (waiting.length ? ` (waiting: ${waiting.join(", ")})` : "");
}

// The status line (progress, what is still saving), the model line and the error or flash.
function drawStatus(S, model, els) {
  const p = model.get("progress") || {};
  const rate = p.labels_per_minute ? ` · ${p.labels_per_minute} labels/min` : "";
  els.progress.textContent = `${p.n_labeled ?? 0} labeled · ${p.n_skipped ?? 0} skipped · `
    + `${p.n_queued ?? "?"} queued · pool ${p.pool_size ?? "?"}${rate}${queueLine(S, p, model)}`;
  const n = unsaved(S);
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
    // what a first round needs, in the words of the task
    const first = { spans: "mark the spans of a few texts", boxes: "box the objects of a few images" };
    parts.push(`no model yet: ${first[model.get("task")] || "label a few items of different classes"}, `
      + "then Retrain");
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
