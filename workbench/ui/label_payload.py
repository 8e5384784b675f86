"""What the label widget sends the browser about one item: its payload.

An item goes out with everything the browser draws for it, so a key press shows the next
item without asking the kernel: its id and on-screen name, the role it is shown in
(`strategy`, which comes back with its label), why it is shown, the model's suggestion and
who made it, who gave the label it has now (`blame`) and that label (`given`), and how to draw
it (`render`: an image, a text, a table, or the reason it cannot be shown). Numbers are JSON
floats or None (never NaN).
"""

from __future__ import annotations

import math


def item_payload(session, q) -> dict:
    """An item the queue serves (`q`, from `session.peek` or `session.next`), in its role."""
    return {"item_id": q.item_id, "name": display_name(session, q.item_id), "strategy": q.strategy,
            "score": json_number(q.score), "reason": q.reason,
            "suggestion": None if q.suggestion is None else str(q.suggestion),
            "confidence": json_number(q.confidence), "suggested_by": session.suggested_by,
            "blame": session.blame_text(q.item_id), "given": label_now(session, q.item_id),
            "render": render(session, q.item_id)}


def returned_payload(session, item_id: str, *, reason: str) -> dict:
    """An item shown outside the queue order (brought back by undo), in its old role."""
    suggestion, confidence = session.suggest(item_id)
    return {"item_id": item_id, "name": display_name(session, item_id),
            "strategy": session.served_as(item_id) or "manual",
            "score": None, "reason": reason,
            "suggestion": None if suggestion is None else str(suggestion),
            "confidence": json_number(confidence), "suggested_by": session.suggested_by,
            "blame": session.blame_text(item_id), "given": label_now(session, item_id),
            "render": render(session, item_id)}


def label_now(session, item_id: str) -> str | None:
    """The item's current label, as a class name (a review item shows what it keeps)."""
    label = session.label_of(item_id)
    return None if label is None else str(label)


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
