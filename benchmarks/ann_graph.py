"""A neighbour graph at any size (issue 20, item 3): which approximate nearest-neighbour
library builds the graph above exact search, and what it costs in labels.

Vectors: the representation (`workbench.data.representation.build`: patch features, 128-d,
L2-normalised float32) of 50,000 jittered 28 x 28 digits (benchmarks/standins.py, split seed
0). Larger sets are made from them: each vector is a random point between one of the 50,000
and one of its 10 exact nearest neighbours (mixing weight uniform in [0, 0.5]), plus Gaussian
noise whose size is a third of the median nearest-neighbour distance, L2-normalised again:
points on the same manifold, as more jittered copies would give, without hours of encoding.

Each library builds the k = 10 graph (k + 1 asked, the item itself dropped) of all the
vectors and queries every vector, in a fresh process (peak resident memory is that
process's, vectors included). Recall@10 against exact search: every item at 50,000, a seeded
sample of 2,000 query items (exact answers by brute force) above. Libraries:

- faiss IVF-Flat (what `workbench.data.neighbors` uses above EXACT_MAX_ITEMS, run through
  that very code): ~4 sqrt(N) cells, k-means on a seeded sample, 24 cells probed.
- hnswlib (M 16, ef_construction 100, ef 40); the build on one thread, as reproducibility
  needs (its insertions on several threads happen in an order the threads decide).
- pynndescent (defaults, random_state 0, 2 jobs: reproducible only with 1); its numba
  compilation is timed apart, on a warm-up of 2,000 items.

`--efficiency`: the default learner and strategy (`workbench.simulate`) on the same stand-in,
with the exact graph and with the ANN graph (the approximate path forced on the same
representation), labels to 90% and 95% held-out accuracy, per seed.

    python benchmarks/ann_graph.py [--sizes 50000,200000] [--big 1000000] [--efficiency]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

RESULTS = Path(__file__).parent / "results"
WORK = Path(tempfile.gettempdir()) / "workbench-ann-graph"
K = 10
LIBRARIES = ["faiss_ivf", "hnswlib", "pynndescent"]
CHOSEN = "faiss_ivf"
WHY = ("All three pass recall@10 >= 0.95 at 50,000 (see runs). faiss IVF-Flat is chosen because it is "
       "the only one whose graph is the same on any number of threads (seeded k-means on a sample; "
       "each vector goes to its nearest cell's list in input order; a query scans its probed lists "
       "exactly; checked in `determinism`), because it is built partition by partition by design "
       "(train once on a sample, then add and query chunk by chunk: what a pool read in parts "
       "needs), and because it installs as a prebuilt wheel with no compiler and no JIT. hnswlib has "
       "the best recall but is reproducible only with a one-thread build (parallel insertion order "
       "is up to the threads), which made it the slowest here, and 0.8.0 installs from source (a C++ "
       "compiler). pynndescent was the fastest at 200,000 on 2 threads, but is reproducible only "
       "with n_jobs=1, builds from all the vectors at once (no partitions), spends about a minute "
       "compiling with numba on first use, and brings numba + llvmlite (~210 MB). The cost of "
       "IVF's choice: query time grows like N^1.5 (cells of sqrt(N) items), so at 1,000,000 it is "
       "minutes, not seconds.")


# -- the vectors ---------------------------------------------------------------------------
def base_vectors(n: int = 50_000, seed: int = 0) -> np.ndarray:
    """The representation of `n` jittered 28 x 28 digits (built once, kept in WORK)."""
    path = WORK / f"standin_{n}_seed{seed}.npy"
    if not path.exists():
        from workbench import Pool
        from workbench.data.representation import build

        WORK.mkdir(parents=True, exist_ok=True)
        X, y, X_test, y_test = standins.digits_28_split(seed, n_pool=n, n_test=2_000)
        rep = build(Pool.from_arrays(X, y, X_test=X_test, y_test=y_test), max_graph_items=0)
        np.save(path, rep.features)
    return np.load(path)


def exact_graph(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distances, index) of every row's K + 1 nearest rows, exactly (faiss brute force)."""
    import faiss

    flat = faiss.IndexFlatL2(X.shape[1])
    flat.add(X)
    distances, index = flat.search(X, K + 1)
    return np.sqrt(np.maximum(distances, 0)), index


