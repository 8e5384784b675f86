"""The label widget's messages from the browser, handled: the protocol between its front end
(widgets/label/) and the kernel.

Every message with a `seq` gets an "ack" or an "error" back. An action is done (durable, for
labels) before its "ack" leaves; the next items the browser needs go out before the durable
write (`_prefetch`), so it never waits on the disk.

Messages, browser -> kernel:
    {"type": "hello"}                                  a view appeared: send it a fresh buffer
    {"type": "label", seq, item_id, label, source, query, event_id}   label: a class name; in a
                                                       multi-label session a list of them ([]: none);
                                                       in a spans session a list of [start, end,
                                                       label], UTF-16 units ([]: nothing marked);
                                                       in a boxes session a list of [x, y, w, h,
                                                       label], image pixels ([]: no object)
    {"type": "skip", seq, item_id, query, event_id}
    {"type": "confirm", seq, item_id, label, query, event_id}   a review keeps the item's
                                                       label: the one the screen named (a list,
                                                       multi-label)
                                                       (spans, boxes: a label message that
                                                       names the parts a review item has is
                                                       one too)
    {"type": "defer", seq, item_id}                    a review item left for later (no event)
    {"type": "undo", seq, event_ids}                   take back exactly these events
    {"type": "label_page", seq, n, labels: [[item_id, label, source, query, event_id]],
                                   skips: [[item_id, query, event_id]]}   one action
    {"type": "page", seq, n}                           the next n items, for the grid
    {"type": "holding", item_ids, dropped}             after a reset: what the view kept, and
                                                       what it let go (other sessions may show it)
    {"type": "suggest", item_id}                       what the model now thinks of an item
    {"type": "retrain"}
    {"type": "review"}                                 put the suspected mislabels first
kernel -> browser:
    {"type": "items", items}                           top-up: append what is not held yet
    {"type": "reset", items, replace_current, reason}  the queue changed: replace the buffer
    {"type": "withdraw", item_ids, reason, quiet?}     labeled elsewhere: drop them (quiet:
                                                       by this session's code, say nothing)
    {"type": "ack", seq, action, item_id, event_ids, items?, undone?, page?}
    {"type": "suggestion", item_id, suggestion, confidence, suggested_by}
    {"type": "error", seq, action, item_id, message}
(items: payloads, see workbench.ui.label_payload; a label or suggestion sent is a class name,
or in a multi-label session a list of class names, or in a spans session a list of
[start, end, label] in UTF-16 units: the browser counts those, the store code points, and
workbench.ui.span_payload converts both ways; in a boxes session a list of [x, y, w, h, label]
in image pixels, read by workbench.ui.box_payload.)
"""

from __future__ import annotations

import logging

from workbench.loop.review import REVIEW
from workbench.ui.box_payload import is_boxes
from workbench.ui.label_payload import is_multi_label, json_number, label_names, label_now
from workbench.ui.span_payload import is_spans

log = logging.getLogger("workbench.ui.label_widget")  # the widget's logger: these are its messages
MESSAGES = ("hello", "label", "skip", "confirm", "defer", "undo", "label_page", "page", "holding",
            "suggest", "retrain", "review")


