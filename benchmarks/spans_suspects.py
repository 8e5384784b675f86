"""Cleaning spans: how many planted span errors `suspects()` puts at the top, on labels chosen
by active learning.

Per seed: the entities set (workbench/data/entity_texts.py, 600 texts), 200 labels given
with the ground truth to the texts the session's queue serves (batches of 20, retrained
after each), then 10 planted errors in 10 texts of two or more spans: five spans get a wrong
label, five are removed (a name left out). `suspects()` (5 folds) ranks every span given and
every span a held-out tagger marks that the labels leave out. Reported: how many planted
errors are among the top 10 and top 20 rows, what a random order would hold, and the seconds
`suspects()` took.

    python benchmarks/spans_suspects.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

from workbench import Session, Span
from workbench.data.entity_texts import LABELS, entities


def one_seed(seed: int) -> dict:
    pool, _ = entities(600, n_test=10, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        session = Session(pool, Path(folder) / "store", watch=False, seed=seed)
        while len(session.labels) < 200:
            for item in session.peek(20):
                session.label(item, pool.true_label(item.item_id))
            session.retrain()
        rng = np.random.default_rng(seed)
        docs = sorted(i for i in session.labels if len(session.labels[i]) >= 2)
        planted = set()
        for j, doc in enumerate(rng.choice(docs, 10, replace=False)):
            spans = list(session.labels[doc])
            k = int(rng.integers(len(spans)))
            if j % 2 == 0:
                wrong = [x for x in LABELS if x != spans[k].label][int(rng.integers(2))]
                spans[k] = Span(spans[k].start, spans[k].end, wrong)
                planted.add((doc, "given", spans[k].start))
            else:
                planted.add((doc, "left out", spans.pop(k).start))
            session.label(doc, spans)
        started = time.perf_counter()
        table = session.suspects()
        seconds = time.perf_counter() - started
        session.close()
    keys = [(r.item_id, r.kind, r.start) for r in table.itertuples()]
    return {"seed": seed, "rows": len(table), "planted": len(planted),
            "in_top_10": len(planted & set(keys[:10])), "in_top_20": len(planted & set(keys[:20])),
            "random_order_expects_in_top_20": round(len(planted) * 20 / len(table), 3),
            "suspects_s": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for seed in range(args.seeds):
        runs.append(one_seed(seed))
        print(json.dumps(runs[-1]), flush=True)
    report = {"date": now(),
              "machine": machine(),
              "protocol": " ".join(__doc__.split("\n\n")[1].split()), "runs": runs}
    save("spans_suspects.json", report, load_average_at_end=True)


if __name__ == "__main__":
    main()
