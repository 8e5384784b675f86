"""Graph kind or pool size? What makes the 1M pool need more labels to 95% than 50k (issue 20).

`benchmarks/ann_label_efficiency.py` found the default learner needs about 34 labels to 95%
on 1,000,000 items with the approximate graph, against about 25 on the first 50,000 of them
with the exact graph. That compares two things at once. This script separates them on the
same items, each arm with one representation (encoder fitted on the pool itself, as a
session fits it), 20 cold-start labels then batches of 10, the same 2,000 held-out images:

- **exact-50k / ann-50k**: the first 50,000 items, the same features, the exact graph
  (scikit-learn, what pools up to 50,000 get) against the approximate one (faiss IVF-Flat,
  what pools above get): graph kind alone.
- **ann-200k**: the first 200,000 items, the approximate graph: pool size alone, beside
  ann-50k.

And a property of the data that grows with pool size: the stand-in jitters 1,257 originals
(the 70% of scikit-learn's 1,797 digits not held out), so N items hold about N / 1,257
copies of each original. The share of graph neighbours that are copies of an item's own
original is reported per arm: neighbours that are copies carry no label to other originals.

    .venv/bin/python benchmarks/ann_graph_kind.py [--dir /tmp/wb-scale] [--seeds 10]

Writes the dataset under --dir (the first rows of at_scale.py's, row for row) and
benchmarks/results/ann_graph_kind.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import at_scale  # noqa: E402  the dataset and its held-out split
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402


def originals(rows: int, seed: int = 0) -> np.ndarray:
    """Which original digit each of the first `rows` pool items is a jittered copy of: the
    order `standins.digits_28` draws for each file of `at_scale.write_dataset`."""
    from sklearn.model_selection import train_test_split

    _, y = standins.digits_base()
    pool_idx, _ = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=y)
    out = []
    for k, start in enumerate(range(0, rows, at_scale.ROWS_PER_FILE)):
        n = min(rows, start + at_scale.ROWS_PER_FILE) - start
        rng = np.random.default_rng(seed + 1 + k)
        order = np.concatenate([rng.permutation(len(pool_idx)) for _ in range(-(-n // len(pool_idx)))])[:n]
        out.append(pool_idx[order])
    return np.concatenate(out)


def run(pool, seed: int, budget: int, cache: Path) -> dict:
    from workbench import labels_to_reach, simulate

    started = time.perf_counter()
    curve = simulate(pool, budget=budget, batch=10, initial=20, seed=seed, stop_at=0.95, extra_rounds=1,
                     representation_cache=cache)
    return {"seed": seed, "labels_to_90": labels_to_reach(curve, 0.90),
            "labels_to_95": labels_to_reach(curve, 0.95),
            "curve": [[int(n), round(float(a), 4)] for n, a in zip(curve["n_labels"], curve["accuracy"])],
            "run_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/wb-scale")
    parser.add_argument("--small", type=int, default=50_000)
    parser.add_argument("--large", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=200)
    args = parser.parse_args()

    from workbench import Pool
    from workbench.data.neighbors import nearest_neighbors
    from workbench.data.representation import build, cache_at

    folder = Path(args.dir) / f"digits28-{args.large}"
    X_test, y_test = at_scale.write_dataset(folder, args.large)
    whole = Pool.from_parquet(folder, label_column="label")
    source = originals(args.large)
    assert np.array_equal(source_labels := standins.digits_base()[1][source], np.asarray(whole.y)), \
        "the recomputed originals do not match the dataset's labels"
    del source_labels
    report = {"date": now(),
              "machine": machine(),
              "pool": f"the first rows of at_scale.py's jittered 28x28 digits (benchmarks/standins.py), "
                      f"{len(set(source.tolist()))} originals",
              "test": f"{len(y_test):,} held-out images from other originals",
              "seeds": f"0-{args.seeds - 1}; nothing here was tuned", "arms": {}, "runs": []}

    with tempfile.TemporaryDirectory() as tmp:
        small = whole.subset(np.arange(args.small), name=f"digits28-first-{args.small}")
        arms, graphs, reps = [], {}, {}
        for pool, graph in ((small, "exact"), (small, "ann"), (whole, "ann")):
            pool.X_test, pool.y_test = X_test, y_test
            name = f"{graph}-{len(pool) // 1000}k"
            if id(pool) not in reps:  # one representation per pool: both 50k arms share features
                started = time.perf_counter()
                reps[id(pool)] = build(pool, max_graph_items=0), time.perf_counter() - started
            rep, features_s = reps[id(pool)]  # features only; the graph below, timed alone
            started = time.perf_counter()
            neighbors, weights = nearest_neighbors(
                rep.features, exact_max_items=len(pool) if graph == "exact" else 0)
            graph_s = time.perf_counter() - started
            cache = Path(tmp) / name
            cache_at(cache).put(dataclasses.replace(rep, neighbors=neighbors, weights=weights,
                                                    from_cache=False))
            mine = source[: len(pool)]
            report["arms"][name] = {
                "items": len(pool), "copies_per_original": round(len(pool) / len(set(mine.tolist())), 1),
                "features_s": round(features_s, 1), "graph_s": round(graph_s, 1),
                "share_of_neighbours_copies_of_the_same_original":
                    round(float((mine[neighbors] == mine[:, None]).mean()), 4),
                "share_of_neighbours_of_the_same_class":
                    round(float((np.asarray(pool.y)[neighbors] == np.asarray(pool.y)[:, None]).mean()), 4)}
            print(name, report["arms"][name], flush=True)
            arms.append((name, pool, cache))
            graphs[name] = neighbors
        exact, ann = graphs[f"exact-{args.small // 1000}k"], graphs[f"ann-{args.small // 1000}k"]
        report["ann_recall_at_10_against_exact_same_features"] = round(float(np.mean(
            [len(set(a) & set(e)) for a, e in zip(ann.tolist(), exact.tolist())])) / exact.shape[1], 4)
        print("recall", report["ann_recall_at_10_against_exact_same_features"], flush=True)
        for name, pool, cache in arms:
            for seed in range(args.seeds):
                row = {"arm": name, **run(pool, seed, args.budget, cache)}
                print({k: v for k, v in row.items() if k != "curve"}, flush=True)
                report["runs"].append(row)

    report["summary"] = {}
    for name, *_ in arms:
        mine = [r for r in report["runs"] if r["arm"] == name]
        report["summary"][name] = {
            **{f"labels_to_{t}": [r[f"labels_to_{t}"] for r in mine] for t in (90, 95)},
            **{f"labels_to_{t}_mean": round(statistics.mean(r[f"labels_to_{t}"] for r in mine), 1)
               for t in (90, 95)}}
    save("ann_graph_kind.json", report, load_average_at_end=True)
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
