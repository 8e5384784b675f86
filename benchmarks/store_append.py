"""Durable append latency of LabelStore: a fresh store vs one holding a million events.

Each append is fsynced before it returns, so this measures what a labeler waits for between
two key presses. The claim under test: the cost of an append does not grow with the store.

    python benchmarks/store_append.py [--appends 500] [--big 1000000] [--dir /some/disk]

Writes benchmarks/results/store_append.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

from workbench.store import LabelStore

RESULTS = Path(__file__).parent / "results" / "store_append.json"


def fill(path: Path, n_events: int, files: int = 4) -> float:
    """Fill a store with n_events labels in a few big append_many files; returns seconds."""
    start = time.perf_counter()
    store = LabelStore.open(path, annotator="bench")
    per_file = -(-n_events // files)
    for first in range(0, n_events, per_file):
        ids = [f"item-{i}" for i in range(first, min(first + per_file, n_events))]
        store.append_many({"item_id": ids, "label": [str(i % 10) for i in range(len(ids))]})
    return time.perf_counter() - start


def summarize(latencies: list[float]) -> dict:
    q = np.percentile(latencies, [50, 95, 99])
    return {"appends": len(latencies), "p50_ms": round(float(q[0]), 3),
            "p95_ms": round(float(q[1]), 3), "p99_ms": round(float(q[2]), 3),
            "mean_ms": round(statistics.fmean(latencies), 3), "max_ms": round(max(latencies), 3)}


def durable_write(directory: Path, i: int) -> None:
    """The disk's floor: 3 KB to a temp file, fsync, rename, fsync the directory."""
    tmp, final = directory / f".tmp-{i}", directory / f"floor-{i}"
    with open(tmp, "wb") as f:
        f.write(b"x" * 3000)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, final)
    fd = os.open(directory, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)  # the files stay until the end: an unlink here would burden the next fsync


def measure(paths: dict[str, Path], appends: int, warmup: int = 10) -> dict:
    """Reopen each store (as a new notebook would) and time durable appends.

    Appends alternate between the stores, so disk noise from other processes hits both alike.
    """
    stores, out = {}, {}
    for name, path in paths.items():
        start = time.perf_counter()
        stores[name] = LabelStore.open(path, annotator="bench")
        out[name] = {"open_s": round(time.perf_counter() - start, 3)}
        for i in range(warmup):
            stores[name].append(f"warm-{i}", "x")
    latencies = {name: [] for name in [*stores, "disk_floor"]}
    floor_dir = next(iter(paths.values())).parent
    for i in range(appends):
        for name, store in stores.items():
            start = time.perf_counter_ns()
            store.append(f"new-{i}", str(i % 10), query="margin")
            latencies[name].append((time.perf_counter_ns() - start) / 1e6)
        start = time.perf_counter_ns()
        durable_write(floor_dir, i)
        latencies["disk_floor"].append((time.perf_counter_ns() - start) / 1e6)
    out["disk_floor"] = summarize(latencies["disk_floor"])
    for name, store in stores.items():
        start = time.perf_counter()
        n_labels = len(store.current_labels())
        first_view_s = time.perf_counter() - start
        start = time.perf_counter()
        store.append("after-view", "x")
        store.current_labels()
        again_ms = (time.perf_counter() - start) * 1e3
        out[name].update(summarize(latencies[name]), events=len(store), labels=n_labels,
                         first_current_labels_s=round(first_view_s, 3),
                         append_then_current_labels_ms=round(again_ms, 3))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=500)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--dir", default=None, help="where to build the stores (disk matters)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="store-append-", dir=args.dir))
    try:
        fill_s = {}
        for name, n in (("small", args.small), ("big", args.big)):
            fill_s[name] = fill(root / name, n)
        os.sync()  # flush the fill's writes now, so their writeback does not land on the timings
        measured = measure({"small": root / "small", "big": root / "big"}, args.appends)
        small, big = measured["small"], measured["big"]
    finally:
        shutil.rmtree(root, ignore_errors=True)

    result = {
        "benchmark": "durable LabelStore.append latency (fsync per append)",
        "date": now(),
        "machine": machine(
            processor=platform.processor(), pyarrow=pa.__version__, store_dir=str(root.parent),
            # other work on the machine shows up in fsync times; the disk floor measures it
            load_average_1m_before_after=[round(load_before, 2), round(os.getloadavg()[0], 2)]),
        "small_store": {**small, "prefilled": args.small, "fill_s": round(fill_s["small"], 3)},
        "big_store": {**big, "prefilled": args.big, "fill_s": round(fill_s["big"], 3)},
        "disk_floor": {**measured["disk_floor"],
                       "what": "temp write + fsync + rename + dir fsync of 3 KB, no Parquet"},
        "p50_ratio_big_over_small": round(big["p50_ms"] / small["p50_ms"], 3),
        "target": "p99 < 10 ms",
        "target_met": bool(max(small["p99_ms"], big["p99_ms"]) < 10),
    }
    save(args.out.name, result, folder=args.out.parent)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
