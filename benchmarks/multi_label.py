"""Multi-label label efficiency: micro-F1 by labels, the default strategy against random.

Two data sets, both built offline (benchmarks/standins.py), each with a test set made of
other originals than the pool's, which no strategy sees:

1. "bbc-digests": news digests of 1-3 BBC News article leads (../shared/data/bbc-news.csv),
   labeled with the set of their categories (5 classes); 3,000 pool and 1,000 test items.
2. "digit-pairs": two of scikit-learn's bundled 8 x 8 digits side by side, labeled with the
   set of digits shown (10 classes); 3,000 pool and 1,000 test items.

Every run is `workbench.simulate` on a `task="multi_label"` pool: 20 labels from the
session's cold start (a random sample for the random strategy), then batches of 10, scored
on the test set after each round. The default learner (`MultiLabelHead`, one-vs-rest on the
pool's representation) is used throughout; its settings were chosen on seeds 0-2 of random
labels on both sets (see its docstring), the strategies were not tuned. The yardstick is the
issue's: labels to reach 90% of the micro-F1 the same learner reaches with the whole pool
labeled, default against random (<= 0.6x wanted), with the spread over seeds.

    python benchmarks/multi_label.py [--seeds 5] [--budget 400]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

from workbench import Pool, simulate  # noqa: E402
from workbench.data.tasks import indicator  # noqa: E402
from workbench.learn.metrics import multi_label_scores  # noqa: E402
from workbench.learn.multilabel import MultiLabelHead  # noqa: E402

CHECKPOINTS = (50, 100, 200)


def make_pool(data: str, seed: int) -> Pool:
    """The pool (with its test set as X_test / y_test) of one data set and seed."""
    if data == "bbc-digests":
        texts, sets, test_texts, test_sets = standins.bbc_digests(3000, seed=seed)
        both = Pool.from_texts(texts + test_texts, sets + test_sets, task="multi_label",
                               name="bbc-digests")  # one vocabulary for pool and test
        pool = both.subset(np.arange(len(texts)))
        pool.X_test, pool.y_test = both.X[len(texts):], both.y[len(texts):]
        return pool
    X, sets, X_test, test_sets = standins.digit_pairs(3000, seed=seed)
    return Pool.from_arrays(X, sets, X_test=X_test, y_test=test_sets, task="multi_label",
                            name="digit-pairs")


def full_pool_micro_f1(pool: Pool, seed: int) -> float:
    """The default learner trained on every pool label, on the pool's representation."""
    import tempfile

    from workbench import Session

    with tempfile.TemporaryDirectory() as tmp:
        session = Session(pool, f"{tmp}/s", resume=False, watch=False, seed=seed)
        try:
            rep = session.representation()
            names = session.class_names
            head = MultiLabelHead(classes=names, random_state=seed)
            head.fit(rep.features, indicator(pool.y, names))
            predicted = head.predict(rep.transform(pool.X_test))
            return multi_label_scores(indicator(pool.y_test, names), predicted, names)["micro_f1"]
        finally:
            session.close()


def labels_to(curve: pd.DataFrame, target: float) -> float:
    hit = curve.loc[curve["micro_f1"] >= target, "n_labels"]
    return float(hit.iloc[0]) if len(hit) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=400)
    parser.add_argument("--data", nargs="+", default=["bbc-digests", "digit-pairs"])
    parser.add_argument("--strategies", nargs="+", default=["diverse_uncertainty", "random"])
    args = parser.parse_args()
    started = time.time()
    runs, report = [], {"date": now(),
                        "machine": machine(),
                        "protocol": __doc__.split("\n\n")[2].replace("\n", " "), "data": {}}
    for data in args.data:
        for seed in range(args.seeds):
            pool = make_pool(data, seed)
            full = full_pool_micro_f1(pool, seed)
            for strategy in args.strategies:
                t = time.time()
                curve = simulate(pool, strategy=strategy, budget=args.budget, batch=10, initial=20, seed=seed)
                row = {"data": data, "seed": seed, "strategy": strategy, "full_pool_micro_f1": full,
                       "labels_to_90pct_of_full": labels_to(curve, 0.9 * full),
                       "run_s": round(time.time() - t, 1)}
                for n in CHECKPOINTS:
                    at = curve.loc[curve["n_labels"] == n]
                    for metric in ("micro_f1", "macro_f1", "hamming_loss", "accuracy"):
                        row[f"{metric}_at_{n}"] = float(at[metric].iloc[0]) if len(at) else float("nan")
                runs.append(row)
                print(json.dumps(row), flush=True)
    frame = pd.DataFrame(runs)
    for data, part in frame.groupby("data"):
        full = part.groupby("seed")["full_pool_micro_f1"].first()
        summary = {"full_pool_micro_f1_mean": round(float(full.mean()), 4)}
        for strategy, rows in part.groupby("strategy"):
            summary[strategy] = {
                **{f"micro_f1_at_{n}": {"mean": round(float(rows[f"micro_f1_at_{n}"].mean()), 4),
                                        "min": round(float(rows[f"micro_f1_at_{n}"].min()), 4),
                                        "max": round(float(rows[f"micro_f1_at_{n}"].max()), 4)}
                   for n in CHECKPOINTS},
                "labels_to_90pct_of_full": {"median": float(rows["labels_to_90pct_of_full"].median()),
                                            "per_seed": rows["labels_to_90pct_of_full"].tolist()}}
        default, baseline = args.strategies[0], "random"
        if default in summary and baseline in summary:
            a = summary[default]["labels_to_90pct_of_full"]["median"]
            b = summary[baseline]["labels_to_90pct_of_full"]["median"]
            summary["ratio_default_to_random_labels_to_90pct"] = round(a / b, 3) if b == b and b else None
        report["data"][data] = summary
    report["runs"] = runs
    report["seconds"] = round(time.time() - started)
    save("multi_label.json", report, load_average_at_end=True)
    print(json.dumps(report["data"], indent=2))


if __name__ == "__main__":
    main()
