"""What the label widget sends the browser about one item: its payload.

An item goes out with everything the browser draws for it, so a key press shows the next
item without asking the kernel: its id and on-screen name, the role it is shown in
(`strategy`, which comes back with its label), why it is shown, the model's suggestion and
who made it, who gave the label it has now (`blame`) and that label (`given`), and how to draw
it (`render`: an image, a text, a table, or the reason it cannot be shown). Numbers are JSON
floats or None (never NaN). A label (the suggestion, the label given) is a class name; in a
multi-label session, a list of class names in class order (`[]`: no class applies), so that
the browser can pre-select them (`label_names`). In a spans session a label is a list of
`[start, end, label]` in UTF-16 units, and an item also carries its `text`, `tokens` and
`units` (workbench.ui.span_payload, which converts the offsets). In a boxes session a label is a
list of `[x, y, w, h, label]` in image pixels, and an item also carries its image's `width` and
`height` (workbench.ui.box_payload).
"""

from __future__ import annotations

import math

from workbench.data.tasks import MULTI_LABEL, SINGLE, is_collection, label_set
from workbench.ui.box_payload import box_fields, boxes_to_browser, is_boxes
from workbench.ui.span_payload import is_spans, spans_to_browser, text_fields


def item_payload(session, q) -> dict:
    """An item the queue serves (`q`, from `session.peek` or `session.next`), in its role."""
    return {"item_id": q.item_id, "name": display_name(session, q.item_id), "strategy": q.strategy,
            "score": json_number(q.score), "reason": q.reason,
            "suggestion": label_names(session, q.suggestion, q.item_id),
            "confidence": json_number(q.confidence), "suggested_by": session.suggested_by,
            "blame": session.blame_text(q.item_id), "given": label_now(session, q.item_id),
            "render": render(session, q.item_id), **task_fields(session, q.item_id)}


def returned_payload(session, item_id: str, *, reason: str) -> dict:
    """An item shown outside the queue order (brought back by undo), in its old role."""
    suggestion, confidence = session.suggest(item_id)
    return {"item_id": item_id, "name": display_name(session, item_id),
            "strategy": session.served_as(item_id) or "manual",
            "score": None, "reason": reason,
            "suggestion": label_names(session, suggestion, item_id),
            "confidence": json_number(confidence), "suggested_by": session.suggested_by,
            "blame": session.blame_text(item_id), "given": label_now(session, item_id),
            "render": render(session, item_id), **task_fields(session, item_id)}


def task_fields(session, item_id: str) -> dict:
    """A spans item's text, tokens and their unit; a boxes item's image size (nothing in other
    sessions)."""
    if is_spans(session):
        return text_fields(session, item_id)
    return box_fields(session, item_id) if is_boxes(session) else {}


def label_now(session, item_id: str) -> str | list[str] | None:
    """The item's current label, as the browser gets it (a review item shows what it keeps)."""
    return label_names(session, session.label_of(item_id), item_id)


def is_multi_label(session) -> bool:
    return getattr(session, "task", SINGLE) == MULTI_LABEL


def label_names(session, label, item_id: str | None = None) -> str | list | None:
    """A label as the browser gets it: a class name; in a multi-label session the list of the
    set's class names, in class order; in a spans session the spans of item `item_id`'s text,
    `[start, end, label]` in UTF-16 units; in a boxes session the boxes of item `item_id`'s image,
    `[x, y, w, h, label]` in its pixels. None: no label (or, multi-label, no set of classes: a
    one-class guess is nothing the browser could pre-select)."""
    if label is None:
        return None
    if is_spans(session):
        return spans_to_browser(session, label, item_id)
    if is_boxes(session):
        return boxes_to_browser(session, label, item_id)
    if not is_multi_label(session):
        return str(label)
    if not (is_collection(label) or (isinstance(label, str) and label.startswith("["))):
        return None
    return [str(c) for c in label_set(label, session.class_by_name)]


def display_name(session, item_id: str) -> str:
    """What the item is called on screen: its id, less a class folder that would tell
    the labeler the answer (`Pool.display_name`); the store keeps the full id."""
    return session.pool.display_name(item_id)


def render(session, item_id: str) -> dict:
    """How to draw the item; a failure becomes an "error" rendering that says why."""
    try:
        return session.pool.render(item_id)
    except Exception as e:  # one broken item must not stop labeling: show it, skip it
        return {"kind": "error", "reason": f"{type(e).__name__}: {e}"}


def json_number(value):
    """A float for JSON: None for missing or NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
