// label/kernel.js: talking to the kernel, for every mode.
//
// Speed: the kernel keeps a buffer of the next few items (with their rendered payloads) here,
// so a key press shows the next item at once and the label travels to the kernel afterwards.
// Until the kernel acknowledges a label (it is durable on disk by then), the header counts it
// as "saving" (`S.pending`).
//
// Trust: every label goes back with the role its item was shown in (`strategy`), and with an
// event id minted here, so that z undoes exactly the events of the last action, even while
// they are still on their way. An item acted on is never taken back into the buffer unless an
// undo brings it back. The messages both ways are listed in workbench/ui/label_messages.py.

function connection(w) {
  const { S, model } = w;

  // Every action goes out with a sequence number; `pending` (what the header counts and what
  // an error puts back) waits for its "ack" or "error".
  function send(msg, pending) {
    const seq = ++S.seq;
    if (pending) S.pending.set(seq, pending);
    model.send({ ...msg, seq });
    return seq;
  }

  function addItems(items) {
    for (const item of items || []) if (!held(S, item.item_id)) S.buffer.push(item);
    if (!S.current && S.buffer.length) S.current = S.buffer.shift();
  }

  function onReset(msg) {
    S.waiting = false;
    if (msg.reason === "focus" && S.flash === REVIEW_FLASH) S.flash = "";
    const before = holdingIds(S);
    if (msg.replace_current) { S.current = null; S.view = null; }
    S.buffer = [];
    const fresh = S.current && (msg.items || []).find((x) => x.item_id === S.current.item_id);
    if (fresh) {
      S.current = fresh;                 // same item, newer suggestion and reason
    } else if (S.current) {
      // Keep the item the user is looking at (in the role it was shown in), but ask what the
      // new model thinks of it.
      model.send({ type: "suggest", item_id: S.current.item_id });
    }
    addItems(msg.items);
    const now = holdingIds(S);
    model.send({ type: "holding", item_ids: now, dropped: before.filter((id) => !now.includes(id)) });
  }

  function onWithdraw(msg) {
    const gone = new Set(msg.item_ids || []);
    S.buffer = S.buffer.filter((x) => !gone.has(x.item_id));
    if (S.current && gone.has(S.current.item_id)) {
      if (!msg.quiet) S.flash = `${S.current.name || S.current.item_id} was ${msg.reason || "labeled elsewhere"}; moved on`;
      S.current = S.buffer.shift() || null;
    }
    addItems(msg.items);
  }

  function onAck(msg) {
    const p = S.pending.get(msg.seq);
    S.pending.delete(msg.seq);
    if (msg.action === "undo") bringBack(msg.undone || [], p);
    if (msg.page) S.grid = newGrid({ page: msg.page.filter((x) => !S.done.has(x.item_id)) });
    addItems(msg.items);
  }

  // Items an undo took back and the kernel sends again: in front, the first one on screen.
  function bringBack(items, p) {
    for (const item of items) S.done.delete(item.item_id);
    // The kernel says which label each item has now: what a review item on screen keeps.
    for (const fresh of items) {
      for (const x of [S.current, ...S.buffer]) if (x && x.item_id === fresh.item_id) x.given = fresh.given;
    }
    if (w.isGrid()) { w.grid.requestPage(); return; }
    const onScreen = p && p.action && p.action.kind !== "page" && p.action.kind !== "relabel";
    if (onScreen) return;                       // already brought back locally by undo()
    const back = items.filter((x) => !held(S, x.item_id));
    if (!back.length) return;
    if (S.current) S.buffer.unshift(S.current);
    S.buffer.unshift(...back.slice(1));
    S.current = back[0];
    S.view = null;
  }

  // The kernel refused an action: it comes back on screen, so nothing is lost silently.
  function onError(msg) {
    const p = S.pending.get(msg.seq);
    S.pending.delete(msg.seq);
    if (p && p.action) w.undo.restore(p.action);
    if (msg.action === "page") S.grid.loading = false;
    if (msg.action === "label_page") w.grid.requestPage();
  }

  // What the model now thinks of an item the view kept through a reset.
  function onSuggestion(msg) {
    for (const item of [S.current, ...S.history.map((e) => e.item)]) {
      if (item && item.item_id === msg.item_id) {
        item.suggestion = msg.suggestion;
        item.confidence = msg.confidence;
        item.suggested_by = msg.suggested_by;
      }
    }
  }

  function onMessage(msg) {
    if (!msg || typeof msg !== "object") return;
    if (msg.type === "reset") onReset(msg);
    else if (msg.type === "items") addItems(msg.items);
    else if (msg.type === "withdraw") onWithdraw(msg);
    else if (msg.type === "ack") onAck(msg);
    else if (msg.type === "error") onError(msg);
    else if (msg.type === "suggestion") onSuggestion(msg);
    w.draw();
  }

  return { send, onMessage };
}
