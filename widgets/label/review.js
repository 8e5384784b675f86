// label/review.js: review items, on the single-item screen.
//
// A review item (isReview() in label/state.js) is one whose label models trained without it
// doubt: shown again with the label it has. There Enter keeps that label (a confirm event,
// which z takes back like a label), a class key relabels it, and s leaves it for later (no
// event). Walked back to, Enter keeps the label its entry has now. What Enter does is worked
// out by enterAction() in label/state.js; this part carries it out.

const REVIEW_HELP = "number keys: relabel · Enter: keep the label · s: later (nothing written) · "
  + "z/⌫: undo · ←/→: fix earlier labels";
const REVIEW_BACK_HELP = "number keys: relabel · Enter: keep the label shown · z/⌫: undo · "
  + "←/→: walk through earlier labels";

function reviewMode(w) {
  const { S, els } = w;

  // Enter on a review item keeps the label the screen names: a confirm event that carries it
  // (the kernel refuses it if the label changed meanwhile), which z takes back like a label.
  function keep(enter) {
    if (S.flash) S.flash = "";
    const msg = { type: "confirm", label: enter.label };
    if (!enter.entry) w.single.advance({ label: enter.label, skipped: false }, "label", msg);
    else if (enter.write) w.single.amend(enter.entry, enter.label, msg);
    else w.single.stepForward();                // kept or relabeled already: the label stands
  }

  // s on a review item leaves it for later: no event, so nothing to undo.
  function defer() {
    w.single.advance({ label: S.current.given, skipped: false, deferred: true }, null, { type: "defer" });
  }

  // The live review item's question, beside it; returns the label it has (its class button
  // is marked as given).
  function drawQuestion(item) {
    els.review.appendChild(h("strong", null, "Review: "));
    els.review.appendChild(document.createTextNode(`labeled ${labelText(item.given)}; is that right?`));
    return item.given;
  }

  return { keep, defer, drawQuestion };
}
