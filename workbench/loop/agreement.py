"""Agreement between annotators, from the label log: who labeled what, and how often they agree.

When a team labels one store with an overlap (`Session(..., overlap=0.1)`), a share of the
items is served to two annotators. Each annotator's own latest label of an item is their
*annotation* (adjudications are left out: they settle disagreements, they are not another
opinion). From the annotations:

- Cohen's kappa for every pair of annotators, over the items both labeled
  (scikit-learn's `cohen_kappa_score`);
- Krippendorff's alpha over everyone, nominal level (the `krippendorff` package); for the
  sets of a multi-label store, with the MASI distance (Passonneau 2006) between two sets, so
  that ["odd", "big"] against ["odd"] counts as a near miss, not as a different label (kappa
  and the consensus still compare whole sets); and for each pair, `class_kappa`: Cohen's kappa
  of each class's yes/no decision over the items both labeled, averaged over the classes
  either of them used (a class nobody used, or everyone used on every item, has no kappa);
- each annotator's agreement with the consensus of the others (the majority label of the
  other annotators of the item; items without a majority are left out);
- the items whose annotations disagree: the adjudication queue (`Session.adjudicate()`).

Span lists (a "spans" store, `task="spans"`) are compared span by span instead:

- for every pair, span F1 over the texts both labeled (exact match: same start, end and label;
  micro, every span counts once; one annotator taken as the truth, which F1 does not depend
  on), in the column `span_f1`; NaN where neither marked a span. Cohen's kappa over whole span
  lists would count one missed span as a different label of the whole text: `cohen_kappa` is
  NaN for spans;
- alpha is NaN: Krippendorff's unitizing alpha, or a nominal alpha over characters, needs the
  texts (how much was left unmarked), which the log does not hold;
- each annotator's agreement with the consensus is their span F1 against the spans a majority
  (more than half) of the other annotators of the same texts marked;
- the disagreements are the texts whose annotators' span lists differ.

A span label the log holds that is not a span list (a raw write outside a session) is left out,
with a warning, as a session leaves it out.

Box lists (a "boxes" store, `task="boxes"`) are compared box by box, by box F1 at IoU 0.5 and
the mean IoU of the boxes that pair up (workbench.loop.box_agreement).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from workbench.data.spans import span_scores
from workbench.data.tasks import BOXES, MULTI_LABEL, SINGLE, SPANS
from workbench.loop.box_agreement import BOX_COLUMNS, box_figures
from workbench.store import views

ADJUDICATION = "adjudication"
PAIR_COLUMNS = ["annotator_a", "annotator_b", "n_items", "cohen_kappa"]
SET_COLUMNS = ["class_kappa"]  # of each pair of a multi-label store, after those of every task
PER_COLUMNS = ["annotator", "n_items", "agreement_with_consensus"]
DISAGREEMENT_COLUMNS = ["item_id", "labels", "n_annotators"]
log = logging.getLogger(__name__)


def annotations(events: pd.DataFrame) -> pd.DataFrame:
    """item_id, annotator, label: each annotator's latest label of each item, from a log of
    events (`store.events()`); undone events, skips and removals count as no label."""
    undone = views.retracted_ids(events)
    live = events[events["action"].isin(views.EFFECTIVE).to_numpy()
                  & ~events["event_id"].isin(undone).to_numpy()
                  & (events["query"].fillna("") != ADJUDICATION).to_numpy()]
    last = live.sort_values(views.ORDER).drop_duplicates(["item_id", "annotator"], keep="last")
    last = last[last["action"].isin(views.LABELING).to_numpy()]
    return last[["item_id", "annotator", "label"]].reset_index(drop=True)


def masi(a: set, b: set) -> float:
    """The MASI distance of two sets: 1 - Jaccard x (1 equal, 2/3 one inside the other, 1/3
    overlapping, 0 apart); 0 for two empty sets."""
    if a == b:
        return 0.0
    monotone = 2 / 3 if a <= b or b <= a else (1 / 3 if a & b else 0.0)
    return 1.0 - len(a & b) / len(a | b) * monotone


def masi_metric(values: list[str]):
    """A krippendorff distance over these set labels (JSON lists), by their codes (indices)."""
    sets = [set(json.loads(v)) for v in values]
    table = np.array([[masi(a, b) for b in sets] for a in sets])

    def distance(v1, v2, i1, i2, n_v, dtype=np.float64):
        return table[i1, i2].astype(dtype)
    return distance


@dataclass
class Agreement:
    """Agreement figures for a team (see the module doc)."""

    pairs: pd.DataFrame          # annotator_a, annotator_b, n_items, cohen_kappa (+ class_kappa
                                 # for sets, span_f1 for spans, or box_f1 and mean_iou)
    alpha: float                 # Krippendorff's alpha (nominal), NaN with too few overlaps
                                 # and for spans and boxes
    n_items: int                 # items labeled by two or more annotators
    per_annotator: pd.DataFrame  # annotator, n_items, agreement_with_consensus
    disagreements: pd.DataFrame  # item_id, labels ({annotator: label}), n_annotators

    def __repr__(self) -> str:
        return (f"Agreement({self.n_items} items labeled twice or more, alpha={self.alpha:.3f}, "
                f"{len(self.pairs)} pairs, {len(self.disagreements)} disagreements)")


def agreement(events: pd.DataFrame, *, task: str = SINGLE, sets: bool = False) -> Agreement:
    """Agreement figures from a log of events (`store.events()`) of a store labeled for `task`
    ("single", "multi_label", "spans" or "boxes"). A "multi_label" store's labels are sets (JSON
    lists), compared with the MASI distance for alpha; `sets=True` says the same as
    `task="multi_label"`. A "spans" store's labels are span lists, compared by span F1 (see the
    module doc); a "boxes" store's are box lists, compared by box F1 at IoU 0.5
    (workbench.loop.box_agreement)."""
    if sets:
        task = MULTI_LABEL
    if task not in (SINGLE, MULTI_LABEL, SPANS, BOXES):
        raise ValueError(f"agreement of {task!r} labels is not available; expected 'single', "
                         "'multi_label', 'spans' or 'boxes'")
    table = annotations(events).pivot(index="item_id", columns="annotator", values="label")
    if task == SPANS:
        return span_agreement(table)
    if task == BOXES:
        figures = box_figures(table)
        return Agreement(pd.DataFrame(figures["pairs"], columns=[*PAIR_COLUMNS, *BOX_COLUMNS]), np.nan,
                         figures["n_items"], pd.DataFrame(figures["per"], columns=PER_COLUMNS),
                         _disagreements(table.loc[figures["split"]]))
    return _class_agreement(table, sets=task == MULTI_LABEL)


def _class_agreement(table: pd.DataFrame, *, sets: bool) -> Agreement:
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    shared = table[table.notna().sum(axis=1) >= 2]
    pairs = []
    for a, b in combinations(sorted(table.columns), 2):
        both = table[[a, b]].dropna()
        kappa = (cohen_kappa_score(both[a], both[b]) if len(both) >= 2 and
                 (both[a].nunique() > 1 or both[b].nunique() > 1) else np.nan)
        pairs.append({"annotator_a": a, "annotator_b": b, "n_items": len(both),
                      "cohen_kappa": float(kappa),
                      **({"class_kappa": class_kappa(both[a], both[b])} if sets else {})})
    alpha = np.nan
    if len(shared) >= 2 and shared.stack().nunique() > 1:
        values = sorted(shared.stack().unique())
        codes = {label: k for k, label in enumerate(values)}
        matrix = shared.T.apply(lambda column: column.map(codes)).to_numpy(dtype=float)
        level = masi_metric(values) if sets else "nominal"
        alpha = float(krippendorff.alpha(reliability_data=matrix, level_of_measurement=level))
    per = []
    for annotator in table.columns:
        mine = shared[shared[annotator].notna()]
        agree = []
        for _, row in mine.iterrows():
            others = row.drop(annotator).dropna().value_counts()
            if len(others) and (len(others) == 1 or others.iloc[0] > others.iloc[1]):
                agree.append(row[annotator] == others.index[0])
        per.append({"annotator": annotator, "n_items": len(mine),
                    "agreement_with_consensus": float(np.mean(agree)) if agree else np.nan})
    split = shared[shared.apply(lambda row: row.dropna().nunique() > 1, axis=1)]
    return Agreement(pd.DataFrame(pairs, columns=PAIR_COLUMNS + (SET_COLUMNS if sets else [])), alpha,
                     len(shared), pd.DataFrame(per, columns=PER_COLUMNS), _disagreements(split))


def class_kappa(a: pd.Series, b: pd.Series) -> float:
    """The mean over classes of Cohen's kappa between two annotators' yes/no decisions of each
    class (set labels as the store holds them, JSON lists), over the classes where the kappa
    is defined (both answered both ways between them); NaN with fewer than 2 items or none."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) < 2:
        return np.nan
    sets_a, sets_b = [set(json.loads(v)) for v in a], [set(json.loads(v)) for v in b]
    kappas = []
    for c in sorted(set().union(*sets_a, *sets_b), key=str):
        yes_a, yes_b = [c in x for x in sets_a], [c in x for x in sets_b]
        if len(set(yes_a) | set(yes_b)) > 1:  # a class both always (or never) give has no kappa
            kappas.append(cohen_kappa_score(yes_a, yes_b))
    return float(np.mean(kappas)) if kappas else np.nan


