"""suspects() with its cross-fitted folds in the notebook's process against the same folds as
tasks on a 2-worker Dask LocalCluster on the same machine (issue 20, item 2).

A pool of N jittered 28 x 28 digits (standins.py), the default learner (LightHead: label
spreading over the pool's neighbour graph plus a logistic head, on the pool's learned
representation), L labels of which 5% are flipped to another class, `suspects()` with 5 folds
and its default 3 passes (5 to 15 fits). Two sessions hold the same labels, one without a
cluster and one with `cluster=client`; they share a representation cache, so both see the
same representation and only the folds differ. Each call is timed `--repeat` times,
in-process and cluster runs interleaved (the machine is shared; best of each reported), and
the cluster's first call (workers importing the workbench) apart. Twice: on workers as Dask
starts them, and on workers started without Dask's MALLOC_TRIM_THRESHOLD_ (see MALLOC_TRIM
below). Reported: seconds, the ratio, the workers' own compute seconds (Dask's task stream),
the largest difference in probabilities and whether the rankings are equal, what a fold ships
(estimated from the arrays' sizes), and how many flips the top of the ranking holds.

    python benchmarks/suspects_cluster.py [--items 50000] [--labels 2000] [--repeat 2]
        [--cache FOLDER] -> results/suspects_cluster.json

The committed result: OMP_NUM_THREADS=1 nice -n 10 ... --repeat 3 --cache <a folder holding
this pool's representation from an earlier run> (building it takes about 2 minutes here).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

from workbench import Pool, Session  # noqa: E402
from workbench.loop.cleaning import cross_fit  # noqa: E402

FOLDS = 5
# Dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536 (memory back to the system
# sooner); setting it also turns off glibc's adaptive mmap threshold, so every large temporary
# array of a fit is mapped and unmapped afresh. Measured here with and without it.
MALLOC_TRIM = "MALLOC_TRIM_THRESHOLD_"
NOTE = ("Both the in-process and the cluster folds run on the same 2 CPU cores, shared with other "
        "work (the load averages above): the two workers compete with each other and with it, so "
        "the cluster cannot gain here; what more machines would give is the per-fit compute "
        "(worker_seconds_by_action.compute / fits, against in_process_seconds_per_fit) spread "
        "over them. The results are equal either way (max_abs_difference_proba, same_ranking).")


def labeled(session: Session, items: list[str], labels: list) -> Session:
    session.label_many(dict(zip(items, labels)))
    return session


def worker_seconds(tasks: list[dict]) -> dict:
    """Seconds the workers spent on the folds' tasks, by what they did (compute, transfer...),
    summed over both workers: compute against the in-process time says what the workers'
    own fits cost, the rest of the wall time what shipping and scheduling did."""
    spent: dict[str, float] = {}
    for task in tasks:
        for step in task["startstops"]:
            spent[step["action"]] = spent.get(step["action"], 0.0) + step["stop"] - step["start"]
    return {action: round(seconds, 2) for action, seconds in sorted(spent.items())}


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def compare(here: Session, there: Session, client, repeat: int, table_here) -> dict:
    """cross_fit() in this process and on the cluster, interleaved, `repeat` times each."""
    from distributed import get_task_stream

    first_s, _ = timed(lambda: cross_fit(there, folds=FOLDS))  # workers import the workbench
    here_times, there_times, on_workers = [], [], []
    for _ in range(repeat):
        s, a = timed(lambda: cross_fit(here, folds=FOLDS))
        here_times.append(s)
        with get_task_stream(client=client) as stream:
            s, b = timed(lambda: cross_fit(there, folds=FOLDS))
        there_times.append(s)
        on_workers.append(worker_seconds(stream.data))
        print(f"in-process {here_times[-1]:.1f} s, cluster {there_times[-1]:.1f} s", flush=True)
    table_there = there.suspects(folds=FOLDS)
    here_s, there_s = min(here_times), min(there_times)
    return {"passes": a.passes, "fits": a.passes * FOLDS,
            "in_process_s": round(here_s, 2), "cluster_2_workers_s": round(there_s, 2),
            "speedup_cluster_over_in_process": round(here_s / there_s, 2),
            "all_in_process_s": [round(t, 2) for t in here_times],
            "all_cluster_s": [round(t, 2) for t in there_times],
            "first_call_on_fresh_workers_s": round(first_s, 2),
            "worker_seconds_by_action": on_workers[int(np.argmin(there_times))],
            "in_process_seconds_per_fit": round(here_s / (a.passes * FOLDS), 2),
            "max_abs_difference_proba": float(np.abs(a.proba - b.proba).max()),
            "same_ranking": list(table_here.item_id) == list(table_there.item_id)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--labels", type=int, default=2_000)
    parser.add_argument("--flipped", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=None,
                        help="a representation cache folder to reuse (default: a new temporary one)")
    args = parser.parse_args()
    import dask
    import distributed  # noqa: F401  first: config.set would drop the defaults it loads on import
    from distributed import Client, LocalCluster

    report = {"date": now(),
              "machine": machine(load_average_at_start=True,
                                 OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS")),
              "cluster": "LocalCluster(n_workers=2, processes=True, threads_per_worker=1), same machine",
              "pool": f"{args.items:,} jittered 28 x 28 digits (standins.digits_28, seed 0)",
              "labels": args.labels, "folds": FOLDS, "learner": "LightHead (the default)"}
    X8, y8 = standins.digits_base()
    X, y = standins.digits_28(X8, y8, args.items, seed=0)
    pool = Pool.from_arrays(X, y, name=f"suspects-cluster-{args.items}")
    rng = np.random.default_rng(0)
    chosen = np.sort(rng.choice(args.items, args.labels, replace=False))
    given = y[chosen].copy()
    flips = rng.choice(args.labels, int(round(args.flipped * args.labels)), replace=False)
    given[flips] = (given[flips] + rng.integers(1, 10, len(flips))) % 10
    items = [pool.item_ids[i] for i in chosen]
    flipped = {items[i] for i in flips}

    folder = Path(tempfile.mkdtemp(prefix="suspects-cluster-"))
    cache = args.cache or folder / "cache"
    here = labeled(Session(pool, folder / "here", representation_cache=cache, watch=False),
                   items, given.tolist())
    build_s, rep = timed(here.representation)
    print(f"representation {build_s:.1f} s (0: from the cache), graph: {rep.has_graph}", flush=True)
    k = rep.neighbors.shape[1] if rep.has_graph else 0
    n_unlabeled = args.items - args.labels + args.labels // FOLDS
    fold_mb = (n_unlabeled * rep.features.shape[1] * rep.features.itemsize
               + (args.items - args.labels // FOLDS) * k * (rep.neighbors.itemsize + 4)) / 2**20
    report["representation"] = {"dims": int(rep.features.shape[1]), "has_graph": bool(rep.has_graph),
                                "neighbors_per_item": int(k), "ready_in_process_s": round(build_s, 1),
                                "from_a_reused_cache": args.cache is not None}
    report["shipped_per_fold_mb_estimated"] = round(fold_mb, 1)
    table_here = here.suspects(folds=FOLDS)
    report["flips_in_top_k_in_process"] = {"k": len(flipped),
                                           "found": len(flipped & set(table_here.item_id[:len(flipped)]))}
    for name, environ in (("dask_default_workers", {}),
                          ("workers_without_malloc_trim", {MALLOC_TRIM: None})):
        if environ.get(MALLOC_TRIM, "") is None:  # a nanny sets it in its own process (this one) too
            os.environ.pop(MALLOC_TRIM, None)
        with dask.config.set({f"distributed.nanny.pre-spawn-environ.{key}": value
                              for key, value in environ.items()}), \
                LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                             dashboard_address=None) as cluster, \
                Client(cluster, set_as_default=False) as client:
            there = labeled(Session(pool, folder / name, representation_cache=cache, cluster=client,
                                    watch=False), items, given.tolist())
            report[name] = compare(here, there, client, args.repeat, table_here)
            report[name]["workers_" + MALLOC_TRIM] = sorted(
                {str(v) for v in client.run(lambda: os.environ.get(MALLOC_TRIM)).values()})
            there.close()
        print(name, json.dumps(report[name]), flush=True)
    here.close()
    report["note"] = NOTE
    print(f"wrote {save('suspects_cluster.json', report, load_average_at_end=True)}")


if __name__ == "__main__":
    main()
