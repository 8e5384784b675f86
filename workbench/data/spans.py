"""Text spans: what one label of a "spans" pool is (named entities and other marked stretches
of a text), and the rules every part of the workbench reads it by.

A span is `(start, end, label)`: `text[start:end]` in Unicode code points (what Python's `str`
indexes), whatever a browser counts; JavaScript strings count UTF-16 units, so an emoji before
a span shifts its offsets by one there (jupyter-annotate #3): `utf16_to_code_points` and
`code_points_to_utf16` convert at the edge. A label is a `SpanList`, its spans in text order;
`str()` is how the store holds it: JSON with a schema version,
`{"v": 1, "spans": [[0, 5, "PER"], ...]}`, so a later version can read an old log.

Spans may overlap only where the pool allows it (`overlapping=True`): nested entities, or
annotations of different kinds over one stretch. The same span given twice never is.
"""

from __future__ import annotations

import bisect
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from workbench.data.tasks import versioned_parts

SCHEMA_VERSION = 1
TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)  # words, and each mark of punctuation on its own


class Span(NamedTuple):
    """`text[start:end]` (code points) marked as `label`."""

    start: int
    end: int
    label: str


class SpanList(tuple):
    """The spans of one text, ordered by (start, end, label); empty: nothing is marked.
    `str()` is how the store holds it (JSON with the schema version)."""

    __slots__ = ()

    def __str__(self) -> str:
        return json.dumps({"v": SCHEMA_VERSION, "spans": [[s.start, s.end, s.label] for s in self]},
                          ensure_ascii=False)

    def __repr__(self) -> str:
        return f"SpanList({[tuple(s) for s in self]!r})"

    def describe(self, text: str | None = None) -> str:
        """The spans in a few words: `0-5 PER "Alice"` each (the words when `text` is given)."""
        return "; ".join(describe_span(s, text) for s in self) or "no spans"


def describe_span(span: Span, text: str | None = None) -> str:
    words = f' "{text[span.start:span.end]}"' if text is not None else ""
    return f"{span.start}-{span.end} {span.label}{words}"


def _loaded(value: str) -> list:
    """The store's JSON (either schema: the versioned object, or a bare list)."""
    example = json.dumps({"v": SCHEMA_VERSION, "spans": [[0, 5, "PER"]]})
    return versioned_parts(value, "spans", SCHEMA_VERSION, example)


def _one_span(raw, i: int) -> tuple:
    if isinstance(raw, Mapping):
        missing = [k for k in ("start", "end", "label") if k not in raw]
        if missing:
            raise ValueError(f"span {i} {dict(raw)!r} has no {', '.join(missing)}; a span is "
                             "(start, end, label) or {'start': .., 'end': .., 'label': ..}")
        if extra := [k for k in raw if k not in ("start", "end", "label")]:
            raise ValueError(f"span {i} {dict(raw)!r} has keys {extra} besides start, end and "
                             "label; a span is (start, end, label) or {'start': .., 'end': .., "
                             "'label': ..}")
        return raw["start"], raw["end"], raw["label"]
    if isinstance(raw, (str, bytes)) or not isinstance(raw, Sequence) or len(raw) != 3:
        raise ValueError(f"span {i} is {raw!r}; a span is (start, end, label), offsets in code points")
    return tuple(raw)


def _offset(value, what: str, span) -> int:
    if isinstance(value, np.integer):  # numpy's whole numbers, not arrays of them
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"span {span!r}: {what} {value!r} is not a whole number (an offset in "
                         "code points)")
    return value


