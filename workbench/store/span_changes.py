"""Label history of a "spans" store (workbench.data.spans): what changed inside one document's
span list, a three-way merge of it, and the check of a merge resolution.

The store holds a document's label as `str(SpanList)`, `{"v": 1, "spans": [[0, 5, "PER"]]}`;
it has no text, so offsets are checked only for what they can be checked without one (whole
numbers, `0 <= start < end`). A side's changes are the spans it removed and added since the
merge base, taken as edits: changes that overlap one another (a relabel is a removal and an
addition at one place; a boundary moved, one span replaced by an overlapping one) are one edit.
Two sides merge when every edit of one is either the same as an edit of the other or overlaps
none of the other's; anything else is a conflict the user resolves.

The store knows nothing of pools (the import contract in pyproject.toml), so the format is
read and written here as `workbench.data.spans` defines it: `str(SpanList)`, schema version 1.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

from workbench.store.part_merge import merge_parts

SCHEMA_VERSION = 1  # workbench.data.spans.SCHEMA_VERSION


class Span(NamedTuple):
    """`text[start:end]` (code points) marked as `label` (workbench.data.spans.Span)."""

    start: int
    end: int
    label: str


def overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


def overlap_matrix(a: Sequence[Span], b: Sequence[Span]) -> np.ndarray:
    """Which spans of `a` overlap which of `b` (share a code point): part_merge's test."""
    A = np.array([(s.start, s.end) for s in a], dtype=np.int64).reshape(-1, 2)
    B = np.array([(s.start, s.end) for s in b], dtype=np.int64).reshape(-1, 2)
    return (A[:, None, 0] < B[None, :, 1]) & (B[None, :, 0] < A[:, None, 1])


def dump(spans: Iterable[Span]) -> str:
    """The store's label for these spans (in the order given): `str(SpanList)`."""
    return json.dumps({"v": SCHEMA_VERSION, "spans": [[s.start, s.end, s.label] for s in spans]},
                      ensure_ascii=False)


def stored_spans(value, labels: Sequence[str] | None = None) -> tuple[Span, ...]:
    """The spans of a store label (its JSON, either schema: the versioned object or a bare
    list of triples) or of a list of `[start, end, label]`, in canonical order (by start, end,
    then the order of `labels`). A ValueError naming the value and the span for anything that
    is not one: offsets that are not whole numbers with 0 <= start < end, a label not among
    `labels` (when given), the same span twice."""
    data = value
    if isinstance(value, str):
        try:
            data = json.loads(value)
        except (ValueError, RecursionError):  # RecursionError: a list nested thousands deep
            raise ValueError(f"{value!r} is not the JSON of a span list (e.g. "
                             f'{{"v": {SCHEMA_VERSION}, "spans": [[0, 5, "PER"]]}})') from None
        if isinstance(data, dict):
            version, extra = data.get("v"), sorted(set(data) - {"v", "spans"})
            if type(version) is not int or version != SCHEMA_VERSION or extra or \
                    not isinstance(data.get("spans"), list):
                raise ValueError(f"{value!r} is not a span list of schema version {SCHEMA_VERSION} "
                                 f'({{"v": {SCHEMA_VERSION}, "spans": [[start, end, label], ...]}}'
                                 f"{f', no fields {extra}' if extra else ''})")
            data = data["spans"]
    if isinstance(data, (str, bytes, Mapping)) or not isinstance(data, Sequence):
        raise ValueError(f"{value!r} is not a list of [start, end, label] spans")
    spans = [_span(raw, value, labels) for raw in data]
    if len(set(spans)) != len(spans):
        twice = next(s for s in spans if spans.count(s) > 1)
        raise ValueError(f"{value!r} gives span {list(twice)!r} twice")
    return canonical(spans, labels)