def _disagreements(split: pd.DataFrame) -> pd.DataFrame:
    """item_id, labels ({annotator: label as the store holds it}), n_annotators."""
    return pd.DataFrame(
        [{"item_id": item, "labels": row.dropna().to_dict(), "n_annotators": int(row.notna().sum())}
         for item, row in split.iterrows()], columns=DISAGREEMENT_COLUMNS)


# -- spans ----------------------------------------------------------------------------------------
def span_set(label: str) -> frozenset:
    """The `(start, end, label)` spans of a span label as the store holds it (the versioned
    JSON, `{"v": 1, "spans": [[0, 5, "PER"], ...]}`, or a bare list of triples); a ValueError
    for anything else."""
    try:
        data = json.loads(label)
    except (TypeError, json.JSONDecodeError):
        raise ValueError(f"label {label!r} is not the JSON of a list of spans") from None
    if isinstance(data, dict):
        data = data.get("spans") if data.get("v") == 1 else None
    if not isinstance(data, list):
        raise ValueError(f"label {label!r} is not a list of spans")
    spans = set()
    for raw in data:
        if isinstance(raw, dict):
            raw = [raw.get("start"), raw.get("end"), raw.get("label")]
        if not isinstance(raw, list) or len(raw) != 3 or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in raw[:2]):
            raise ValueError(f"label {label!r} holds {raw!r}, which is not a (start, end, label) span")
        spans.add((raw[0], raw[1], str(raw[2])))
    return frozenset(spans)