def vectors(n: int) -> np.ndarray:
    """`n` vectors on the manifold of the 50,000 (see the module notes); the 50,000 themselves
    for n = 50,000."""
    base = base_vectors()
    if n == len(base):
        return base
    path = WORK / f"mixed_{n}.npy"
    if path.exists():
        return np.load(path)
    distances, index = exact_graph(base)
    sd = float(np.median(distances[:, 1])) / 3 / np.sqrt(base.shape[1])
    rng = np.random.default_rng(1)
    out = np.empty((n, base.shape[1]), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        i = rng.integers(0, len(base), m)
        j = index[i, rng.integers(1, K + 1, m)]
        t = rng.uniform(0, 0.5, (m, 1)).astype(np.float32)
        x = (1 - t) * base[i] + t * base[j] + rng.normal(0, sd, (m, base.shape[1])).astype(np.float32)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.save(path, out)
    return out


# -- one library, one size, in its own process -----------------------------------------------
def run_one(library: str, n: int) -> dict:
    X = vectors(n)
    rss_vectors = _peak_rss_mb()
    extra = {}
    if library == "pynndescent":
        from pynndescent import NNDescent

        started = time.perf_counter()
        NNDescent(X[:2000], n_neighbors=K + 1, random_state=0)
        extra["numba_compile_s"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    if library == "faiss_ivf":
        from workbench.data.neighbors import nearest_neighbors

        marks = {}

        def progress(fraction, message):  # when the last partition is added, the queries start
            if "indexed" in message:
                marks["built"] = time.perf_counter()

        index, _ = nearest_neighbors(X, K, progress, exact_max_items=0)
        build_s = marks["built"] - started
        query_s = time.perf_counter() - marks["built"]
    elif library == "hnswlib":
        import hnswlib

        h = hnswlib.Index("l2", X.shape[1])
        h.init_index(n, ef_construction=100, M=16, random_seed=0)
        h.add_items(X, np.arange(n), num_threads=1)
        build_s = time.perf_counter() - started
        h.set_ef(40)
        index, _ = h.knn_query(X, K + 1, num_threads=os.cpu_count())
        query_s = time.perf_counter() - started - build_s
        index = _without_self(index)
    elif library == "pynndescent":
        from pynndescent import NNDescent

        index, _ = NNDescent(X, n_neighbors=K + 1, random_state=0, n_jobs=os.cpu_count()).neighbor_graph
        build_s = query_s = None  # NN-descent builds the graph itself: no separate query
        index = _without_self(index)
    else:
        raise ValueError(f"unknown library {library!r}; expected one of {LIBRARIES}")
    seconds = time.perf_counter() - started
    peak = _peak_rss_mb()
    rows = np.arange(n) if n <= 50_000 else np.sort(np.random.default_rng(2).choice(n, 2000, replace=False))
    truth = _exact_rows(X, rows)
    recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(index[rows], truth)]))
    return {"library": library, "items": n, "build_and_query_s": round(seconds, 1),
            "build_s": None if build_s is None else round(build_s, 1),
            "query_s": None if query_s is None else round(query_s, 1),
            "recall_at_10": round(recall, 4), "recall_measured_on": len(rows),
            "peak_rss_mb": round(peak), "rss_with_vectors_only_mb": round(rss_vectors),
            "load_average_after": [round(x, 2) for x in os.getloadavg()], **extra}


def _without_self(index: np.ndarray) -> np.ndarray:
    from workbench.data.neighbors import _drop_self

    return _drop_self(np.zeros(index.shape, np.float32), index.astype(np.int64))[1]


