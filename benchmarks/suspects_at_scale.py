"""suspects() at 1,000,000 items: time, the notebook's peak memory, and how many planted flips
the top of the ranking holds.

The 1,000,000 jittered 28 x 28 digits of benchmarks/at_scale.py (written there as a Parquet
dataset, once), the default learner (LightHead: label spreading over the pool's approximate
neighbour graph plus a logistic head), 1,000 random labels of which 50 are given the next
class instead of their own, then `suspects()` with its defaults (5 folds, up to 3 passes), in
the notebook's process. Peak memory is the process's maximum resident set (ru_maxrss), before
and after the call.

    python benchmarks/suspects_at_scale.py [--cache FOLDER] -> results/suspects_at_scale.json

`--cache`: where the pool's representation is kept (building it takes about 20 minutes
here; at_scale.py's run leaves one).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import at_scale  # noqa: E402
from report import machine, now, save  # noqa: E402

from workbench import Pool, Session  # noqa: E402


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--labels", type=int, default=1_000)
    parser.add_argument("--flipped", type=int, default=50)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "wb-scale")
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args()
    folder = args.data / f"digits28-{args.items}"
    X_test, y_test = at_scale.write_dataset(folder, args.items)
    pool = Pool.from_parquet(folder, label_column="label")
    with tempfile.TemporaryDirectory() as tmp:
        session = Session(pool, f"{tmp}/labels", resume=False, watch=False, test=(X_test, y_test),
                          representation_cache=args.cache)
        try:
            started = time.perf_counter()
            session.representation()
            representation_s = time.perf_counter() - started
            rng = np.random.default_rng(0)
            ids = pool.item_ids[rng.choice(len(pool), args.labels, replace=False)]
            names = session.class_names
            flipped = set(ids[:args.flipped])
            session.label_many([(i, str(pool.true_label(i)) if i not in flipped else
                                 names[(names.index(str(pool.true_label(i))) + 1) % len(names)])
                                for i in ids])
            session.retrain()
            before = peak_gb()
            started = time.perf_counter()
            table = session.suspects()
            suspects_s = time.perf_counter() - started
        finally:
            session.close()
    report = {"date": now(),
              "machine": machine(),
              "items": args.items, "labels": args.labels, "flipped": args.flipped,
              "representation_s": round(representation_s, 1), "suspects_s": round(suspects_s, 1),
              "peak_memory_before_gb": round(before, 2), "peak_memory_after_gb": round(peak_gb(), 2),
              "flips_in_top": len(set(table["item_id"][:args.flipped]) & flipped)}
    save("suspects_at_scale.json", report, load_average_at_end=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