def _span_table(table: pd.DataFrame) -> pd.DataFrame:
    """The annotations' span sets (NaN where none, or where the label is not a span list)."""
    def parse(item_id, label):
        if not isinstance(label, str):
            return np.nan
        try:
            return span_set(label)
        except ValueError as error:
            log.warning("agreement leaves out the label of item %r: %s", item_id, error)
            return np.nan
    return pd.DataFrame({who: [parse(item, label) for item, label in table[who].items()]
                         for who in table.columns}, index=table.index, dtype=object)


def _f1(truth: list, predicted: list) -> float:
    return float(span_scores(truth, predicted)["f1"])


def _majority(span_sets: list) -> frozenset:
    """The spans more than half of these span sets hold."""
    counts: dict = {}
    for spans in span_sets:
        for span in spans:
            counts[span] = counts.get(span, 0) + 1
    return frozenset(span for span, n in counts.items() if n > len(span_sets) / 2)


def span_agreement(table: pd.DataFrame) -> Agreement:
    """Agreement of span lists, from the annotations pivoted to items x annotators (labels as
    the store holds them); see the module doc."""
    spans = _span_table(table)
    shared = spans[spans.notna().sum(axis=1) >= 2]
    pairs = []
    for a, b in combinations(sorted(spans.columns), 2):
        both = spans[[a, b]].dropna()
        pairs.append({"annotator_a": a, "annotator_b": b, "n_items": len(both),
                      "cohen_kappa": np.nan,
                      "span_f1": _f1(list(both[a]), list(both[b])) if len(both) else np.nan})
    per = []
    for annotator in spans.columns:
        mine = shared[shared[annotator].notna()]
        consensus = [_majority(list(row.drop(annotator).dropna())) for _, row in mine.iterrows()]
        per.append({"annotator": annotator, "n_items": len(mine),
                    "agreement_with_consensus": _f1(consensus, list(mine[annotator])) if len(mine)
                    else np.nan})
    split = shared[shared.apply(lambda row: len(set(row.dropna())) > 1, axis=1)]
    return Agreement(pd.DataFrame(pairs, columns=[*PAIR_COLUMNS, "span_f1"]), np.nan, len(shared),
                     pd.DataFrame(per, columns=PER_COLUMNS),
                     _disagreements(table.loc[split.index]))
