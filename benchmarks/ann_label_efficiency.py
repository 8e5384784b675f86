"""Label efficiency with the approximate neighbour graph at 1,000,000 items against the
exact graph at 50,000 of the same items (issue 20).

Reuses what `benchmarks/at_scale.py --rows 1000000 --cache DIR` left behind: the Parquet
dataset of 1,000,000 jittered 28 x 28 digits and its representation (features from the
encoder fitted on a 50,000-item sample, and the faiss IVF-Flat graph), so neither is
built again here.

- **ann-1M**: `simulate` (the default learner and strategy, 20 cold-start labels then
  batches of 10) on the whole 1,000,000-item pool, with its approximate graph.
- **exact-50k**: the same on the first 50,000 items of that pool, with the same features
  (the rows of the 1M representation) and the exact graph of those 50,000 (brute force).
- **ann-1M-ranked-whole**: ann-1M with every unlabeled item ranked each round instead of a
  sample of 200,000 (`Ranker.max_ranked`): what the ranked sample costs in labels.

Both are scored on the same 2,000 held-out images (other originals than the pool's). Seeds
vary the run (cold start, tie breaks), not the data. Labels to 90% and 95% accuracy per seed.

    .venv/bin/python benchmarks/ann_label_efficiency.py [--dir /tmp/wb-scale] [--cache /tmp/wb-scale/cache]
        [--rebuild-graph NEW_CACHE]

`--rebuild-graph`: the 1M graph built again, on the same features, by this workbench's
`workbench.data.ann` (a cache made before 2026-12-07 holds faiss IVF-Flat's graph).

Writes benchmarks/results/ann_label_efficiency.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import at_scale  # noqa: E402  the dataset and its held-out split
from report import machine, now, save  # noqa: E402

EXACT_ITEMS = 50_000


def one_run(pool, seed: int, budget: int, cache: Path) -> dict:
    from workbench import labels_to_reach, simulate

    started = time.perf_counter()
    curve = simulate(pool, budget=budget, batch=10, initial=20, seed=seed, stop_at=0.95, extra_rounds=1,
                     representation_cache=cache)
    return {"seed": seed, "items": len(pool),
            "labels_to_90": labels_to_reach(curve, 0.90), "labels_to_95": labels_to_reach(curve, 0.95),
            "curve": [[int(n), round(float(a), 4)] for n, a in zip(curve["n_labels"], curve["accuracy"])],
            "run_s": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/wb-scale")
    parser.add_argument("--cache", default="/tmp/wb-scale/cache")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--exact-items", type=int, default=EXACT_ITEMS, help="(a smaller trial run)")
    parser.add_argument("--rebuild-graph", metavar="CACHE", default=None,
                        help="build the 1M graph again with this workbench's code (same features), "
                             "keep it in CACHE and run on it")
    args = parser.parse_args()

    from workbench import Pool
    from workbench.data.neighbors import nearest_neighbors
    from workbench.data.representation import cache_at, fingerprint, method_of

    n_exact = args.exact_items

    folder = Path(args.dir) / f"digits28-{args.rows}"
    X_test, y_test = at_scale.write_dataset(folder, args.rows)  # already there: only the test split
    big = Pool.from_parquet(folder, label_column="label")
    big.X_test, big.y_test = X_test, y_test
    rep = cache_at(Path(args.cache)).get(fingerprint(big, method_of(None, big)))
    if rep is None or not rep.has_graph:
        raise SystemExit(f"no representation with a graph of {folder} in {args.cache}: run "
                         f"benchmarks/at_scale.py --rows {args.rows} --cache {args.cache} first")

    rebuilt = {}
    if args.rebuild_graph:  # the same features, the graph of workbench/data/ann.py as it is now
        started = time.perf_counter()
        neighbors, weights = nearest_neighbors(rep.features)
        same = float(np.mean([len(set(a) & set(b)) / len(a) for a, b in zip(neighbors[:20_000],
                                                                            rep.neighbors[:20_000])]))
        rebuilt = {"graph_rebuilt_s": round(time.perf_counter() - started, 1),
                   "rebuilt_graph_shares_of_the_cached_graphs_neighbours_first_20000": round(same, 4)}
        print(rebuilt, flush=True)
        rep = dataclasses.replace(rep, neighbors=neighbors, weights=weights, from_cache=False)
        args.cache = args.rebuild_graph
        cache_at(Path(args.cache)).put(rep)

    small = big.subset(np.arange(n_exact), name="digits-28x28-first-50k")
    small.X_test, small.y_test = X_test, y_test
    started = time.perf_counter()
    neighbors, weights = nearest_neighbors(rep.features[:n_exact])  # exact at this size
    exact_s = time.perf_counter() - started
    ann_rows = rep.neighbors[:n_exact]
    inside = ann_rows < n_exact  # how many of the 1M graph's neighbours lie among the 50k
    small_cache = Path(args.cache) / "exact-50k"
    cache_at(small_cache).put(dataclasses.replace(
        rep, features=np.ascontiguousarray(rep.features[:n_exact]), neighbors=neighbors,
        weights=weights, fingerprint=fingerprint(small, method_of(None, small)), from_cache=False))

    report = {"date": now(),
              "machine": machine(),
              "pool": f"{args.rows:,} jittered 28x28 digits (benchmarks/standins.py) as Parquet; "
                      f"exact-50k: its first {n_exact:,} items, same features",
              "test": f"{len(y_test):,} held-out images from other originals",
              "exact_graph_50k_s": round(exact_s, 1),
              "share_of_1M_graph_neighbours_inside_the_50k": round(float(inside.mean()), 4),
              **rebuilt, "runs": []}
    from workbench.loop.ranking import MAX_RANKED, Ranker

    kinds = (("exact-50k", small, small_cache, MAX_RANKED), ("ann-1M", big, Path(args.cache), MAX_RANKED),
             # the same, every unlabeled item ranked each round: what the ranked sample costs
             ("ann-1M-ranked-whole", big, Path(args.cache), len(big)))
    for kind, pool, cache, max_ranked in kinds:
        Ranker.max_ranked = max_ranked
        for seed in range(args.seeds):
            row = {"graph": kind, **one_run(pool, seed, args.budget, cache)}
            print({k: v for k, v in row.items() if k != "curve"}, flush=True)
            report["runs"].append(row)
    Ranker.max_ranked = MAX_RANKED
    report["summary"] = {
        kind: {f"labels_to_{t}": [r[f"labels_to_{t}"] for r in report["runs"] if r["graph"] == kind]
               for t in (90, 95)} for kind, *_ in kinds}
    name = "ann_label_efficiency.json" if args.rows == 1_000_000 else f"ann_label_efficiency_{args.rows}.json"
    save(name, report, load_average_at_end=True)
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
