"""Multi-label cleaning: do the suspects find planted errors in labels the queue chose?

Per seed: a digit-pairs pool (benchmarks/standins.py; 3,000 items, 10 classes), a session
with the default learner and strategy labels 300 items in the order its queue serves them
(ground truth as the person), then 15 of them (5%) get one class decision flipped, a digit
added or dropped. `session.suspects()` ranks all 3,000 (item, class) decisions; the figures
are the share of the top 15 that are planted (precision@15; a random ranking gives 15 / 3,000
= 0.005) and the share of the planted ones in the top 30.

    python benchmarks/multi_label_suspects.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

from workbench import Pool, Session  # noqa: E402

N_LABELS, N_PLANTED = 300, 15


def one_seed(seed: int) -> dict:
    X, sets, X_test, test_sets = standins.digit_pairs(3000, seed=seed)
    pool = Pool.from_arrays(X, sets, X_test=X_test, y_test=test_sets, task="multi_label")
    with tempfile.TemporaryDirectory() as tmp:
        session = Session(pool, f"{tmp}/labels", watch=False, seed=seed)
        try:
            while len(session.labels) < N_LABELS:
                for q in session.peek(20):
                    session.label(q, pool.true_label(q.item_id))
                session.retrain()
            rng = np.random.default_rng(seed)
            planted = set()
            for item_id in rng.choice(sorted(session.labels), N_PLANTED, replace=False):
                truth, flip = pool.true_label(item_id), int(rng.integers(10))
                session.label(item_id, [c for c in truth if c != flip] if flip in truth else [*truth, flip])
                planted.add((item_id, str(flip)))
            table = session.suspects()
        finally:
            session.close()
    pairs = [(i, str(c)) for i, c in zip(table["item_id"], table["class"])]
    return {"seed": seed, "decisions": len(pairs),
            "precision_at_15": len(set(pairs[:15]) & planted) / N_PLANTED,
            "recall_at_30": len(set(pairs[:30]) & planted) / N_PLANTED}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for seed in range(args.seeds):
        runs.append(one_seed(seed))
        print(json.dumps(runs[-1]), flush=True)
    frame = pd.DataFrame(runs)
    report = {"date": now(),
              "machine": machine(),
              "protocol": " ".join(__doc__.split("\n\n")[0:2]).replace("\n", " "),
              "precision_at_15": {"mean": round(float(frame["precision_at_15"].mean()), 3),
                                  "min": float(frame["precision_at_15"].min()),
                                  "max": float(frame["precision_at_15"].max())},
              "recall_at_30": {"mean": round(float(frame["recall_at_30"].mean()), 3)},
              "random_ranking_precision": N_PLANTED / (N_LABELS * 10), "runs": runs}
    save("multi_label_suspects.json", report)
    print(json.dumps({k: report[k] for k in ("precision_at_15", "recall_at_30")}))


if __name__ == "__main__":
    main()
