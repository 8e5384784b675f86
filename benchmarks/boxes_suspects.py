"""Cleaning boxes: where `suspects()` puts planted box errors, on labels chosen by active
learning.

Per seed: the digit scenes (workbench.datasets.box_digits, 600 canvases), 200 labels given
with the ground truth to the images the session's queue serves (batches of 25, retrained
after each, so the labels are those box entropy chose), then 10 planted errors in 10 images
of two or more boxes: five boxes get a wrong class (another digit at random), five are
removed (an object left out). `suspects()` (5 folds) weighs every box given with a held-out
crop classifier and lists the objects held-out detectors find that no box covers. Reported:
how many planted errors are among the top 10 and top 20 rows, the rank of each, what a random
order would hold, and the seconds `suspects()` took. An object left out counts as found by
a "left out" row of its image whose box overlaps it by IoU 0.5 or more.

    python benchmarks/boxes_suspects.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

from workbench import Session
from workbench.data.box_digits import box_digits
from workbench.data.box_scores import iou


def one_seed(seed: int) -> dict:
    pool, _ = box_digits(600, n_test=10, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        session = Session(pool, Path(folder) / "store", watch=False, seed=seed, batch_size=25)
        while len(session.labels) < 200:
            for item in session.peek(25):
                session.label(item, pool.true_label(item.item_id))
            session.retrain()
        rng = np.random.default_rng(seed)
        images = sorted(i for i in session.labels if len(session.labels[i]) >= 2)
        planted = []  # (image, kind, the box)
        for j, image in enumerate(rng.choice(images, 10, replace=False)):
            boxes = list(session.labels[image])
            k = int(rng.integers(len(boxes)))
            if j % 2 == 0:
                wrong = str((int(boxes[k].label) + int(rng.integers(1, 10))) % 10)
                boxes[k] = boxes[k]._replace(label=wrong)
                planted.append((image, "given", boxes[k]))
            else:
                planted.append((image, "left out", boxes.pop(k)))
            session.label(image, boxes)
        started = time.perf_counter()
        table = session.suspects()
        seconds = time.perf_counter() - started
        session.close()
    ranks = [rank_of(table, *slip) for slip in planted]
    found = [r for r in ranks if r is not None]
    return {"seed": seed, "rows": len(table), "planted": len(planted),
            "in_top_10": sum(r < 10 for r in found), "in_top_20": sum(r < 20 for r in found),
            "ranks": [None if r is None else r + 1 for r in ranks],
            "random_order_expects_in_top_20": round(len(planted) * 20 / len(table), 3),
            "suspects_s": round(seconds, 1)}


def rank_of(table: pd.DataFrame, image: str, kind: str, box) -> int | None:
    """The first row of `table` that names this planted error, None when none does."""
    rows = table[(table["item_id"] == image) & (table["kind"] == kind)]
    for at, row in rows.iterrows():
        place = (row["x"], row["y"], row["w"], row["h"])
        if (kind == "given" and row["given"] == box.label and place == tuple(box[:4])) or \
                (kind == "left out" and iou(place, box) >= 0.5):
            return int(at)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for seed in range(args.seeds):
        runs.append(one_seed(seed))
        print(json.dumps(runs[-1]), flush=True)
    report = {"date": now(),
              "machine": machine(),
              "protocol": " ".join(__doc__.split("\n\n")[1].split()), "runs": runs}
    save("boxes_suspects.json", report, load_average_at_end=True)


if __name__ == "__main__":
    main()
