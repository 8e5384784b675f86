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
  and the consensus still compare whole sets);
- each annotator's agreement with the consensus of the others (the majority label of the
  other annotators of the item; items without a majority are left out);
- the items whose annotations disagree: the adjudication queue (`Session.adjudicate()`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from workbench.store import views

ADJUDICATION = "adjudication"


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

    pairs: pd.DataFrame          # annotator_a, annotator_b, n_items, cohen_kappa
    alpha: float                 # Krippendorff's alpha (nominal), NaN with too few overlaps
    n_items: int                 # items labeled by two or more annotators
    per_annotator: pd.DataFrame  # annotator, n_items, agreement_with_consensus
    disagreements: pd.DataFrame  # item_id, labels ({annotator: label}), n_annotators

    def __repr__(self) -> str:
        return (f"Agreement({self.n_items} items labeled twice or more, alpha={self.alpha:.3f}, "
                f"{len(self.pairs)} pairs, {len(self.disagreements)} disagreements)")


def agreement(events: pd.DataFrame, *, sets: bool = False) -> Agreement:
    """Agreement figures from a log of events (`store.events()`); `sets`: the labels are
    multi-label sets (JSON lists), compared with the MASI distance for alpha."""
    import krippendorff
    from sklearn.metrics import cohen_kappa_score

    table = annotations(events).pivot(index="item_id", columns="annotator", values="label")
    shared = table[table.notna().sum(axis=1) >= 2]
    pairs = []
    for a, b in combinations(sorted(table.columns), 2):
        both = table[[a, b]].dropna()
        kappa = (cohen_kappa_score(both[a], both[b]) if len(both) >= 2 and
                 (both[a].nunique() > 1 or both[b].nunique() > 1) else np.nan)
        pairs.append({"annotator_a": a, "annotator_b": b, "n_items": len(both),
                      "cohen_kappa": float(kappa)})
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
    disagreements = pd.DataFrame(
        [{"item_id": item, "labels": row.dropna().to_dict(), "n_annotators": int(row.notna().sum())}
         for item, row in split.iterrows()], columns=["item_id", "labels", "n_annotators"])
    return Agreement(pd.DataFrame(pairs, columns=["annotator_a", "annotator_b", "n_items",
                                                  "cohen_kappa"]),
                     alpha, len(shared), pd.DataFrame(per, columns=["annotator", "n_items",
                                                                    "agreement_with_consensus"]),
                     disagreements)