def _exact_rows(X: np.ndarray, rows: np.ndarray) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatL2(X.shape[1])
    flat.add(X)
    _, index = flat.search(X[rows], K + 1)
    out = np.empty((len(rows), K), np.int64)
    for r, (row, found) in enumerate(zip(rows, index)):
        out[r] = [j for j in found if j != row][:K]
    return out


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: reset by exec, unlike ru_maxrss, which
    Linux carries over from the parent that made the vectors)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(library: str, n: int) -> dict:
    """run_one in a fresh process (so peak memory is its own)."""
    out = subprocess.run([sys.executable, __file__, "--one", library, str(n)], capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        return {"library": library, "items": n, "error": out.stderr[-2000:]}
    result = {**json.loads(out.stdout.strip().splitlines()[-1]), "date": now()}
    print(result, flush=True)
    return result


def determinism(n: int = 50_000) -> dict:
    """The chosen path twice, and on one thread against all: the same graph?"""
    import faiss

    from workbench.data.neighbors import nearest_neighbors

    X = vectors(n)
    first = nearest_neighbors(X, K, exact_max_items=0)
    again = nearest_neighbors(X, K, exact_max_items=0)
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        one_thread = nearest_neighbors(X, K, exact_max_items=0)
    finally:
        faiss.omp_set_num_threads(threads)
    same = lambda a, b: bool((a[0] == b[0]).all() and (a[1] == b[1]).all())  # noqa: E731
    return {"items": n, "same_graph_twice": same(first, again),
            f"same_graph_on_1_and_{threads}_threads": same(first, one_thread)}


# -- label efficiency ----------------------------------------------------------------------
def efficiency_run(args) -> list[dict]:
    """One seed: the default learner and strategy with the exact graph, then with the ANN
    graph of the same representation."""
    import dataclasses

    from workbench import Pool, labels_to_reach, simulate
    from workbench.data.neighbors import EXACT_MAX_ITEMS, nearest_neighbors
    from workbench.data.representation import RepresentationJob, cache_at

    n, seed, budget = args
    if n > EXACT_MAX_ITEMS:
        raise ValueError(f"the exact graph is built up to {EXACT_MAX_ITEMS} items; got {n}")
    X, y, X_test, y_test = standins.digits_28_split(seed, n_pool=n, n_test=2_000)
    pool = Pool.from_arrays(X, y, X_test=X_test, y_test=y_test, name="digits-28x28")
    cache = cache_at(WORK / "efficiency_cache")
    exact = RepresentationJob.start(pool, cache=cache, background=False).result()
    started = time.perf_counter()
    ann_index, ann_weights = nearest_neighbors(exact.features, K, exact_max_items=0)
    ann_s = time.perf_counter() - started
    exact_index = exact.neighbors
    recall = float(np.mean([len(set(a) & set(b)) / K for a, b in zip(exact_index, ann_index)]))
    rows = []
    for kind in ("exact", "ann"):
        # the session finds this graph in its cache (one folder per kind: the same fingerprint)
        os.environ["WORKBENCH_CACHE_DIR"] = str(WORK / f"efficiency_{kind}_{os.getpid()}")
        cache_at(None).put(dataclasses.replace(exact, neighbors=exact_index if kind == "exact" else ann_index,
                                               weights=exact.weights if kind == "exact" else ann_weights))
        started = time.perf_counter()
        curve = simulate(pool, budget=budget, batch=10, initial=20, seed=seed, stop_at=0.95)
        rows.append({"graph": kind, "seed": seed, "items": n, "graph_recall_at_10": round(recall, 4),
                     "ann_graph_s": round(ann_s, 1),
                     "labels_to_90": labels_to_reach(curve, 0.90),
                     "labels_to_95": labels_to_reach(curve, 0.95),
                     "accuracy_at_end": round(float(curve["accuracy"].iloc[-1]), 4),
                     "labels_at_end": int(curve["n_labels"].iloc[-1]),
                     "run_s": round(time.perf_counter() - started, 1)})
        print(rows[-1], flush=True)
    return rows


def efficiency(n: int, seeds: list[int], budget: int, jobs: int) -> dict:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs) as ex:
        runs = [r for rows in ex.map(efficiency_run, [(n, s, budget) for s in seeds]) for r in rows]
    summary = {}
    for kind in ("exact", "ann"):
        mine = [r for r in runs if r["graph"] == kind]
        summary[kind] = {f"labels_to_{t}": _spread([r[f"labels_to_{t}"] for r in mine]) for t in (90, 95)}
    return {"items": n, "seeds": seeds, "budget": budget, "runs": runs, "summary": summary}


