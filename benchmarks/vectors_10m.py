"""10,000,000 vectors of 64 dimensions as a partitioned Parquet dataset (issue 20): opening
it, its representation, a round at 100 and at 1,000 labels, and the memory of this process.

The vectors: a seeded mixture of 10 classes (each class a Gaussian around its own mean; the
means close enough that the classes overlap, so accuracy is not trivially 100%), float32 in
a fixed-size list column, 500,000 rows a file, row groups of 100,000. A held-out split of
5,000 vectors from the same mixture (never in the pool) scores the rounds.

The neighbour graph is NOT built at this size here: the representation is built with
`max_graph_items=0` and put in the cache where the session finds it, so the rounds run the
light head without label spreading. Why: faiss IVF-Flat at 1,000,000 items took about 10
minutes on this 2-core machine (benchmarks/results/ann_graph.json), and its cost grows
about as N^1.5 (sqrt(N) lists, each query scanning a fixed number of them), so 10,000,000
would take roughly 30 times that: hours. What it would cost is stated in the results, as
an estimate, not a measurement.

    .venv/bin/python benchmarks/vectors_10m.py [--rows 10000000] [--dir /tmp/wb-vectors]

Writes benchmarks/results/vectors_10m.json (vectors_<rows>.json for other sizes).
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
from at_scale import rounds_at, rss_mb  # noqa: E402
from report import machine, now, save  # noqa: E402

DIM, CLASSES = 64, 10
ROWS_PER_FILE, ROW_GROUP = 500_000, 100_000


def mixture(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    means = np.random.default_rng(12345).normal(0, 0.45, (CLASSES, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    X = rng.standard_normal((n, DIM), dtype=np.float32)
    X += means[y]
    return X, y


def write_dataset(folder: Path, rows: int) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    test = mixture(5_000, seed=999_999)
    done = folder / "DONE"
    if done.exists() and int(done.read_text()) == rows:
        return test
    folder.mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        stop = min(rows, start + ROWS_PER_FILE)
        X, y = mixture(stop - start, seed=k)
        table = pa.table({
            "item_id": [f"v-{i:08d}" for i in range(start, stop)],
            "label": pa.array(y.astype(np.int64)),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(X.reshape(-1)), DIM),
        })
        pq.write_table(table, folder / f"part-{k:03d}.parquet", row_group_size=ROW_GROUP)
        print(f"wrote {stop:,} of {rows:,} rows", flush=True)
    done.write_text(str(rows))
    return test


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dir", default="/tmp/wb-vectors")
    args = parser.parse_args()

    from workbench import Pool, Session
    from workbench.data.representation import build, cache_at

    report = {"date": now(),
              "machine": machine(),
              "rows": args.rows, "dim": DIM, "classes": CLASSES}

    def log(key, value):
        report[key] = value
        print(key, json.dumps(value), flush=True)

    folder = Path(args.dir) / f"vectors-{args.rows}"
    started = time.perf_counter()
    X_test, y_test = write_dataset(folder, args.rows)
    log("dataset_ready_s", round(time.perf_counter() - started, 1))
    log("dataset_bytes_on_disk", sum(f.stat().st_size for f in folder.glob("*.parquet")))
    log("rss_before_open_mb", rss_mb())
    started = time.perf_counter()
    pool = Pool.from_parquet(folder, label_column="label")
    log("open_s", round(time.perf_counter() - started, 2))
    log("rss_after_open_mb", rss_mb())
    y = np.asarray(pool.y)

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        started = time.perf_counter()
        rep = build(pool, max_graph_items=0)  # no graph at this size: see the module notes
        cache_at(cache).put(rep)
        log("representation", {"build_s": round(time.perf_counter() - started, 1),
                               "features": list(rep.features.shape), "has_graph": rep.has_graph})
        del rep
        log("rss_after_representation_mb", rss_mb())
        started = time.perf_counter()
        session = Session(pool, Path(tmp) / "labels", test=(X_test, y_test), watch=False,
                          representation_cache=cache)
        session.representation()
        log("session_ready_s", round(time.perf_counter() - started, 2))
        for n in (100, 1000):
            log(f"round_at_{n}_labels", rounds_at(session, y, n))
        started = time.perf_counter()
        served = [session.next() for _ in range(20)]
        log("next_after_round_ms_mean", round(1000 * (time.perf_counter() - started) / len(served), 2))
        log("rss_end_mb", rss_mb())
        session.close()
    report["graph_not_built"] = (
        "faiss IVF-Flat at 1,000,000 items took ~10 minutes on this machine and grows ~N^1.5, "
        "so ~5 hours at 10,000,000 (an estimate, not measured); rounds here run without label "
        "spreading")
    name = "vectors_10m.json" if args.rows == 10_000_000 else f"vectors_{args.rows}.json"
    save(name, report, load_average_at_end=True)


if __name__ == "__main__":
    main()
