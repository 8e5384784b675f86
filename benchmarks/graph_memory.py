"""How much memory a neighbour graph and its spreading matrix take while they are built, per
edge (item x neighbour), at more than one size: the figure behind
`workbench.data.representation.GRAPH_BYTES_PER_EDGE`, which decides whether a pool's graph
is built at all (`graph_fits`: a graph that would not fit is never started).

The features are a representation cache file's (`--cache`, as `benchmarks/at_scale.py`
writes one for 1,000,000 jittered 28 x 28 digits: a 64-d manifold, as real pools' are),
tiled with 2% noise up to each size. In a process of its own per size: the resident memory
before, the high-water mark after `nearest_neighbors` (faiss IVF above 50,000 items) and
`in_locality_order(graph_matrix(...))`, the growth divided by items x neighbours, and the
seconds each step took.

    python benchmarks/graph_memory.py --cache CACHE.npz --sizes 1000000 3000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import machine, now, save  # noqa: E402

ONE_SIZE = """
import json, sys, time
import numpy as np
from workbench.data.memory import release_freed_memory
from workbench.data.neighbors import graph_matrix, in_locality_order, nearest_neighbors, neighbours_for
from workbench.data.representation import GRAPH_BYTES_PER_EDGE

n, cache = int(sys.argv[1]), sys.argv[2]
base = np.load(cache)["features"]
rng = np.random.default_rng(0)
noise = lambda: rng.normal(scale=0.02 * base.std(), size=base.shape).astype(np.float32)
X = np.concatenate([base + noise() if r else base for r in range(-(-n // len(base)))])[:n]
X = np.ascontiguousarray(X, dtype=np.float32)
del base
release_freed_memory()
status = lambda: dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
size = lambda key: int(status()[key].split()[0]) * 1024
before = size("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # the high-water mark from here on
t = time.perf_counter()
neighbors, weights = nearest_neighbors(X, progress=lambda f, m: None)
search_s = time.perf_counter() - t
in_locality_order(graph_matrix(neighbors, weights))
total_s = time.perf_counter() - t
peak, k = size("VmHWM"), neighbours_for(n)
print(json.dumps({"items": n, "neighbours": k, "features_gb": round(X.nbytes / 1e9, 2),
                  "resident_before_gb": round(before / 1e9, 2), "peak_gb": round(peak / 1e9, 2),
                  "growth_bytes_per_edge": round((peak - before) / (n * k), 1),
                  "estimate_bytes_per_edge": GRAPH_BYTES_PER_EDGE,
                  "search_s": round(search_s, 1), "graph_and_matrix_s": round(total_s, 1)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="a representation cache file (.npz with 'features')")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    args = parser.parse_args()
    report = {"date": now(), "machine": machine(),
              "protocol": __doc__.split("\n\n")[1].replace("\n", " "), "runs": []}
    for n in args.sizes:
        out = subprocess.run([sys.executable, "-c", ONE_SIZE, str(n), args.cache], capture_output=True,
                             text=True, check=True).stdout
        report["runs"].append(json.loads(out.strip().splitlines()[-1]))
        print(json.dumps(report["runs"][-1]), flush=True)
    save("graph_memory.json", report, load_average_at_end=True)


if __name__ == "__main__":
    main()
