"""LabelWidget: the keyboard-first labeling widget: its synced traits, its actions, and the buffer
of items the browser holds.

The browser holds a prefetch buffer of the next few items with their rendered payloads,
so a key press shows the next item at once; the label goes to the kernel as a message,
`Session.label` makes it durable, and the reply acknowledges it and tops the buffer up.
Python owns the state: every action the browser can take is also a public method here
(`label`, `skip`, `undo`, `retrain`, `label_page`), so all of it is testable without one.

What is stored is what was shown: every item is sent with the role it is shown in
(`strategy`), and the browser sends that role back with the label. The browser mints each
event's id, so an undo names the events it takes back even while their writes are in
flight. Everything this widget sends goes out under one lock, in the order the state changed,
so a background refresh can never resend an item whose label was just acknowledged.

In a multi-label session (`task == "multi_label"`) a label is a set of classes: the class keys
toggle classes in a selection that starts as the model's suggested set, and Enter saves the
selection (empty: no class applies); here a label is a list of classes. The grid labels one
class per item, so it is not offered there.

In a spans session (`task == "spans"`) a label is a list of `(start, end, label)` spans of the
item's text: the text is drawn with its spans (the item's own when it has a label, else the
model's, pre-annotated), a selection by mouse or keys snaps to whole tokens, a class key gives
it that label (or relabels the span selected), Delete removes a span and Enter saves the list.
Offsets are code points here and in the store, UTF-16 units in the browser
(`workbench.ui.span_payload` converts them).

In a boxes session (`task == "boxes"`) a label is a list of `(x, y, w, h, label)` boxes of the
item's image, in its pixels: the image is drawn with its boxes over it (its own, else the
model's, pre-annotated); a drag draws, moves or resizes a box, the keys select, move, resize,
relabel, add and delete one, and Enter saves the list (`workbench.ui.box_payload` reads it).

The messages between the browser and the kernel, and their handling, are in
`workbench.ui.label_messages`; what is sent about an item is `workbench.ui.label_payload`;
the front end's files and the order they are joined in, `workbench.ui.front_end`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

import anywidget
import traitlets

from workbench.data.tasks import BOXES, MULTI_LABEL, SINGLE, SPANS, label_set
from workbench.ui.box_payload import boxes_from_browser
from workbench.ui.front_end import STATIC, label_module
from workbench.ui.label_messages import LabelMessages
from workbench.ui.label_payload import item_payload, json_number, returned_payload
from workbench.ui.span_payload import spans_from_browser

log = logging.getLogger(__name__)
POSITION_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]  # 0 is the tenth class


class LabelWidget(LabelMessages, anywidget.AnyWidget):
    """Label a session's queue from the keyboard: 1-9/0 pick a class (0 is the tenth; see
    `class_keys` for classes named by digits), Enter accepts the model's suggestion, s skips,
    Backspace/z undoes, arrows walk back to fix a label, g toggles a grid of thumbnails
    (image pools). In a multi-label session the class keys toggle classes and Enter saves
    the classes selected (see the module docstring).

    Displaying the widget also shows `workbench.ui.charts.dashboard(session)` below it,
    unless `charts=False`.
    """

    _esm = label_module()
    _css = STATIC / "label.css"

    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    class_keys = traitlets.List(traitlets.Unicode()).tag(sync=True)  # "" = button only
    pool_kind = traitlets.Unicode("").tag(sync=True)
    # what one label is: a class, a set of classes, the spans of a text, the boxes of an image
    task = traitlets.Enum([SINGLE, MULTI_LABEL, SPANS, BOXES], default_value=SINGLE).tag(sync=True)
    overlapping = traitlets.Bool(False).tag(sync=True)  # spans: may one text's spans overlap
    progress = traitlets.Dict().tag(sync=True)
    model_state = traitlets.Dict().tag(sync=True)
    retrain_every = traitlets.Int(0, min=0).tag(sync=True)  # 0: only when asked
    mode = traitlets.Enum(["single", "grid"], default_value="single").tag(sync=True)
    buffer_size = traitlets.Int(8, min=1).tag(sync=True)
    grid_size = traitlets.Int(16, min=1, max=48).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session, *, buffer_size: int = 8, grid_size: int = 16,
                 charts: bool = True, keys: str = "auto", **kwargs):
        super().__init__(buffer_size=buffer_size, grid_size=grid_size,
                         task=getattr(session, "task", SINGLE), **kwargs)
        self.session = session
        self._charts = charts
        self._dashboard = None
        # Held while deciding what to send and while sending it, so messages leave in the
        # order the state changed (see the module docstring).
        self._lock = threading.RLock()
        # Item ids the browser holds (shown or buffered) and has not acted on, in order, and
        # those on the grid page it was last sent: their claims must outlive a buffer reset.
        self._sent: dict[str, None] = {}
        self._page_ids: set[str] = set()
        self.class_names = list(session.class_names)
        self.class_keys = class_keys(self.class_names, keys)
        self.pool_kind = session.pool.kind
        self.overlapping = bool(getattr(session.pool, "overlapping", False))
        self.retrain_every = session.retrain_every or 0
        self._refresh_status()
        self.on_msg(self._on_msg)
        self._unsubscribe = session.subscribe(self._on_session_event)

    # -- public actions: what the browser's keys and buttons do ----------------------------
    @property
    def current(self) -> dict | None:
        """The item at the head of the queue, as the browser would show it."""
        item = self.session.next()
        return None if item is None else self._payload(item)

    def label(self, value, item_id: str | None = None, *, source: str = "human"):
        """Label `item_id` (default: the head of the queue) with class `value` (in a multi-label
        session: a list of classes, `[]` when none applies; in a spans session: a list of
        `(start, end, label)` in code points; in a boxes session: a list of `(x, y, w, h, label)`
        in image pixels; as `Session.label` takes it)."""
        with self._lock:
            item = self._item_or_head(item_id)
            event = self.session.label(item, value, source=source)
            self._forget(event.item_id)
            self.refresh()
        return event

    def skip(self, item_id: str | None = None):
        with self._lock:
            event = self.session.skip(self._item_or_head(item_id))
            self._forget(event.item_id)
            self.refresh()
        return event

    def undo(self, event_ids: str | Iterable[str] | None = None) -> list[str]:
        """Take back the session's last action (or exactly `event_ids`); returns the ids of
        the items it touched."""
        with self._lock:
            items = self.session.undo(event_ids)
            self.refresh()
        return items

    def label_page(self, labels: Mapping[str, object], skips: Iterable[str] = (), *,
                   source: str = "human") -> list[str]:
        """Label and skip many items as one action (the grid's Enter); returns the event ids."""
        with self._lock:
            event_ids = self.session.label_many(labels, skips=skips, source=source)
            self.refresh(reason="page")
        return event_ids

    def retrain(self):
        """Start a training round in the background; returns its Future."""
        return self.session.retrain(background=True)

    def review(self) -> threading.Thread:
        """Find the suspected mislabels in the background (models trained without each label,
        seconds on a big pool) and put them in front of the queue; the view refreshes when
        they are (the session's "focus_changed"). A failure (too few labels) is shown."""
        def run():
            try:
                table = self.session.review()
            except Exception as e:  # shown in the widget: the person asked for it
                log.debug("review failed", exc_info=True)
                self.error = f"review failed: {type(e).__name__}: {e}"
                return
            if table.empty:
                self.error = "review: models trained without each label agree with every label"
            elif self.error.startswith("review"):
                self.error = ""
        thread = threading.Thread(target=run, name="workbench-review", daemon=True)
        thread.start()
        return thread

    def refresh(self, *, replace_current: bool = True, reason: str = "refresh") -> None:
        """Send every view a fresh buffer from the head of the queue."""
        with self._lock:
            self._sent.clear()
            items = self._take(self.buffer_size)
            self.send({"type": "reset", "items": items, "replace_current": replace_current,
                       "reason": reason})
            self._refresh_status()

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._dashboard is not None:
            self._dashboard.close()
        super().close()

    # -- display: the label widget, with the live charts below it ----------------------------
    @property
    def dashboard(self):
        """The charts shown below the widget (created on first use)."""
        if self._dashboard is None:
            from workbench.ui.charts import dashboard

            self._dashboard = dashboard(self.session)
        return self._dashboard

    def _repr_mimebundle_(self, **kwargs):
        if not self._charts:
            return super()._repr_mimebundle_(**kwargs)
        import ipywidgets

        return ipywidgets.VBox([self, self.dashboard])._repr_mimebundle_(**kwargs)

    # -- the buffer of what the browser holds --------------------------------------------------
    def _forget(self, item_id: str) -> None:
        self._sent.pop(str(item_id), None)

    def _item_or_head(self, item_id):
        if item_id is not None:
            return str(item_id)
        head = self.session.next()
        if head is None:
            raise ValueError("the queue is empty: every item is labeled or skipped")
        return head

    def _label_value(self, value, item_id=None):
        """What a label from the browser names: a class, or in a multi-label session a set of
        classes, which comes as a list of class names, or in a spans session a SpanList, which
        comes as a list of [start, end, label] in UTF-16 units, or in a boxes session a BoxList,
        which comes as a list of [x, y, w, h, label] in image pixels; a ValueError saying what
        was expected."""
        if self.task == SPANS:  # UTF-16 units from the browser, code points from here on
            return spans_from_browser(self.session, value, item_id)
        if self.task == BOXES:
            return boxes_from_browser(self.session, value, item_id)
        if self.task != MULTI_LABEL:
            return self._class_value(value)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"a multi-label label is a list of class names (none, one or several; "
                             f"[] when no class applies), got {type(value).__name__} {value!r} for "
                             f"item {item_id!r}")
        return label_set(value, self.session.class_by_name)

    def _class_value(self, name):
        names = self.session.class_names
        if name not in names:
            raise ValueError(f"label {name!r} is not one of the classes {names}")
        return self.session.classes[names.index(name)]

    def _prefetch(self, item_id: str) -> None:
        """Refill the browser's buffer before the durable write, so it never waits on fsync."""
        self._forget(item_id)
        items = self._take(self.buffer_size - len(self._sent), exclude=item_id)
        if items:
            self.send({"type": "items", "items": items})

    def _top_up(self) -> list[dict]:
        """Items to bring the browser back to `buffer_size`, never one it already holds."""
        return self._take(self.buffer_size - len(self._sent))

    def _take(self, n: int, exclude: str | None = None) -> list[dict]:
        if n <= 0:
            return []
        fresh = [q for q in self.session.peek(n + len(self._sent) + 1)
                 if q.item_id not in self._sent and q.item_id != exclude][:n]
        self._sent.update(dict.fromkeys(q.item_id for q in fresh))
        return [self._payload(q) for q in fresh]

    def _page(self, n: int) -> list[dict]:
        page = self.session.peek(max(1, min(n, 48)))
        self._page_ids = {q.item_id for q in page}
        return [self._payload(q) for q in page]

    def _payload(self, q) -> dict:
        return item_payload(self.session, q)

    def _payload_for(self, item_id: str, *, reason: str) -> dict:
        """An item shown outside the queue order (brought back by undo), in its old role."""
        return returned_payload(self.session, item_id, reason=reason)

    # -- the session's events (any thread) ---------------------------------------------------------
    def _on_session_event(self, event: str) -> None:
        try:
            with self._lock:
                if event == "retrain_finished":
                    self.refresh(replace_current=False, reason="retrained")
                elif event == "focus_changed":  # a review, spot check... starts at once
                    self.refresh(replace_current=True, reason="focus")
                elif event == "queue_changed":  # an open review ranked again
                    self.refresh(replace_current=False, reason="queue changed")
                elif event == "retrain_failed":
                    self.error = f"retrain failed: {self.session.model_state().get('last_error')}"
                    self._refresh_status()
                elif event == "labels_changed":
                    self._withdraw_done()
                    self._refresh_status()
                else:
                    self._refresh_status()
        except Exception:  # never raise into the session's training or watcher thread
            log.exception("label widget could not update after %r", event)

    def _withdraw_done(self) -> None:
        """Items the browser holds that someone else labeled or skipped meanwhile: take
        them away, and top the buffer up."""
        gone = [i for i in self._sent if self.session.is_done(i)]
        if not gone:
            return
        for item_id in gone:
            self._forget(item_id)
        # Labeled by this very session from code (another cell of this kernel): the view
        # moves on quietly; only another notebook's or a teammate's label is worth a word.
        here = [i for i in gone if self.session.acted_here(i)]
        elsewhere = [i for i in gone if i not in here]
        if here:
            self.send({"type": "withdraw", "item_ids": here, "reason": "labeled in this session",
                       "quiet": True, "items": [] if elsewhere else self._top_up()})
        if elsewhere:
            self.send({"type": "withdraw", "item_ids": elsewhere,
                       "reason": "labeled in another session", "items": self._top_up()})

    def _refresh_status(self) -> None:
        self.progress = dict(self.session.progress())
        state = dict(self.session.model_state())
        self.model_state = {k: (json_number(v) if isinstance(v, float) else v)
                            for k, v in state.items()}

    @traitlets.validate("mode")
    def _valid_mode(self, proposal):
        if proposal["value"] == "grid" and self.task in (MULTI_LABEL, SPANS, BOXES):
            raise traitlets.TraitError(f"the grid labels one class per item; a "
                                       f"{self.task.replace('_', '-')} session labels in the "
                                       "single-item view")
        return proposal["value"]

    @traitlets.observe("retrain_every")
    def _retrain_every_changed(self, change) -> None:
        if hasattr(self, "session"):
            self.session.retrain_every = change["new"] or None


def class_keys(names: list[str], keys: str = "auto") -> list[str]:
    """The key that picks each class: 1-9 then 0 for the first ten classes in order.

    With `keys="auto"`, classes whose names are themselves distinct digits (the digits
    dataset's "0".."9") get the key of their own name, so pressing 3 labels a "3", not the
    third class (a "2"). `keys="position"` always uses the order.
    """
    if keys not in ("auto", "position"):
        raise ValueError(f"keys must be 'auto' or 'position', got {keys!r}")
    if keys == "auto" and len(set(names)) == len(names) and all(
            len(n) == 1 and n.isdigit() for n in names):
        return list(names)
    return [POSITION_KEYS[i] if i < len(POSITION_KEYS) else "" for i in range(len(names))]

