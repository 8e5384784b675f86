"""Label history at scale: a store of 1,000,000 events, against the same store at 10,000.

- commit: after ten new labels, `store.commit()` (target <= 50 ms, independent of the store's
  size: the ratio 1M / 10k should be near 1).
- labels(at=): the labels at a commit in the middle of the history (target <= 1 s).
- diff: between two commits, and between a commit and the uncommitted state (<= 1 s); also
  the first diff after opening (it codes the log once) and a diff after ten new labels.
- blame: every labeled item (<= 1 s); blame_line: one item (what the widget asks).
- push: 100,000 new events to another store folder (target <= 5 s).
Baselines measured in the same run: the same operations on a 10,000-event store, and
labels(at=) done the obvious way (pandas: mask, sort, drop_duplicates) on the same 1M log.

    python benchmarks/history_speed.py   ->  results/history_speed.json
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402
from timing import timed as _timed  # noqa: E402

from workbench.store import LabelStore
from workbench.store.sync import clone, push


def build(path: Path, n_events: int, *, n_items: int, commits: int = 10, seed: int = 0) -> LabelStore:
    """A store of `n_events` label/relabel events by two annotators, committed `commits` times."""
    rng = np.random.default_rng(seed)
    writers = [LabelStore.open(path, annotator=a) for a in ("ana", "ben")]
    per_commit = n_events // commits
    for k in range(commits):
        writer = writers[k % 2]
        items = rng.integers(0, n_items, per_commit)
        labels = rng.integers(0, 10, per_commit)
        writer.append_many(pd.DataFrame({"item_id": [f"item-{i:07d}" for i in items],
                                         "label": labels.astype(str), "query": "margin"}),
                           source="human")
        writers[0].commit(f"batch {k}")
    return LabelStore.open(path, annotator="ana")


def timed(fn, repeat: int = 5) -> tuple[float, object]:
    return _timed(fn, repeat)


def measure(store: LabelStore, tmp: Path, n_push: int) -> dict:
    commits = store.log()["id"].tolist()
    middle = commits[len(commits) // 2]
    store.labels()  # the view is built once when a store is opened for work; not timed
    # The first history query of an opened store also codes the whole log (item ids as
    # integers), which later queries extend by the new rows only: timed apart.
    start = time.perf_counter()
    store.diff(middle, "HEAD")
    first_diff = time.perf_counter() - start

    def commit():
        for i in range(10):
            store.append(f"new-{time.perf_counter_ns()}-{i}", "1")
        return store.commit("ten more")

    def diff_after_new_labels():
        for i in range(10):
            store.append(f"late-{time.perf_counter_ns()}-{i}", "3")
        return store.diff(middle)

    figures = {
        "events": len(store),
        "commit_s": timed(commit)[0],
        "labels_at_s": timed(lambda: store.labels(at=middle), repeat=3)[0],
        "diff_commits_s": timed(lambda: store.diff(middle, "HEAD"), repeat=3)[0],
        "diff_uncommitted_s": timed(lambda: store.diff(middle), repeat=3)[0],
        "first_diff_after_open_s": first_diff,
        "diff_after_ten_new_labels_s": timed(diff_after_new_labels, repeat=3)[0],
        "blame_all_s": timed(lambda: store.blame(), repeat=3)[0],
        "blame_line_s": timed(lambda: store.blame_line(store.labels().index[0]))[0],
    }
    store.commit("late labels")  # a clone takes uncommitted labels as a commit of its own
    target = tmp / f"remote-{len(store)}"
    clone(store.path, target)
    store.append_many(pd.DataFrame({"item_id": [f"pushed-{i}" for i in range(n_push)],
                                    "label": "2"}), source="import")
    store.commit(f"{n_push} more")
    start = time.perf_counter()
    summary = push(store, target)
    figures["push_s"] = time.perf_counter() - start
    figures["push_events"] = n_push
    figures["push_files"] = summary["files"]
    return figures


def naive_labels_at(store: LabelStore, ref: str) -> float:
    """labels(at=) the obvious way, as a baseline: mask by frontier, sort, last per item."""
    frontier = store.rev(ref).frontier
    log = store.events()
    start = time.perf_counter()
    inside = log[log["seq"] < log["writer"].map(frontier).fillna(0)]
    undone = set(inside.loc[inside["action"] == "undo", "target"])
    live = inside[~inside["event_id"].isin(undone)].sort_values(["time", "writer", "seq"])
    live.drop_duplicates("item_id", keep="last").set_index("item_id")["label"]
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = measure(build(tmp / "small", 10_000, n_items=2_000), tmp, 1_000)
        built = time.perf_counter()
        big_store = build(tmp / "big", 1_000_000, n_items=200_000)
        build_s = time.perf_counter() - built
        opened = time.perf_counter()
        big_store = LabelStore.open(tmp / "big", annotator="ana")
        big_store.labels()
        open_s = time.perf_counter() - opened
        naive = naive_labels_at(big_store, big_store.log()["id"].iloc[5])
        big = measure(big_store, tmp, 100_000)
    report = {
        "date": now(),
        "machine": machine(pandas=pd.__version__),
        "store_10k": {k: round(v, 4) if isinstance(v, float) else v for k, v in small.items()},
        "store_1m": {k: round(v, 4) if isinstance(v, float) else v for k, v in big.items()},
        "build_1m_s": round(build_s, 1),
        "open_and_first_view_1m_s": round(open_s, 2),
        "baseline_naive_labels_at_1m_s": round(naive, 3),
        "ratios": {"commit_1m_to_10k": round(big["commit_s"] / small["commit_s"], 2),
                   "labels_at_to_naive_pandas": round(big["labels_at_s"] / naive, 2)},
        "targets": {"commit_s": 0.05, "diff_blame_labels_at_s": 1.0, "push_100k_s": 5.0},
    }
    save("history_speed.json", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
