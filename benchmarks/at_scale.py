"""A pool of a million 28 x 28 images as a partitioned Parquet dataset, on a 2-worker Dask
LocalCluster: the figures of issue 20.

1. Writes the dataset once: `--rows` distinct jittered digits (benchmarks/standins.py, every
   image its own jitter; the originals of the held-out split never appear in the pool),
   uint8 pixels in a fixed-size list column, 20,000 rows a file, row groups of 5,000.
2. The ratio of building the representation on the cluster to building it in this process,
   on the same first `--compare-rows` items, in the same run (and that the two agree).
3. A Session over the whole dataset with `cluster=client`: opening it, the representation of
   every item built on the cluster (and its neighbour graph), a round at 100 and at 1,000
   labels, `next()` + `label()` latencies while a round trains in the background, and the
   resident memory of this process (the notebook's: the workers are processes of their own).

    .venv/bin/python benchmarks/at_scale.py [--rows 1000000] [--dir /tmp/wb-scale]

Writes benchmarks/results/at_scale.json (at_scale_<rows>.json for other sizes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

ROWS_PER_FILE, ROW_GROUP = 20_000, 5_000


def rss_mb() -> dict:
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    return {k: round(int(status[k].split()[0]) / 1024, 1) for k in ("VmRSS", "VmHWM")}


def write_dataset(folder: Path, rows: int, seed: int = 0):
    """The pool as Parquet files, and a held-out split (in memory) from other originals."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.model_selection import train_test_split

    images, y = standins.digits_base()
    pool_idx, test_idx = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed,
                                          stratify=y)
    X_test, y_test = standins.digits_28(images[test_idx], y[test_idx], 2_000, seed + 10_000)
    done = folder / "DONE"
    if done.exists() and int(done.read_text()) == rows:
        return X_test, y_test
    folder.mkdir(parents=True, exist_ok=True)
    for k, start in enumerate(range(0, rows, ROWS_PER_FILE)):
        stop = min(rows, start + ROWS_PER_FILE)
        X, labels = standins.digits_28(images[pool_idx], y[pool_idx], stop - start, seed + 1 + k)
        pixels = np.clip(X * 255, 0, 255).round().astype(np.uint8).reshape(len(X), -1)
        table = pa.table({
            "item_id": [f"img-{i:07d}" for i in range(start, stop)],
            "label": pa.array(labels.astype(np.int64)),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(pixels.reshape(-1)), 784),
        }).replace_schema_metadata({"workbench.image_shape": "[28, 28]",
                                    "workbench.image_scale": "255"})
        pq.write_table(table, folder / f"part-{k:03d}.parquet", row_group_size=ROW_GROUP)
        print(f"wrote {stop:,} of {rows:,} rows", flush=True)
    done.write_text(str(rows))
    return X_test, y_test


def label_randomly(session, y, n: int, seed: int = 0) -> None:
    pool = session.pool
    rng = np.random.default_rng(seed)
    have = set(session.labels)
    picks = []
    for position in rng.permutation(len(pool)):
        item = pool.item_ids[position]
        if item not in have and not session.ranker.in_reserve[position]:
            picks.append((item, y[position]))
        if len(picks) >= n - len(have):
            break
    session.label_many(dict(picks))


def rounds_at(session, y, n: int) -> dict:
    """Label (randomly) up to `n` items, then time 3 rounds: the median, each, the accuracy."""
    label_randomly(session, y, n)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        session.retrain()
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 2), "all_s": [round(t, 2) for t in times],
            "accuracy": round(float(session.history["accuracy"].iloc[-1]), 4)}


