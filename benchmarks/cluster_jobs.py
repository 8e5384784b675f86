"""What running the pool-wide jobs on a Dask cluster costs and gains (issue 20, item 2).

1. Representation: the patch encoder fitted and every part encoded (`encode_pool`, what
   `build()` does before the graph), for N jittered 28 x 28 digits (standins.py): in this
   process, then on a `LocalCluster` of 2 worker processes x 1 thread on the same machine,
   with the largest difference between the two (the same to 1e-6 wanted). The cluster's
   first job (workers importing torch) is timed apart from a warm one.
2. Scoring the unlabeled pool each round, at 1,000,000 items: the default learner's head
   (`LightHead`, fitted on 1,000 labels of 128-d features) predicting every row in this
   process, against the same predictions as a map over 16 parts on the 2-worker cluster
   (the features travel to the workers: what shipping the scoring would cost every round).
3. `suspects()` folds on a 50,000-item pool: one fold's fit + predict (a LightHead with
   label spreading over the pool's graph, 1,000 labels) against what shipping it needs
   (the features and the graph sent to the workers).

    python benchmarks/cluster_jobs.py [--images 20000] [--score 1000000] [--folds-pool 50000]
        -> results/cluster_jobs.json

The machine's load average is recorded at the start and the end: on a shared machine the
in-process and cluster runs are interleaved and each is the best of `--repeat`.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

from workbench import LightHead, Pool  # noqa: E402
from workbench.data.encoders import PatchEncoder  # noqa: E402
from workbench.data.jobs import map_parts, on_rows  # noqa: E402
from workbench.data.parts import array_parts_of  # noqa: E402
from workbench.data.pool_encoding import encode_pool  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "cluster_jobs.json"


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return min(times), out


def representation(client, n: int, repeat: int) -> dict:
    X8, y8 = standins.digits_base()
    X, y = standins.digits_28(X8, y8, n, seed=0)
    pool = Pool.from_arrays(X, y)
    started = time.perf_counter()
    encode_pool(Pool.from_arrays(X[:600], y[:600]), PatchEncoder(), fit=True, cluster=client)
    first_job = time.perf_counter() - started  # fresh workers import torch, the encoders
    here_s, here = best(lambda: encode_pool(pool, PatchEncoder(), fit=True), repeat)
    there_s, there = best(lambda: encode_pool(pool, PatchEncoder(), fit=True, cluster=client), repeat)
    return {"items": n, "in_process_s": round(here_s, 2), "cluster_2_workers_s": round(there_s, 2),
            "speedup_cluster_over_in_process": round(here_s / there_s, 2),
            "max_abs_difference": float(np.abs(here - there).max()),
            "first_job_on_fresh_workers_s_600_items": round(first_job, 2),
            "note": "encode_pool: fit on the pool (<= 50,000 items), every part encoded; the graph "
                    "is built in the notebook process either way"}


def clustered(n: int, d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, d)).astype(np.float32) * 2
    y = rng.integers(0, classes, n)
    X = np.empty((n, d), np.float32)
    for start in range(0, n, 100_000):  # in blocks: no float64 copy of a million rows
        block = slice(start, start + 100_000)
        X[block] = centres[y[block]] + rng.standard_normal((len(y[block]), d), dtype=np.float32)
    return X, y


def scoring(client, n: int, repeat: int) -> dict:
    X, y = clustered(n, 128, 10, seed=1)
    head = LightHead().fit(X[:1000], y[:1000])
    here_s, here = best(lambda: head.predict_proba(X), repeat)
    parts = array_parts_of(X, -(-n // 16))
    there_s, there = best(lambda: np.concatenate(
        map_parts(on_rows(head.predict_proba), parts, cluster=client, what="scoring")), repeat)
    return {"items": n, "dims": 128, "in_process_s": round(here_s, 3),
            "cluster_2_workers_16_parts_s": round(there_s, 3),
            "features_shipped_mb": round(X.nbytes / 2**20),
            "model_pickled_kb": round(len(pickle.dumps(head)) / 1024),
            "speedup_cluster_over_in_process": round(here_s / there_s, 2),
            "max_abs_difference": float(np.abs(here - there).max())}


def folds(client, n: int, repeat: int) -> dict:
    from workbench.data.feature_space import Representation
    from workbench.data.neighbors import nearest_neighbors
    from workbench.loop.inputs import graph_rows

    X, y = clustered(n, 128, 10, seed=2)
    started = time.perf_counter()
    neighbors, weights = nearest_neighbors(X)
    graph_s = time.perf_counter() - started
    rep = Representation(X, neighbors, weights, None, "", "bench")
    labeled = np.random.default_rng(0).choice(n, 1000, replace=False)
    held, train = labeled[:200], labeled[200:]  # one of 5 folds
    unlabeled = np.concatenate([held, np.setdiff1d(np.arange(n), labeled)])

    def one_fold():
        head = LightHead().fit(X[train], y[train], X_unlabeled=X[unlabeled],
                               graph=graph_rows(rep, train, unlabeled))
        return head.predict_proba(X[held])

    fold_s, _ = best(one_fold, repeat)
    payload = {"X": X, "neighbors": neighbors, "weights": weights}
    started = time.perf_counter()
    scattered = client.scatter(payload, broadcast=True)
    ship_s = time.perf_counter() - started
    client.cancel(list(scattered.values()))
    return {"items": n, "labels": 1000, "graph_build_s": round(graph_s, 2),
            "one_fold_fit_predict_s": round(fold_s, 3),
            "suspects_default_fits": "5 folds x up to 3 passes = up to 15",
            "shipping_features_and_graph_to_both_workers_s": round(ship_s, 3),
            "payload_mb": round(sum(a.nbytes for a in payload.values()) / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--score", type=int, default=1_000_000)
    parser.add_argument("--folds-pool", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", choices=["representation", "scoring", "folds"], default=None)
    parser.add_argument("--engine", choices=["dask", "ray"], default="dask",
                        help="ray: the representation only, on ray.init(num_cpus=2) on this machine, "
                             "kept as representation_on_ray beside the Dask figures")
    args = parser.parse_args()
    if args.engine == "ray":
        return on_ray(args)
    from distributed import Client, LocalCluster

    report = {"date": now(),
              "machine": machine(load_average_at_start=True),
              "cluster": "LocalCluster(n_workers=2, processes=True, threads_per_worker=1), same machine"}
    if RESULTS.exists() and args.only:
        report = {**json.loads(RESULTS.read_text()), **{k: report[k] for k in ("date", "machine")}}
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        for name, fn, n in (("representation", representation, args.images), ("scoring", scoring, args.score),
                            ("folds", folds, args.folds_pool)):
            if args.only in (None, name):
                report[name] = {**fn(client, n, args.repeat), "date": now()}  # --only keeps the others
                print(name, json.dumps(report[name]), flush=True)
    print(f"wrote {save(RESULTS.name, report, load_average_at_end=True)}")


def on_ray(args) -> None:
    """The representation job on Ray (2 CPUs, this machine) against in-process, merged into
    the results as `representation_on_ray`."""
    import ray

    from workbench.data.ray_jobs import RayCluster

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        figures = representation(RayCluster("ray"), args.images, args.repeat)
    finally:
        ray.shutdown()
    figures["cluster"] = "ray.init(num_cpus=2) on this machine: 2 worker processes at a time"
    figures["machine"], figures["date"] = machine(load_average_at_start=True), now()
    report = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    report["representation_on_ray"] = figures
    print("representation_on_ray", json.dumps(figures), flush=True)
    print(f"wrote {save(RESULTS.name, report)}")


if __name__ == "__main__":
    main()