def _spread(values: list) -> dict:
    v = np.array([x for x in values if x is not None], float)
    return {"by_seed": values, "mean": round(float(v.mean()), 1) if len(v) else None,
            "min": float(v.min()) if len(v) else None, "max": float(v.max()) if len(v) else None,
            "runs_reaching": int(len(v)), "runs": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50000,200000", help="sizes every library is measured at")
    parser.add_argument("--big", type=int, default=1_000_000, help="size only the chosen library runs at")
    parser.add_argument("--libraries", default=",".join(LIBRARIES))
    parser.add_argument("--no-determinism", action="store_true")
    parser.add_argument("--efficiency", action="store_true", help="only the label-efficiency comparison")
    parser.add_argument("--efficiency-items", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("LIBRARY", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return
    path = RESULTS / "ann_graph.json"
    report = json.loads(path.read_text()) if path.exists() else {}
    report["date"] = now()
    report["machine"] = machine(load_average_at_start=True)
    started = time.perf_counter()
    if args.efficiency:
        report["label_efficiency"] = efficiency(args.efficiency_items, list(range(args.seeds)),
                                                args.budget, args.jobs)
    else:
        import importlib.metadata

        asked = args.libraries.split(",")
        wanted = {"faiss-cpu"} | {lib for lib in ("hnswlib", "pynndescent") if lib in asked}
        report["versions"] = {**report.get("versions", {}),
                              **{p: importlib.metadata.version(p) for p in sorted(wanted)}}
        sizes = [int(n) for n in args.sizes.split(",")]
        for n in [*sizes, args.big]:  # made (and saved) here, so no run's peak memory includes making them
            if n:
                vectors(n)
        runs = [measure(lib, n) for n in sizes for lib in args.libraries.split(",")]
        if args.big:
            runs.append(measure(CHOSEN, args.big))
        # a partial re-run replaces its own rows and keeps the others
        fresh = {(r["library"], r["items"]) for r in runs}
        report["runs"] = [r for r in report.get("runs", []) if (r["library"], r["items"]) not in fresh] + runs
        report["chosen"] = {"library": CHOSEN, "why": WHY,
                            "parameters": "cells 4 sqrt(N), 24 probed, k-means 10 rounds on 39 "
                                          "vectors a cell, seed 0 (workbench/data/ann.py)"}
        report["vectors"] = ("50,000: the representation (patch features, 128-d, L2-normalised) of "
                             "benchmarks/standins.py digits_28_split(seed 0, n_pool=50,000); larger: "
                             "random points between one of those and one of its 10 exact neighbours "
                             "(weight U[0, 0.5]) plus Gaussian noise (a third of the median 1-NN "
                             "distance in all), L2-normalised")
        if not args.no_determinism:
            report["determinism"] = determinism()
    report["machine"]["load_average_at_end"] = os.getloadavg()
    report[f"runtime_s{'_efficiency' if args.efficiency else ''}"] = round(time.perf_counter() - started)
    # merged into what is there now: the speed runs and --efficiency may run at the same time
    latest = json.loads(path.read_text()) if path.exists() else {}
    if args.efficiency:
        latest["label_efficiency"] = report["label_efficiency"]
        latest["runtime_s_efficiency"] = report["runtime_s_efficiency"]
        latest.setdefault("machine", report["machine"])
        latest["machine_efficiency"] = report["machine"]
        report = latest
    else:
        efficiency_keys = ("label_efficiency", "runtime_s_efficiency", "machine_efficiency")
        report = {**report, **{k: latest[k] for k in efficiency_keys if k in latest}}
    save(path.name, report)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
