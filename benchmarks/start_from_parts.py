"""A spans or boxes session started from a bundle against one from scratch (issue 21).

For each task: a teacher session labels `--teach` items of one pool (the default queue,
ground truth as the answers) and is exported as a bundle. On another pool of the same kind
(other texts or scenes, the same classes), two sessions label the items their queue serves,
`--labels` at a time, retraining after each batch: one started from the bundle
(`Session(start_from=bundle)`), one from scratch. Both are scored on the same held-out test
pool: span F1 (exact match) or mAP@0.5. Seeds vary the sessions (queue ties, training), not
the data; the teacher is the same.

- spans: synthetic entities in sentences (`workbench.data.entity_texts`), 400 texts a pool.
- boxes: digits placed on 128 x 128 canvases (`workbench.data.box_digits`), 300 images a pool.

    .venv/bin/python benchmarks/start_from_parts.py [--seeds 3]

Writes benchmarks/results/start_from_parts.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

SCORE = {"spans": "span_f1", "boxes": "box_map50"}


def pools(task: str):
    if task == "spans":
        from workbench.data.entity_texts import entities

        (a, test), (b, _) = entities(400, n_test=200, seed=0), entities(400, n_test=200, seed=1)
    else:
        from workbench.data.box_digits import box_digits

        (a, test), (b, _) = box_digits(300, n_test=100, seed=0), box_digits(300, n_test=100, seed=1)
    return a, b, test


def teacher(task: str, a, test, root: Path, n: int) -> tuple[Path, float]:
    from workbench import Session

    session = Session(a, root / f"{task}-teacher-store", test=test, watch=False, seed=0)
    session.label_many({q.item_id: a.true_label(q.item_id) for q in session.peek(n)})
    session.retrain()
    score = float(session.history.iloc[-1][SCORE[task]])
    path = session.export(root / f"{task}-teacher")
    session.close()
    return path, score


def curve(task: str, b, test, root: Path, seed: int, start, steps: list[int]) -> list[dict]:
    from workbench import Session

    name = "started" if start is not None else "scratch"
    session = Session(b, root / f"{task}-{name}-{seed}", test=test, watch=False, seed=seed, start_from=start)
    out = []
    for n in steps:
        served = session.peek(n - len(session.labels))
        session.label_many({q.item_id: b.true_label(q.item_id) for q in served})
        started = time.perf_counter()
        session.retrain()
        out.append({"labels": n, SCORE[task]: round(float(session.history.iloc[-1][SCORE[task]]), 4),
                    "round_s": round(time.perf_counter() - started, 2)})
    session.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--labels", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--tasks", nargs="+", default=["spans", "boxes"])
    args = parser.parse_args()
    report = {"date": now(),
              "machine": machine(),
              "seeds": f"0-{args.seeds - 1}", "tasks": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for task in args.tasks:
            a, b, test = pools(task)
            bundle, bundle_score = teacher(task, a, test, root, 150)
            runs = {arm: [curve(task, b, test, root, seed, start, args.labels) for seed in range(args.seeds)]
                    for arm, start in (("started", bundle), ("scratch", None))}
            summary = {arm: {n: [r[i][SCORE[task]] for r in rows] for i, n in enumerate(args.labels)}
                       for arm, rows in runs.items()}
            report["tasks"][task] = {
                "score": SCORE[task], "pools": f"{len(a)} items taught, {len(b)} labeled, {len(test)} test",
                "bundle": {"labels": 150, SCORE[task]: round(bundle_score, 4)},
                "summary": {arm: {str(n): {"all": v, "mean": round(statistics.mean(v), 3)}
                                  for n, v in per.items()} for arm, per in summary.items()},
                "runs": runs}
            print(task, json.dumps(report["tasks"][task]["bundle"]),
                  json.dumps(report["tasks"][task]["summary"]), flush=True)
    save("start_from_parts.json", report, load_average_at_end=True)


if __name__ == "__main__":
    main()