class LabelMessages:
    """Message handling, mixed into `LabelWidget`: it uses the widget's session, its lock, its
    buffer bookkeeping (`_sent`, `_page_ids`, `_prefetch`, `_take`, `_top_up`, `_forget`,
    `_page`) and its public actions."""

    def _on_msg(self, _widget, content, _buffers) -> None:
        content = content if isinstance(content, dict) else {}
        kind, seq, item_id = content.get("type"), content.get("seq"), content.get("item_id")
        with self._lock:
            try:
                reply = self._handle(kind, content)
            except Exception as e:  # reported in the widget, so the user sees what failed
                expected = isinstance(e, (ValueError, KeyError))  # bad label, unknown item, ...
                log.log(logging.DEBUG if expected else logging.ERROR,
                        "label widget could not handle %r", content, exc_info=True)
                message = f"{type(e).__name__}: {e}"
                self.error = f"{kind or 'message'} failed: {message}"
                self.send({"type": "error", "seq": seq, "action": kind, "item_id": item_id,
                           "message": message})
                if kind in ("undo", "confirm"):  # the browser moved on: show the truth again
                    self.refresh(reason="undo failed" if kind == "undo" else "confirm refused")
                self._refresh_status()
                return
            # The action is done (durable, for labels): nothing below may turn it into an error.
            # (The progress shown was updated by the session's "labels_changed" event.)
            try:
                if reply is not None:
                    self.send({"type": "ack", "seq": seq, "action": kind, "item_id": item_id, **reply})
                if kind in ("label", "skip", "undo", "label_page") and self.error:
                    self.error = ""
            except Exception:
                log.exception("label widget could not acknowledge %r", content)

    def _handle(self, kind, content: dict) -> dict | None:
        if kind == "hello":
            self.refresh(reason="hello")
            return None
        if kind in ("label", "skip"):
            item_id = content.get("item_id")
            if not item_id:
                raise ValueError(f"no item to {kind} (item_id={item_id!r})")
            item_id = str(item_id)
            value = self._label_value(content.get("label"), item_id) if kind == "label" else None
            if kind == "label" and self._unchanged_review(item_id, value, content.get("query")):
                self._prefetch(item_id)  # the label it has, saved again: kept, as Enter keeps it
                event = self.session.confirm(item_id, query=REVIEW, event_id=content.get("event_id"))
                self._forget(item_id)
                return {"event_ids": [event.event_id], "items": self._top_up()}
            self._prefetch(item_id)  # the browser never waits on the durable write for its next item
            if kind == "label":
                event = self.session.label(item_id, value, source=content.get("source") or "human",
                                           query=content.get("query"), event_id=content.get("event_id"))
            else:
                event = self.session.skip(item_id, query=content.get("query"),
                                          event_id=content.get("event_id"))
            self._forget(item_id)
            return {"event_ids": [event.event_id], "items": self._top_up()}
        if kind in ("confirm", "defer"):
            item_id = content.get("item_id")
            if not item_id:
                raise ValueError(f"no item to {kind} (item_id={item_id!r})")
            item_id = str(item_id)
            if kind == "confirm":
                self._check_kept(item_id, content.get("label"))
            self._prefetch(item_id)
            if kind == "confirm":
                ids = [self.session.confirm(item_id, query=content.get("query"),
                                            event_id=content.get("event_id")).event_id]
            else:
                self.session.defer(item_id)
                ids = []
            self._forget(item_id)
            return {"event_ids": ids, "items": self._top_up()}
        if kind == "undo":
            event_ids = content.get("event_ids")
            if not isinstance(event_ids, list) or not event_ids:
                raise ValueError(f"undo needs the event_ids it takes back, got {event_ids!r}")
            items = self.session.undo(event_ids)
            back = [self._payload_for(i, reason="brought back by undo") for i in items
                    if not self.session.is_done(i)]
            self._sent = {**dict.fromkeys(p["item_id"] for p in back), **self._sent}
            return {"event_ids": event_ids, "undone": back, "items": self._top_up()}
        if kind == "label_page":
            labels = [list(row) for row in content.get("labels") or []]
            for row in labels:
                row[1] = self._label_value(row[1], row[0])
            event_ids = self.session.label_many(labels, skips=content.get("skips") or [])
            page = self._page(int(content.get("n") or self.grid_size))
            self.refresh(reason="page")
            return {"event_ids": event_ids, "page": page}
        if kind == "page":
            return {"page": self._page(int(content.get("n") or self.grid_size))}
        if kind == "holding":
            kept = [str(i) for i in content.get("item_ids") or [] if not self.session.is_done(str(i))]
            self._sent = {**dict.fromkeys(kept), **self._sent}
            kept_anyway = self._sent.keys() | self._page_ids
            self.session.release(str(i) for i in content.get("dropped") or [] if str(i) not in kept_anyway)
            return None
        if kind == "suggest":
            item_id = str(content.get("item_id"))
            suggestion, confidence = self.session.suggest(item_id)
            self.send({"type": "suggestion", "item_id": item_id,
                       "suggestion": label_names(self.session, suggestion, item_id),
                       "confidence": json_number(confidence), "suggested_by": self.session.suggested_by})
            return None
        if kind == "retrain":
            self.retrain()
            return None
        if kind == "review":
            self.review()
            return None
        raise ValueError(f"unknown message type {kind!r} from the browser; expected one of "
                         f"{', '.join(MESSAGES)}")

    def _unchanged_review(self, item_id: str, value, query) -> bool:
        """A spans or boxes item under review saved with the very parts it has (the browser
        sends a confirm itself; the same parts in another order come as a label): a confirm,
        never a relabel that changes nothing."""
        if not (is_spans(self.session) or is_boxes(self.session)):
            return False
        if (query or self.session.served_as(item_id)) != REVIEW:
            return False
        now = self.session.label_of(item_id)
        return now is not None and str(now) == str(value)

    def _check_kept(self, item_id: str, shown) -> None:
        """A review's Enter keeps the label the screen said it keeps. If the item's label
        changed since it was shown (another notebook relabeled it), a confirm would record a
        label nobody looked at: refuse it, and the refresh that follows shows the label now."""
        if shown is None:
            raise ValueError(f"confirm of item {item_id!r} needs the label the screen showed "
                             f"it keeps, got label=None")
        now = label_now(self.session, item_id)
        if is_multi_label(self.session) or is_spans(self.session) or is_boxes(self.session):
            shown = label_names(self.session, self._label_value(shown, item_id), item_id)
            what = ("the spans" if is_spans(self.session) else "the boxes" if is_boxes(self.session)
                    else "the classes")
            if now != shown:
                raise ValueError(f"item {item_id!r} was shown to keep {what} {shown}, but its "
                                 f"label is now {now}; nothing was written, look at it again")
            return
        if now != str(shown):
            raise ValueError(f"item {item_id!r} was shown to keep label {str(shown)!r}, but its "
                             f"label is now {now!r}; nothing was written, look at it again")
