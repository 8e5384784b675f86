"""Reviewing the labels of a spans or boxes pool: what `workbench.loop.review` does for one
class per item, done for labels that are lists of parts (the spans of a text, the boxes of an
image).

`suspects()` there has one row per part given and per part left out
(`workbench.loop.cleaning_spans`, `workbench.loop.cleaning_boxes`). A row is a doubt when the
held-out model disagrees with the label: a part given that it marks otherwise (another label,
other boundaries, nothing; for boxes, another class), or a part it finds that the label leaves
out. A review asks about items, not rows: an item's doubts make one review card, as
suspicious as its most suspicious doubt, with a reason that names them all, most suspicious
first ("'Accra' given ORG, the held-out tagger says LOC (p of ORG 0.001); 'Milan' left out
(the held-out tagger marks LOC, p 0.998)"). The card's suggestion is the item's label with
those doubts applied (what the held-out models would make of it); the widget starts the edit
from the item's own label, which the person keeps (a `confirm`) or fixes (a `relabel`).

A confirmed item is asked about again only on new evidence: its label changed since (the
confirmation no longer stands), or its suspicion rose by more than NEW_EVIDENCE (suspicion is
on a fixed 0-1 scale here, so the rise is absolute).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from workbench.data.boxes import box_list, image_size
from workbench.data.spans import span_list
from workbench.data.tasks import BOXES, SPANS

NEW_EVIDENCE = 0.1  # a confirmed item comes back when its suspicion rises by more than this
COLUMNS = ["item_id", "given", "suggested", "score", "confidence", "doubts", "reason"]
LEFT_OUT = "left out"  # the `kind` of a part the labels leave out (both suspects tables)


def doubts(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a spans or boxes suspects table the held-out model disagrees with, in its
    order (most suspicious first)."""
    disagree = [kind == LEFT_OUT or str(s) != str(g)
                for kind, g, s in zip(table["kind"], table["given"], table["suggested"])]
    return table[np.asarray(disagree, dtype=bool)]


def by_item(session, table: pd.DataFrame) -> pd.DataFrame:
    """One review card per item with a doubt, most suspicious first: `given` the item's label
    now (as the store holds it), `suggested` the label with the doubts applied (None when they
    do not make a valid label together), `score` the item's most suspicious doubt's suspicion,
    `confidence` None (each doubt's probability is in the reason), `doubts` how many rows
    it has, `reason` them all in words."""
    rows = []
    for item_id, group in doubts(table).groupby("item_id", sort=False):
        given = session.label_of(item_id)
        records = [{k: None if k in ("given", "suggested") and pd.isna(v) else v for k, v in r.items()}
                   for r in group.to_dict("records")]  # a part left out has no given label (not NaN)
        rows.append([item_id, None if given is None else str(given),
                     proposal(session, item_id, given, records), float(group["suspicion"].max()),
                     None, len(group), "; ".join(describe(session, r) for r in records)])
    out = pd.DataFrame(rows, columns=COLUMNS)
    return out.sort_values(["score", "item_id"], ascending=[False, True], kind="stable", ignore_index=True)


def still_open(score: float, then: dict | None) -> bool:
    """Whether a confirmed item is asked about again: only when its suspicion rose by more
    than NEW_EVIDENCE since (`then`: what the review said when it was confirmed)."""
    return then is not None and score > then["score"] + NEW_EVIDENCE


def describe(session, row: dict) -> str:
    """One doubt in words (what a person reads on the review card)."""
    if session.task == BOXES:
        from workbench.loop.cleaning_boxes import describe as describe_box

        return describe_box(row)
    words = f"'{row['words']}'"
    if row["kind"] == LEFT_OUT:
        return f"{words} left out (the held-out tagger marks {row['suggested']}, p {row['p_held_out']:.3g})"
    said = row["suggested"]
    says = ("marks nothing there" if said is None else
            f"says {said}" if said in session.class_names else f"marks {said} instead")
    return (f"{words} given {row['given']}, the held-out tagger {says} "
            f"(p of {row['given']} {row['p_held_out']:.3g})")


def proposal(session, item_id: str, given, records: list[dict]):
    """The item's label with its doubts applied: what the held-out models would make of it
    (a SpanList or BoxList), or None when the doubts do not make a valid label together."""
    try:
        if session.task == SPANS:
            return _spans_proposal(session, item_id, given, records)
        return _boxes_proposal(session, item_id, given, records)
    except (ValueError, KeyError, TypeError):
        return None


def _spans_proposal(session, item_id, given, records):
    spans = {(s.start, s.end, s.label) for s in (given or [])}
    for r in records:
        start, end = int(r["start"]), int(r["end"])
        if r["kind"] == LEFT_OUT:
            spans.add((start, end, str(r["suggested"])))
            continue
        spans.discard((start, end, r["given"]))
        said = r["suggested"]
        if said in session.class_names:
            spans.add((start, end, said))
        elif said:  # other boundaries: "12-22 PER, 23-30 LOC"
            for part in str(said).split(", "):
                where, label = part.split(" ", 1)
                a, b = where.split("-")
                spans.add((int(a), int(b), label))
    text = session.pool.text_of(item_id)
    return span_list(sorted(spans), text, session.class_names, overlapping=session.pool.overlapping)


def _boxes_proposal(session, item_id, given, records):
    boxes = [[b.x, b.y, b.w, b.h, b.label] for b in (given or [])]
    for r in records:
        if r["kind"] == LEFT_OUT:
            boxes.append([r["x"], r["y"], r["w"], r["h"], str(r["suggested"])])
            continue
        for b in boxes:
            if b[:5] == [r["x"], r["y"], r["w"], r["h"], r["given"]]:
                b[4] = str(r["suggested"])
                break
    width, height = image_size(session.pool, str(item_id))
    return box_list(boxes, width, height, session.class_names)
