"""The label widget in a spans session (`task == "spans"`): what it sends the browser about an
item's text and spans, and how it reads the spans the browser sends back.

The store counts offsets in Unicode code points (what Python's `str` indexes); the browser's
strings, its selections and `String.slice` count UTF-16 units, in which a character outside the
Basic Multilingual Plane (an emoji) is two (jupyter-annotate #3: an emoji shifted every span
after it). So the browser never counts code points: every offset it gets is in UTF-16 units
(the item's tokens, the model's spans, the spans the item has), every offset it sends back is
too, and both are converted here, at the edge, with `workbench.data.spans`.

Where a selection snaps is decided here as well: the browser gets the item's tokens
(`workbench.data.spans.tokens`: each word and each mark of punctuation) and widens a selection
to whole tokens with them, so the browser and the kernel never disagree on what a word is.

A spans label in the browser is a list of `[start, end, label]` (UTF-16 units, ordered as
the store orders them); `[]` marks nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from workbench.data.spans import (
    SpanList,
    code_points_to_utf16,
    span_list,
    tokens,
    utf16_to_code_points,
)
from workbench.data.tasks import SPANS

UNITS = "utf16"  # what the browser's offsets count


def is_spans(session) -> bool:
    return getattr(session, "task", None) == SPANS


def text_of(session, item_id: str) -> str:
    return session.pool.text_of(item_id)


def text_fields(session, item_id: str) -> dict:
    """What a spans item carries besides its rendering: its text exactly as its offsets count
    it, the tokens a selection snaps to (UTF-16 units) and the unit; {} when the item has no
    text (its rendering says why)."""
    try:
        text = text_of(session, item_id)
    except Exception:  # the rendering carries the reason; the item can still be skipped
        return {}
    return {"text": text, "units": UNITS,
            "tokens": [[code_points_to_utf16(text, s), code_points_to_utf16(text, e)]
                       for s, e in tokens(text)]}


def spans_to_browser(session, label, item_id: str) -> list[list] | None:
    """A spans label (a SpanList, or the JSON the store holds) as the browser gets it: a list of
    `[start, end, label]` in UTF-16 units. None for no label (or anything that is no span list
    of this item's text: nothing the browser could pre-annotate)."""
    if label is None:
        return None
    try:
        text = text_of(session, item_id)
        spans = label if isinstance(label, SpanList) else span_list(
            label, text, session.class_names, overlapping=session.pool.overlapping)
    except (ValueError, KeyError):
        return None
    return [[code_points_to_utf16(text, start), code_points_to_utf16(text, end), str(label)]
            for start, end, label in spans]


def spans_from_browser(session, value, item_id: str) -> SpanList:
    """The SpanList the browser's spans name (UTF-16 units, converted to code points here); a
    ValueError saying what was expected for anything else, and for spans the pool refuses (an
    overlap where it allows none, a label it does not have, an offset outside the text)."""
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        raise ValueError(f"a spans label is a list of [start, end, label] spans (offsets in UTF-16 "
                         f"units, as the browser counts; [] when nothing is marked), got "
                         f"{type(value).__name__} {value!r} for item {item_id!r}")
    text = text_of(session, item_id)
    length = code_points_to_utf16(text, len(text))
    spans = []
    for i, raw in enumerate(value):
        if isinstance(raw, (str, bytes, Mapping)) or not isinstance(raw, Sequence) or len(raw) != 3:
            raise ValueError(f"span {i} of item {item_id!r} is {raw!r}; a span from the browser "
                             "is [start, end, label] (UTF-16 units)")
        start, end, name = raw
        for what, offset in (("start", start), ("end", end)):
            if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= length:
                raise ValueError(f"span {i} of item {item_id!r} {list(raw)!r}: {what} {offset!r} is "
                                 f"not an offset into its text (0-{length} UTF-16 units)")
        spans.append((utf16_to_code_points(text, start), utf16_to_code_points(text, end), name))
    return span_list(spans, text, session.class_names, overlapping=session.pool.overlapping)
