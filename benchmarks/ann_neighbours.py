"""More neighbours in the approximate graph at 1,000,000 items: does it close the labels-to-95%
gap to 50,000 items (issue 20)?

`benchmarks/ann_label_efficiency.py` found 34 labels to 95% at 1,000,000 items with the
default graph (10 neighbours an item) against 25 on the first 50,000 with the exact graph;
`ann_graph_kind.py` found neither the graph's kind nor a pool of 200,000 explains it. In this
stand-in, N items hold about N / 1,257 jittered copies of each original digit, so at 1M an
item's 10 nearest neighbours are mostly copies of its own original, and label spreading
travels little further. This builds the approximate graph again with `--k` neighbours over
the same features (the 1M representation `at_scale.py --cache` left behind) and runs the
same `simulate` as ann_label_efficiency.py (same seeds, budget, held-out images).

    .venv/bin/python benchmarks/ann_neighbours.py [--k 30] [--seeds 5] [--cache /tmp/wb-scale/cache]

Writes benchmarks/results/ann_neighbours.json. This measurement (run 2026-12-07 with 20
spreading steps, the code of 682108c) is why a pool above the exact-search size now gets 30
neighbours an item, spread over in 10 steps (`workbench.data.neighbors.WIDE_NEIGHBORS`);
`benchmarks/graph_neighbours.py` is why pools of exact size keep 10.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import at_scale  # noqa: E402  the dataset and its held-out split
from ann_label_efficiency import one_run  # noqa: E402  the same simulate call
from report import machine, now, save  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/wb-scale")
    parser.add_argument("--cache", default="/tmp/wb-scale/cache")
    parser.add_argument("--k", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=200)
    args = parser.parse_args()

    from workbench import Pool
    from workbench.data.neighbors import nearest_neighbors
    from workbench.data.representation import cache_at, fingerprint, method_of

    folder = Path(args.dir) / "digits28-1000000"
    X_test, y_test = at_scale.write_dataset(folder, 1_000_000)
    pool = Pool.from_parquet(folder, label_column="label")
    pool.X_test, pool.y_test = X_test, y_test
    rep = cache_at(Path(args.cache)).get(fingerprint(pool, method_of(None, pool)))
    if rep is None:
        raise SystemExit(f"no representation of {folder} in {args.cache}: run benchmarks/at_scale.py "
                         f"--cache {args.cache} first")
    started = time.perf_counter()
    neighbors, weights = nearest_neighbors(rep.features, k=args.k)
    graph_s = time.perf_counter() - started
    cache = Path(args.cache).with_name(f"{Path(args.cache).name}-k{args.k}")
    cache_at(cache).put(dataclasses.replace(rep, neighbors=neighbors, weights=weights, from_cache=False))
    runs = []
    for seed in range(args.seeds):
        runs.append({"k": args.k, **one_run(pool, seed, args.budget, cache)})
        print({key: v for key, v in runs[-1].items() if key != "curve"}, flush=True)
    report = {"date": now(),
              "machine": machine(),
              "pool": "1,000,000 jittered 28x28 digits (at_scale.py), its cached representation's features",
              "graph_s": round(graph_s, 1), "seeds": f"0-{args.seeds - 1}; nothing tuned",
              "summary": {f"labels_to_{t}": [r[f"labels_to_{t}"] for r in runs] for t in (90, 95)},
              "runs": runs}
    save("ann_neighbours.json", report, load_average_at_end=True)
    print(json.dumps(report["summary"]))


if __name__ == "__main__":
    main()