def span_list(value, text: str, labels: Sequence[str], *, overlapping: bool = False) -> SpanList:
    """The SpanList a label names: a list of `(start, end, label)` (tuples, lists or dicts), or
    the JSON the store holds. A ValueError that names the span and what was expected for a span
    outside the text, one with start >= end, a label not among `labels`, the same span twice,
    or spans that overlap when the pool does not allow it."""
    if isinstance(value, str):
        value = _loaded(value)
    if isinstance(value, Mapping) or not isinstance(value, Sequence) or isinstance(value, bytes):
        raise ValueError(f"a spans pool takes a list of (start, end, label) spans for each label "
                         f"(none, one or several), got {type(value).__name__} {value!r}")
    known = set(labels)
    spans = []
    for i, raw in enumerate(value):
        start, end, label = _one_span(raw, i)
        shown = (start, end, label)
        start, end = _offset(start, "start", shown), _offset(end, "end", shown)
        if not isinstance(label, str):
            raise ValueError(f"span {shown!r}: label {label!r} is not a string (one of the labels "
                             f"{list(labels)})")
        label = str(label)
        if not 0 <= start < end <= len(text):
            why = "start >= end" if start >= end else f"outside the text (0-{len(text)} code points)"
            raise ValueError(f"span {shown!r} is {why}; a span is text[start:end], 0 <= start < end "
                             f"<= {len(text)}")
        if not text[start:end].strip():
            raise ValueError(f"span {shown!r} covers only whitespace ({text[start:end]!r}); a span "
                             "marks at least one word or mark of punctuation")
        if label not in known:
            raise ValueError(f"span {shown!r} has label {label!r}, which is not among the labels "
                             f"{list(labels)}")
        spans.append(Span(start, end, label))
    spans.sort(key=lambda s: (s.start, s.end, list(labels).index(s.label)))
    for a, b in zip(spans, spans[1:]):
        if a == b:
            raise ValueError(f"span {tuple(a)!r} is given twice")
        if not overlapping and b.start < a.end:
            raise ValueError(f"spans {tuple(a)!r} and {tuple(b)!r} overlap, and this pool's spans "
                             "may not (open it with overlapping=True to allow nested spans)")
    return SpanList(spans)


def overlaps(a: Span, b: Span) -> bool:
    return a.start < b.end and b.start < a.end


# -- offsets: code points here, UTF-16 units in the browser -------------------------------------
def utf16_to_code_points(text: str, offset: int) -> int:
    """The code-point offset of a UTF-16 offset into `text` (what a browser's selection gives)."""
    units = 0
    for i, ch in enumerate(text):
        if units >= offset:
            return i
        units += 2 if ord(ch) > 0xFFFF else 1
    return len(text)


def code_points_to_utf16(text: str, offset: int) -> int:
    """The UTF-16 offset of a code-point offset into `text` (what a browser's string counts)."""
    return offset + sum(1 for ch in text[:offset] if ord(ch) > 0xFFFF)


# -- tokens: where a selection snaps, and what the default model labels ---------------------------
def tokens(text: str) -> list[tuple[int, int]]:
    """`(start, end)` of each word and each mark of punctuation, in code points. A combining
    mark (an accent written apart, a Devanagari vowel sign or virama, an emoji's variation
    selector) belongs to the token before it, and a zero-width joiner or non-joiner joins the
    tokens on both sides (an emoji sequence, a Persian word): a word is never cut inside a
    character as a reader sees it."""
    out: list[list[int]] = []
    for m in TOKEN.finditer(text):
        start, end = m.span()
        if out and out[-1][1] == start and _joins(text, out[-1], start):
            out[-1][1] = end
        else:
            out.append([start, end])
    return [(a, b) for a, b in out]


_JOINERS = "\u200c\u200d"  # zero-width non-joiner, joiner


def _mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"


def _joins(text: str, before: list[int], start: int) -> bool:
    """Whether the token at `start` belongs to the token `before` that ends there."""
    first, last = text[start], text[start - 1]
    if _mark(first) or first in _JOINERS or last in _JOINERS:
        return True
    # a letter after a mark carries on the word the mark is in (Devanagari: "हि" + "न्दी")
    return _mark(last) and (first.isalnum() or first == "_") and not _mark(text[before[0]])


def snap(text: str, start: int, end: int) -> tuple[int, int] | None:
    """`(start, end)` widened to whole tokens (a selection that cuts a word takes all of it);
    None when it covers no token (only spaces)."""
    toks = tokens(text)
    inside = [t for t in toks if t[0] < end and start < t[1]]
    if not inside:
        return None
    return inside[0][0], inside[-1][1]


