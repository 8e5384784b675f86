"""Opening a Parquet dataset of 1,000,000 28 x 28 images as a pool, without loading it.

Writes the dataset once (jittered digits from benchmarks/standins.py, tiled to the size:
what is measured does not depend on the pixels; 50 files of 20,000 rows, row groups of
5,000, uint8 pixels in a fixed-size list column, item ids and labels), then, in a fresh
process, measures `Pool.from_parquet`: seconds to open, the process's resident memory
(RSS, and its peak) after the imports, after opening and after keying the representation
(`fingerprint`), the time to read one item (`pool.X[i]`, what showing an item costs) and
one part. The baseline, in the same run, is what the pixels would cost in memory as an
in-memory pool's float32 `X`.

    .venv/bin/python benchmarks/parquet_open.py [--rows 1000000] [--dir /tmp/wb-parquet-1m]

Writes benchmarks/results/parquet_open.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

FILES, ROW_GROUP = 50, 5_000


def write_dataset(folder: Path, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sys.path.insert(0, str(Path(__file__).parent))
    from standins import digits_28, digits_base

    if (folder / "DONE").exists() and int((folder / "DONE").read_text()) == rows:
        return
    folder.mkdir(parents=True, exist_ok=True)
    images8, y8 = digits_base()
    tile, labels = digits_28(images8, y8, 10_000, seed=0)
    tile = np.clip(np.asarray(tile) * 255, 0, 255).round().astype(np.uint8).reshape(len(tile), -1)
    per_file = -(-rows // FILES)
    for k in range(FILES):
        start, stop = k * per_file, min(rows, (k + 1) * per_file)
        if start >= stop:
            break
        at = np.arange(start, stop) % len(tile)
        table = pa.table({
            "item_id": [f"img-{i:07d}" for i in range(start, stop)],
            "label": pa.array(np.asarray(labels)[at].astype(np.int64)),
            "features": pa.FixedSizeListArray.from_arrays(pa.array(tile[at].reshape(-1)), 784),
        }).replace_schema_metadata({"workbench.image_shape": "[28, 28]"})
        pq.write_table(table, folder / f"part-{k:03d}.parquet", row_group_size=ROW_GROUP)
    (folder / "DONE").write_text(str(rows))


MEASURE = r"""
import json, sys, time
def rss():
    status = dict(line.split(':', 1) for line in open('/proc/self/status') if ':' in line)
    return {k: int(status[k].split()[0]) / 1024 for k in ('VmRSS', 'VmHWM')}
import numpy as np, pandas, pyarrow.parquet
from workbench import Pool
from workbench.data.representation import fingerprint
out = {'after_imports_mb': rss()}
t = time.perf_counter(); pool = Pool.from_parquet(sys.argv[1], label_column='label')
out['open_s'] = round(time.perf_counter() - t, 2); out['after_open_mb'] = rss()
out['pool'] = repr(pool); out['features_nbytes_mb'] = pool.X.nbytes / 2**20
def seconds(fn):
    t = time.perf_counter(); fn(); return round(time.perf_counter() - t, 4)
out['fingerprint_s'] = seconds(lambda: fingerprint(pool, 'patches')); out['after_fingerprint_mb'] = rss()
out['read_one_item_s'] = seconds(lambda: pool.X[777_777 % len(pool)])
out['render_one_item_s'] = seconds(lambda: pool.render(pool.item_ids[123]))
parts = pool.parts(); out['parts'] = len(parts); out['part_rows'] = len(parts[0])
out['read_one_part_s'] = seconds(parts[0].read)
out['after_reads_mb'] = rss()
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/wb-parquet-1m")
    args = ap.parse_args()
    folder = Path(args.dir)
    write_dataset(folder, args.rows)
    env = {**os.environ, "WORKBENCH_CACHE_DIR": str(folder.parent / "wb-parquet-cache")}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(folder)], capture_output=True, text=True,
                          env=env, check=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    opened = measured["after_open_mb"]["VmHWM"] - measured["after_imports_mb"]["VmRSS"]
    result = {
        "date": now(),
        "machine": machine(processor=platform.processor()),
        "dataset": {"rows": args.rows, "files": FILES, "row_group_rows": ROW_GROUP,
                    "bytes_on_disk": sum(p.stat().st_size for p in folder.glob("*.parquet"))},
        **measured,
        "opening_peak_rss_over_imports_mb": round(opened, 1),
        "baseline_in_memory_X_mb": round(measured["features_nbytes_mb"], 1),
        "ratio_opening_memory_to_in_memory_X": round(opened / measured["features_nbytes_mb"], 4),
    }
    save("parquet_open.json", result, load_average_at_end=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
