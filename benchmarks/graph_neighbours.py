"""How many neighbours an item should have in the graph label spreading runs over, measured on
every pool kind the workbench has figures for (issue 20).

`benchmarks/ann_neighbours.py` found that at 1,000,000 jittered digits 30 neighbours an item
need 28 labels to 95% accuracy against 36 with the default 10. Before the default changes,
this asks what 30 (and 20) do where the product is used today: for each pool and seed the
representation is learned once (as a session learns it), then its graph is rebuilt over the
same features with k neighbours (exact search at these sizes; the Gaussian width follows k,
as `nearest_neighbors` sets it) and the same `simulate` (default learner and strategy, 20
cold-start labels, batches of 10, held-out test split) runs with it.

Pools, as in benchmarks/label_efficiency.py: the digits (scikit-learn's 1,797 8 x 8 images,
70/30 split per seed), the 28 x 28 stand-in (10,000 pool / 2,000 test jittered copies of
other originals, benchmarks/standins.py), the BBC News texts (../shared/data, 70/30 per
seed). Nothing here was tuned: the candidate values 20 and 30 come from the 1M run.

    .venv/bin/python benchmarks/graph_neighbours.py [--ks 10 20 30] [--jobs 2]

Writes benchmarks/results/graph_neighbours.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one process per core; threads would fight
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from label_efficiency import _pool  # noqa: E402  the same pools and splits
from report import machine, now, save  # noqa: E402

SEEDS = {"digits": 10, "standin": 5, "bbc": 10}
BUDGET = {"digits": 150, "standin": 200, "bbc": 150}


def pool_of(data: str, seed: int):
    """The pool and its test split, the split fixed by the seed."""
    pool = _pool(data, seed)
    if data == "digits":
        train, test = pool.train_test_split(0.3, seed=seed)
        train.X_test, train.y_test = test.X, test.y
        return train
    return pool


def one(args) -> list[dict]:
    """Every k for one pool and seed: the representation learned once, the graph per k."""
    data, seed, ks, cache_root = args
    import torch

    from workbench import labels_to_reach, simulate
    from workbench.data.neighbors import nearest_neighbors
    from workbench.data.representation import build, cache_at

    torch.set_num_threads(1)
    pool = pool_of(data, seed)
    rep = build(pool)
    rows = []
    for k in ks:
        started = time.perf_counter()
        neighbors, weights = nearest_neighbors(rep.features, k=k)
        graph_s = time.perf_counter() - started
        cache = Path(cache_root) / f"{data}-{seed}-k{k}"
        cache_at(cache).put(dataclasses.replace(rep, neighbors=neighbors, weights=weights, from_cache=False))
        started = time.perf_counter()
        curve = simulate(pool, budget=BUDGET[data], batch=10, initial=20, seed=seed,
                         representation_cache=cache)
        run_s = time.perf_counter() - started
        at = dict(zip(curve["n_labels"], zip(curve["accuracy"], curve["macro_f1"])))
        rows.append({"data": data, "seed": seed, "k": k,
                     "labels_to_90": labels_to_reach(curve, 0.90),
                     "labels_to_95": labels_to_reach(curve, 0.95),
                     **{f"accuracy_at_{n}": round(float(at[n][0]), 4) for n in (30, 50, 100) if n in at},
                     **{f"macro_f1_at_{n}": round(float(at[n][1]), 4) for n in (30, 100) if n in at},
                     "graph_s": round(graph_s, 2), "run_s": round(run_s, 1)})
        print({key: v for key, v in rows[-1].items()}, flush=True)
    return rows


def summarise(runs: list[dict], ks) -> dict:
    out = {}
    for data in SEEDS:
        mine = [r for r in runs if r["data"] == data]
        out[data] = {}
        for k in ks:
            these = sorted((r for r in mine if r["k"] == k), key=lambda r: r["seed"])
            entry = {}
            for key in ("labels_to_90", "labels_to_95", "accuracy_at_30", "accuracy_at_50",
                        "accuracy_at_100", "macro_f1_at_100"):
                values = [r.get(key) for r in these]
                reached = [v for v in values if v is not None]
                entry[key] = {"mean": round(float(np.mean(reached)), 4) if reached else None,
                              "by_seed": values}
                if key.startswith("labels_to"):
                    entry[key]["runs_reaching"] = f"{len(reached)} of {len(values)}"
            entry["run_s_mean"] = round(float(np.mean([r["run_s"] for r in these])), 1)
            out[data][f"k={k}"] = entry
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 20, 30])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--parts", nargs="+", default=list(SEEDS))
    args = parser.parse_args()
    os.environ.setdefault("WORKBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="wb-bench-cache-"))
    cache_root = tempfile.mkdtemp(prefix="wb-graph-k-")
    started = time.perf_counter()
    jobs = [(data, seed, args.ks, cache_root) for data in args.parts for seed in range(SEEDS[data])]
    runs = []
    with ProcessPoolExecutor(args.jobs) as ex:
        for rows in ex.map(one, jobs):
            runs.extend(rows)
    report = {"date": now(),
              "machine": machine(),
              "setup": "simulate: default learner and strategy, 20 cold-start labels, batches of 10; "
                       "per pool and seed one representation, its graph rebuilt with k neighbours",
              "budget": {d: BUDGET[d] for d in args.parts}, "seeds": {d: SEEDS[d] for d in args.parts},
              "tuned_on": "nothing: 20 and 30 come from the 1,000,000-item run (ann_neighbours.py)",
              "summary": summarise(runs, args.ks), "runs": runs,
              "runtime_s": round(time.perf_counter() - started)}
    save("graph_neighbours.json", report, load_average_at_end=True)
    print(json.dumps(report["summary"], indent=1))


if __name__ == "__main__":
    main()
