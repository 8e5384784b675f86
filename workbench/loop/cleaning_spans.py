"""Suspected mislabels in a spans pool: one row per span given, and per span left out.

A text's spans can be wrong in three ways: a span with the wrong label, one with the wrong
boundaries, or a name left unmarked. Each labeled text is scored by a tagger that never
trained on it (k-fold cross-fitting of a clone of the session's learner over the labeled
texts, on the pool's token features):

- a span given is as suspicious as the held-out tagger is unsure of it: 1 - p, where p is the
  smallest probability the tagger gives the span's own tags (`B-PER` on its first token,
  `I-PER` on the others) over its tokens; what the tagger marks there instead is `suggested`;
- a span the held-out tagger marks where the label has none is a span left out, as suspicious
  as the tagger is sure of it (the smallest top-tag probability over its tokens).

The rows come most suspicious first, so the top is what to look at: "text 12: 'Acme Bank'
given PER, the held-out tagger says ORG (p of PER 0.04)". The folds run in this process.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import clone

from workbench.data.spans import SpanList, bio_tags, overlaps, spans_from_bio
from workbench.loop.cleaning_folds import labeled_for_folds
from workbench.loop.span_rounds import pool_features

COLUMNS = ["item_id", "kind", "start", "end", "words", "given", "suggested", "p_held_out", "suspicion",
           "fold"]
GIVEN, LEFT_OUT = "given", "left out"


def span_suspects(session, k: int | None = None, *, folds: int = 5) -> pd.DataFrame:
    """Every span of the session's labels, and every span a held-out tagger marks that the
    labels leave out, most suspicious first (the first `k`): `kind` "given" or "left out";
    `start`, `end` and `words` the stretch; `given` its label in the store (None when left
    out); `suggested` what the held-out tagger marks there ("PER", "12-22 PER" for other
    boundaries, None for nothing); `p_held_out` the probability that tagger gives the span as
    labeled (given) or as it marks it (left out); `suspicion` 1 - p for a span given, p for
    one left out; `fold` the fold the text was held out in."""
    labels, item_ids = labeled_for_folds(session, folds, items="labeled texts", scorer="a tagger")
    features = pool_features(session)
    positions = session.pool.positions(item_ids)
    fold = np.random.default_rng(session.seed).permutation(len(item_ids)) % folds
    rows = []
    for f in range(folds):
        held = np.flatnonzero(fold == f)
        train = np.flatnonzero(fold != f)
        tagger = clone(session.learner).fit_spans(features, positions[train],
                                                  [labels[item_ids[i]] for i in train])
        proba = tagger.token_proba(features, positions[held])
        at = 0
        for i in held:
            position = positions[i]
            n = int(features.starts[position + 1] - features.starts[position])
            rows += _rows(item_ids[i], features.texts[position], labels[item_ids[i]],
                          proba[at:at + n], tagger, features.tokens[position], f)
            at += n
    table = pd.DataFrame(rows, columns=COLUMNS)
    table = table.sort_values(["suspicion", "item_id", "start"], ascending=[False, True, True],
                              kind="stable", ignore_index=True)
    return table if k is None else table.head(int(k))


def _rows(item_id: str, text: str, given: SpanList, proba: np.ndarray, tagger, toks, fold: int) -> list:
    """The suspects table's rows of one held-out text."""
    names = tagger.tag_names_
    predicted = spans_from_bio(toks, [names[j] for j in proba.argmax(axis=1)]) if len(toks) else SpanList()
    _, tags = bio_tags(text, given)
    top = proba.max(axis=1) if len(toks) else np.empty(0)
    rows = []
    for span in given:
        inside = [j for j, (a, b) in enumerate(toks) if a < span.end and span.start < b]
        # the probability of the span's own tags; a tag the tagger does not know has none
        p = min((proba[j, names.index(tags[j])] if tags[j] in names else 0.0 for j in inside), default=1.0)
        there = [s for s in predicted if overlaps(s, span)]
        if not there:
            suggested = None
        elif len(there) == 1 and (there[0].start, there[0].end) == (span.start, span.end):
            suggested = there[0].label
        else:
            suggested = ", ".join(f"{s.start}-{s.end} {s.label}" for s in there)
        rows.append([item_id, GIVEN, span.start, span.end, text[span.start:span.end], span.label,
                     suggested, float(p), 1.0 - float(p), fold])
    for span in predicted:
        if any(overlaps(span, g) for g in given):
            continue
        inside = [j for j, (a, b) in enumerate(toks) if a < span.end and span.start < b]
        p = float(top[inside].min()) if inside else 0.0
        rows.append([item_id, LEFT_OUT, span.start, span.end, text[span.start:span.end], None,
                     span.label, p, p, fold])
    return rows