def bio_tags(text: str, spans: Sequence[Span]) -> tuple[list[tuple[int, int]], list[str]]:
    """The text's tokens and a BIO tag for each (`B-PER`, `I-PER`, `O`): the form token
    classifiers learn and CoNLL files hold. Where spans overlap, the first (in text order)
    wins: BIO cannot say more. A span that ends inside a token tags the whole token."""
    toks = tokens(text)
    tags = ["O"] * len(toks)
    starts = [t[0] for t in toks]
    for span in sorted((Span(*s) for s in spans), key=lambda s: (s.start, s.end)):
        first = max(bisect.bisect_right(starts, span.start) - 1, 0)
        covered = [j for j in range(first, len(toks)) if toks[j][0] < span.end and span.start < toks[j][1]]
        if not covered or any(tags[j] != "O" for j in covered):
            continue
        tags[covered[0]] = f"B-{span.label}"
        for j in covered[1:]:
            tags[j] = f"I-{span.label}"
    return toks, tags


def spans_from_bio(toks: Sequence[tuple[int, int]], tags: Sequence[str]) -> SpanList:
    """The spans a BIO tagging marks (an `I-X` after `O` or another label starts a span, as
    conlleval reads it)."""
    spans, current = [], None
    for (start, end), tag in zip(toks, tags):
        kind, _, label = tag.partition("-")
        if kind == "I" and current is not None and current[2] == label:
            current[1] = end
            continue
        if current is not None:
            spans.append(Span(*current))
            current = None
        if kind in ("B", "I") and label:
            current = [start, end, label]
    if current is not None:
        spans.append(Span(*current))
    return SpanList(sorted(spans, key=lambda s: (s.start, s.end, s.label)))


# -- scores --------------------------------------------------------------------------------------
def span_scores(truth: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]],
                labels: Sequence[str] | None = None) -> dict:
    """Exact-match span precision, recall and F1 over all texts (micro: every span counts
    once; a span with the right words and the wrong label, or one token too many, is a miss),
    and F1 per label. NaN where there is nothing to divide by."""
    if len(truth) != len(predicted):
        raise ValueError(f"{len(truth)} true span lists against {len(predicted)} predicted ones")
    per: dict[str, list[int]] = {}
    for t, p in zip(truth, predicted):
        t, p = set(map(tuple, t)), set(map(tuple, p))
        for span in t | p:
            counts = per.setdefault(span[2], [0, 0, 0])  # true positives, predicted, true
            counts[0] += span in t and span in p
            counts[1] += span in p
            counts[2] += span in t
    tp, n_pred, n_true = (sum(c[k] for c in per.values()) for k in range(3))
    out = _prf(tp, n_pred, n_true)
    names = list(labels) if labels is not None else sorted(per)
    out["f1_per_label"] = {name: _prf(*per.get(name, [0, 0, 0]))["f1"] for name in names}
    out["n_true"], out["n_predicted"] = n_true, n_pred
    return out


def _prf(tp: int, n_pred: int, n_true: int) -> dict:
    nan = float("nan")
    precision = tp / n_pred if n_pred else nan
    recall = tp / n_true if n_true else nan
    if n_pred == 0 and n_true == 0:
        f1 = nan
    else:
        f1 = 2 * tp / (n_pred + n_true)
    return {"precision": precision, "recall": recall, "f1": f1}


def ground_truth_spans(y, texts: Sequence[str], labels: Sequence[str] | None, *, overlapping: bool,
                       what: str = "y") -> tuple:
    """A spans pool's ground truth (a list of span lists, one per text) as an object array of
    SpanLists, and the labels: `labels` as given, else those found, sorted. A ValueError
    naming the item (`what[i]`) for a row that is not a valid span list of its text."""
    rows = list(y)
    if len(rows) != len(texts):
        raise ValueError(f"{what} has {len(rows)} span lists for {len(texts)} texts; expected one per text")
    if labels is None:
        found = set()
        for row in rows:
            if isinstance(row, Sequence) and not isinstance(row, (str, bytes)):
                for raw in row:
                    try:
                        found.add(str(_one_span(raw, 0)[2]))
                    except ValueError:  # told with its row below
                        continue
        labels = sorted(found)
    out = np.empty(len(rows), dtype=object)
    for i, (row, text) in enumerate(zip(rows, texts)):
        try:
            out[i] = span_list(row, text, labels, overlapping=overlapping)
        except ValueError as e:
            raise ValueError(f"{what}[{i}]: {e}") from None
    return out, [str(c) for c in labels]