def _span(raw, value, labels: Sequence[str] | None) -> Span:
    if isinstance(raw, Mapping):
        if extra := [k for k in raw if k not in ("start", "end", "label")]:
            raise ValueError(f"{value!r}: span {dict(raw)!r} has keys {extra} besides start, end "
                             "and label")
        raw = (raw.get("start"), raw.get("end"), raw.get("label"))
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) != 3:
        raise ValueError(f"{value!r}: span {raw!r} is not [start, end, label]")
    start, end, label = (v.item() if isinstance(v, np.generic) else v for v in raw)  # numpy numbers too
    for offset in (start, end):
        if isinstance(offset, bool) or not isinstance(offset, int):
            raise ValueError(f"{value!r}: span {list(raw)!r} has offset {offset!r}, not a whole "
                             "number (code points)")
    if not 0 <= start < end:
        raise ValueError(f"{value!r}: span {list(raw)!r} needs 0 <= start < end")
    if not isinstance(label, str):
        raise ValueError(f"{value!r}: span {list(raw)!r} has label {label!r}, not a string")
    if labels is not None and label not in labels:
        raise ValueError(f"{value!r}: span {list(raw)!r} has label {label!r}, which is not among "
                         f"the labels {list(labels)}")
    return Span(start, end, label)


def canonical(spans: Iterable[Span], labels: Sequence[str] | None = None) -> tuple[Span, ...]:
    """The spans sorted as a SpanList is: by start, end, then the order of `labels` (labels not
    among them after, by name)."""
    order = {name: i for i, name in enumerate(labels or [])}
    return tuple(sorted(spans, key=lambda s: (s.start, s.end, order.get(s.label, len(order)), s.label)))


def parse(value) -> tuple[Span, ...] | None:
    """The spans of a store label (None: no label, read as no spans), or None when the value is
    not a span list."""
    if value is None:
        return ()
    if not (isinstance(value, str) and value.lstrip().startswith(("{", "["))):
        return None
    try:
        return stored_spans(value)
    except ValueError:
        return None


def inside(before, after) -> str | None:
    """What changed inside a document's span list, in words: `span 12-19 PER -> ORG` (a label
    changed), `span 12-19 -> 12-22 PER` (a boundary moved), `+span 0-5 PER`, `-span 30-34 LOC`,
    in text order; None when a side is not a span list (or neither side is one)."""
    if before is None and after is None:
        return None
    was, now = parse(before), parse(after)
    if was is None or now is None:
        return None
    removed = [s for s in was if s not in now]
    added = [s for s in now if s not in was]
    words = []  # (where, phrase)
    for same in (lambda r, a: (r.start, r.end) == (a.start, a.end),
                 lambda r, a: r.label == a.label and overlaps(r, a)):
        for r in list(removed):
            a = next((a for a in added if same(r, a)), None)
            if a is None:
                continue
            removed.remove(r)
            added.remove(a)
            if r.label != a.label:
                words.append(((r.start, r.end), f"span {r.start}-{r.end} {r.label} -> {a.label}"))
            else:
                words.append(((min(r.start, a.start), r.end),
                              f"span {r.start}-{r.end} -> {a.start}-{a.end} {r.label}"))
    words += [((s.start, s.end), f"+span {s.start}-{s.end} {s.label}") for s in added]
    words += [((s.start, s.end), f"-span {s.start}-{s.end} {s.label}") for s in removed]
    return ", ".join(phrase for _, phrase in sorted(words, key=lambda w: w[0]))


def merge_spans(base, ours, theirs, classes: Sequence[str] | None = None) -> str | None:
    """The three-way merge of a document's span list (store labels): every edit either side
    made since `base`, when no edit of one side overlaps a different edit of the other (an edit
    both sides made counts once), as the canonical `str(SpanList)` (`dump`); None for a
    conflict (edits that overlap, a side with no label, a document unlabeled in `base`, a value
    that is not a span list)."""
    if ours == theirs:
        return ours
    if base is None or ours is None or theirs is None:
        return None
    lists = [parse(value) for value in (base, ours, theirs)]
    if any(spans is None for spans in lists):
        return None
    merged = merge_parts(*(set(spans) for spans in lists), overlap_matrix)
    if merged is None:
        return None
    return dump(canonical(merged, classes))