def next_latency_during_round(session, y, n: int = 200) -> dict:
    """`next()` then `label()` of what it served, `n` times, while a round trains."""
    future = session.retrain(background=True)
    pool, nexts, labels = session.pool, [], []
    for _ in range(n):
        started = time.perf_counter()
        item = session.next()
        nexts.append(time.perf_counter() - started)
        if item is None:
            break
        started = time.perf_counter()
        session.label(item.item_id, y[pool.position(item.item_id)])
        labels.append(time.perf_counter() - started)
    overlapped = future is not None and not future.done()
    session.wait_for_training()

    def ms(values, q):
        return round(1000 * float(np.quantile(values, q)), 2)

    return {"next_p50_ms": ms(nexts, 0.5), "next_p99_ms": ms(nexts, 0.99),
            "label_p50_ms": ms(labels, 0.5), "label_p99_ms": ms(labels, 0.99), "served": len(nexts),
            "round_still_training_at_end": overlapped}


def compare_build(pool, rows: int, client) -> dict:
    """The representation of the first `rows` items, in this process and on the cluster."""
    from workbench.data.representation import build

    sub = pool.subset(np.arange(rows))
    started = time.perf_counter()
    here = build(sub, max_graph_items=0)
    here_s = time.perf_counter() - started
    started = time.perf_counter()
    there = build(sub, max_graph_items=0, cluster=client)
    there_s = time.perf_counter() - started
    return {"rows": rows, "in_process_s": round(here_s, 1), "cluster_s": round(there_s, 1),
            "ratio_cluster_to_in_process": round(there_s / here_s, 2),
            "max_abs_difference": float(np.abs(here.features - there.features).max())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--compare-rows", type=int, default=20_000)
    parser.add_argument("--dir", default="/tmp/wb-scale")
    parser.add_argument("--cache", default=None,
                        help="keep the representation here (default: a temporary folder); "
                             "benchmarks/ann_label_efficiency.py reuses it")
    parser.add_argument("--out", default=None,
                        help="the results file's name (default: at_scale.json, at_scale_<rows>.json)")
    args = parser.parse_args()

    from dask.distributed import Client, LocalCluster

    from workbench import Pool, Session

    report = {"date": now(),
              "machine": machine(),
              "rows": args.rows}

    def log(key, value):
        report[key] = value
        print(key, json.dumps(value), flush=True)

    folder = Path(args.dir) / f"digits28-{args.rows}"
    started = time.perf_counter()
    X_test, y_test = write_dataset(folder, args.rows)
    log("dataset_ready_s", round(time.perf_counter() - started, 1))
    log("rss_before_open_mb", rss_mb())
    started = time.perf_counter()
    pool = Pool.from_parquet(folder, label_column="label")
    log("open_s", round(time.perf_counter() - started, 2))
    log("rss_after_open_mb", rss_mb())
    y = np.asarray(pool.y)

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=":0")
    client = Client(cluster)
    log("workers", len(client.scheduler_info()["workers"]))
    if args.compare_rows:
        log("representation_ratio", compare_build(pool, min(args.compare_rows, args.rows), client))

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        session = Session(pool, Path(tmp) / "labels", test=(X_test, y_test), watch=False,
                          cluster=client,
                          representation_cache=Path(args.cache) if args.cache else Path(tmp) / "cache")
        log("session_open_s", round(time.perf_counter() - started, 2))
        started = time.perf_counter()
        session.next()
        log("first_item_s", round(time.perf_counter() - started, 2))
        started = time.perf_counter()
        rep = session.representation()
        log("representation", {"ready_after_s": round(time.perf_counter() - started, 1),
                               "build_s": rep.build_seconds, "features": list(rep.features.shape),
                               "has_graph": rep.has_graph})
        log("rss_after_representation_mb", rss_mb())
        for n in (100, 1000):
            log(f"round_at_{n}_labels", rounds_at(session, y, n))
        log("latency_during_background_round", next_latency_during_round(session, y))
        log("rss_end_mb", rss_mb())
        session.close()
    client.close()
    cluster.close()
    name = args.out or ("at_scale.json" if args.rows == 1_000_000 else f"at_scale_{args.rows}.json")
    save(name, report, load_average_at_end=True)


if __name__ == "__main__":
    main()
