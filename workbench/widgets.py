"""LabelWidget: the keyboard-first labeling widget, as synced traits plus message handling.

The browser holds a prefetch buffer of the next few items with their rendered payloads,
so a key press shows the next item at once; the label goes to the kernel as a message,
`Session.label` makes it durable, and the reply acknowledges it and tops the buffer up.
Python owns the state: every action the browser can take is also a public method here
(`label`, `skip`, `undo`, `retrain`, `label_page`), so all of it is testable without one.

Messages, browser -> kernel (every one with a `seq` gets an "ack" or an "error" back):
    {"type": "hello"}                                  a view appeared: send it a fresh buffer
    {"type": "label", seq, item_id, label, source}     label is a class name
    {"type": "skip", seq, item_id}
    {"type": "undo", seq}
    {"type": "retrain"}
    {"type": "suggest", item_id}                       what the model now thinks of an item
    {"type": "page", seq, n}                           the next n items, for the grid
    {"type": "label_page", seq, labels: [[item_id, label, source], ...], skips: [item_id]}
kernel -> browser:
    {"type": "items", items}                           top-up: append what is not held yet
    {"type": "reset", items, replace_current, reason}  the queue changed: replace the buffer
    {"type": "ack", seq, action, item_id, item?, page?}
    {"type": "suggestion", item_id, suggestion, confidence}
    {"type": "error", seq, action, item_id, message}
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import anywidget
import traitlets

import workbench

log = logging.getLogger(__name__)
POSITION_KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]  # 0 is the tenth class


def _static_dir() -> Path:
    """The front-end files: `_static` inside an installed wheel, `widgets/` in a checkout."""
    packaged = Path(workbench.__file__).parent / "_static"
    if (packaged / "label.js").exists():
        return packaged
    return Path(__file__).resolve().parent.parent / "widgets"


_STATIC = _static_dir()


class LabelWidget(anywidget.AnyWidget):
    """Label a session's queue from the keyboard: 1-9/0 pick a class (0 is the tenth; see
    `class_keys` for classes named by digits), Enter accepts the
    model's suggestion, s skips, Backspace/z undoes, arrows walk back to fix a label,
    g toggles a grid of thumbnails (image pools).

    Displaying the widget also shows `workbench.charts.dashboard(session)` below it,
    unless `charts=False`.
    """

    _esm = _STATIC / "label.js"
    _css = _STATIC / "label.css"

    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    class_keys = traitlets.List(traitlets.Unicode()).tag(sync=True)  # "" = button only
    pool_kind = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Dict().tag(sync=True)
    model_state = traitlets.Dict().tag(sync=True)
    retrain_every = traitlets.Int(0, min=0).tag(sync=True)  # 0: only when asked
    mode = traitlets.Enum(["single", "grid"], default_value="single").tag(sync=True)
    buffer_size = traitlets.Int(8, min=1).tag(sync=True)
    grid_size = traitlets.Int(16, min=1, max=48).tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session, *, buffer_size: int = 8, grid_size: int = 16,
                 charts: bool = True, keys: str = "auto", **kwargs):
        super().__init__(buffer_size=buffer_size, grid_size=grid_size, **kwargs)
        self.session = session
        self._charts = charts
        self._dashboard = None
        self._lock = threading.RLock()
        # Item ids the browser holds (shown or buffered) and has not acted on, in order.
        self._sent: dict[str, None] = {}
        self.class_names = list(session.class_names)
        self.class_keys = class_keys(self.class_names, keys)
        self.pool_kind = session.pool.kind
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
        """Label `item_id` (default: the head of the queue) with class `value`."""
        event = self._label(self._item_or_head(item_id), value, source)
        self.refresh()
        return event

    def skip(self, item_id: str | None = None):
        event = self._skip(self._item_or_head(item_id))
        self.refresh()
        return event

    def undo(self) -> str | None:
        """Retract this annotator's last action; returns its item id (None: nothing to undo)."""
        item_id = self.session.undo()
        self._after_action()
        self.refresh()
        return item_id

    def label_page(self, labels: Mapping[str, object], skips: Iterable[str] = (), *,
                   source: str = "human") -> int:
        """Label many items at once (the grid's Enter); returns how many events were written."""
        n = 0
        for item_id, value in labels.items():
            self._label(str(item_id), value, source)
            n += 1
        for item_id in skips:
            self._skip(str(item_id))
            n += 1
        self.refresh()
        return n

    def retrain(self):
        """Start a training round in the background; returns its Future."""
        return self.session.retrain(background=True)

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
            from workbench.charts import dashboard

            self._dashboard = dashboard(self.session)
        return self._dashboard

    def _repr_mimebundle_(self, **kwargs):
        if not self._charts:
            return super()._repr_mimebundle_(**kwargs)
        import ipywidgets

        return ipywidgets.VBox([self, self.dashboard])._repr_mimebundle_(**kwargs)

    # -- messages from the browser ------------------------------------------------------------
    def _on_msg(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        seq = content.get("seq") if isinstance(content, dict) else None
        item_id = content.get("item_id") if isinstance(content, dict) else None
        try:
            if kind == "hello":
                self.refresh(reason="hello")
            elif kind == "label":
                value = self._class_value(content.get("label"))
                self._prefetch(item_id)
                self._label(item_id, value, content.get("source", "human"))
                self._ack(seq, kind, item_id)
            elif kind == "skip":
                self._prefetch(item_id)
                self._skip(item_id)
                self._ack(seq, kind, item_id)
            elif kind == "undo":
                undone = self.session.undo()
                self._after_action()
                item = None
                if undone is not None:
                    item = self._payload_for(undone, strategy="undo",
                                             reason="brought back by undo")
                    with self._lock:
                        self._sent[undone] = None
                self._ack(seq, kind, undone, item=item)
            elif kind == "suggest":
                suggestion, confidence = self.session.suggest(str(item_id))
                self.send({"type": "suggestion", "item_id": item_id,
                           "suggestion": None if suggestion is None else str(suggestion),
                           "confidence": _number(confidence)})
            elif kind == "retrain":
                self.retrain()
            elif kind == "page":
                n = int(content.get("n") or self.grid_size)
                self.send({"type": "ack", "seq": seq, "action": "page", "item_id": None,
                           "page": self._page(n)})
            elif kind == "label_page":
                self._label_page_msg(content)
                n = int(content.get("n") or self.grid_size)
                self.send({"type": "ack", "seq": seq, "action": "label_page", "item_id": None,
                           "page": self._page(n)})
                self.refresh(reason="page")
            else:
                raise ValueError(f"unknown message type {kind!r} from the browser; expected one "
                                 "of hello, label, skip, undo, suggest, retrain, page, label_page")
        except Exception as e:  # reported in the widget, so the user sees what failed
            expected = isinstance(e, (ValueError, KeyError))  # bad label, unknown item, ...
            log.log(logging.DEBUG if expected else logging.ERROR,
                    "label widget could not handle %r", content, exc_info=True)
            message = f"{type(e).__name__}: {e}"
            self.error = f"{kind or 'message'} failed: {message}"
            self.send({"type": "error", "seq": seq, "action": kind, "item_id": item_id,
                       "message": message})
            self._refresh_status()

    def _label_page_msg(self, content: dict) -> None:
        for entry in content.get("labels") or []:
            item_id, name = entry[0], entry[1]
            source = entry[2] if len(entry) > 2 else "human"
            self._label(item_id, self._class_value(name), source)
        for item_id in content.get("skips") or []:
            self._skip(item_id)

    def _ack(self, seq, action: str, item_id, *, item: dict | None = None) -> None:
        """Acknowledge a durable action and top the browser's buffer up in the same message."""
        self.send({"type": "ack", "seq": seq, "action": action, "item_id": item_id,
                   "item": item, "items": self._top_up()})

    # -- the session, and the buffer of what the browser holds ---------------------------------
    def _label(self, item_id, value, source: str):
        if not item_id:
            raise ValueError(f"no item to label (item_id={item_id!r})")
        event = self.session.label(str(item_id), value, source=source)
        self._after_action(item_id)
        return event

    def _skip(self, item_id):
        if not item_id:
            raise ValueError(f"no item to skip (item_id={item_id!r})")
        event = self.session.skip(str(item_id))
        self._after_action(item_id)
        return event

    def _after_action(self, item_id: str | None = None) -> None:
        if self.error:
            self.error = ""
        if item_id is not None:
            with self._lock:
                self._sent.pop(str(item_id), None)

    def _item_or_head(self, item_id) -> str:
        if item_id is not None:
            return str(item_id)
        head = self.session.next()
        if head is None:
            raise ValueError("the queue is empty: every item is labeled or skipped")
        return head.item_id

    def _class_value(self, name):
        names = self.session.class_names
        if name not in names:
            raise ValueError(f"label {name!r} is not one of the classes {names}")
        return self.session.classes[names.index(name)]

    def _prefetch(self, item_id) -> None:
        """Refill the browser's buffer before the durable write, so it never waits on fsync."""
        with self._lock:
            self._sent.pop(str(item_id), None)
            items = self._take(self.buffer_size - len(self._sent), exclude=str(item_id))
        if items:
            self.send({"type": "items", "items": items})

    def _top_up(self) -> list[dict]:
        """Items to bring the browser back to `buffer_size`, never one it already holds."""
        with self._lock:
            return self._take(self.buffer_size - len(self._sent))

    def _take(self, n: int, exclude: str | None = None) -> list[dict]:
        if n <= 0:
            return []
        fresh = [q for q in self.session.peek(n + len(self._sent) + 1)
                 if q.item_id not in self._sent and q.item_id != exclude][:n]
        self._sent.update(dict.fromkeys(q.item_id for q in fresh))
        return [self._payload(q) for q in fresh]

    def _page(self, n: int) -> list[dict]:
        return [self._payload(q) for q in self.session.peek(max(1, min(n, 48)))]

    def _payload(self, q) -> dict:
        return {"item_id": q.item_id, "strategy": q.strategy, "score": _number(q.score),
                "reason": q.reason,
                "suggestion": None if q.suggestion is None else str(q.suggestion),
                "confidence": _number(q.confidence), "render": self._render(q.item_id)}

    def _payload_for(self, item_id: str, *, strategy: str, reason: str) -> dict:
        suggestion, confidence = self.session.suggest(item_id)
        return {"item_id": item_id, "strategy": strategy, "score": None, "reason": reason,
                "suggestion": None if suggestion is None else str(suggestion),
                "confidence": _number(confidence), "render": self._render(item_id)}

    def _render(self, item_id: str) -> dict:
        try:
            return self.session.pool.render(item_id)
        except Exception as e:  # one broken item must not stop labeling: show it, skip it
            return {"kind": "error", "reason": f"{type(e).__name__}: {e}"}

    # -- the session's events (any thread) ---------------------------------------------------------
    def _on_session_event(self, event: str) -> None:
        try:
            if event == "retrain_finished":
                self.refresh(replace_current=False, reason="retrained")
            elif event == "retrain_failed":
                self.error = f"retrain failed: {self.session.model_state().get('last_error')}"
                self._refresh_status()
            else:
                self._refresh_status()
        except Exception:  # never raise into the session's training thread
            log.exception("label widget could not update after %r", event)

    def _refresh_status(self) -> None:
        self.progress = dict(self.session.progress())
        state = dict(self.session.model_state())
        self.model_state = {k: (_number(v) if isinstance(v, float) else v)
                            for k, v in state.items()}

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


def _number(value):
    """A float for JSON: None for missing or NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
