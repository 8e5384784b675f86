"""How long `next()` and `label()` take while a training round runs in the background (issue 20:
`next()` p99 <= 5 ms during a background round), at 20,000 and 100,000 items.

Per pool: a session with the default learner (`LightHead` on the pool's representation, with
its neighbour graph) and strategy; 100 labels and a first round; then `next()` + `label()` of
what it served (the true label), timed one call at a time, as benchmarks/at_scale.py does:
- with no round running (the baseline, measured in the same run), and
- while rounds train in the background: a round is started, labeling goes on, and only
  calls that begin and end while it still trains count; when it finishes the next starts,
  until `--calls` calls are counted.
Reported: p50, p95, p99 and max of each, the ratio of the p50s and p99s during a round to
those with none, how many rounds overlapped, and the garbage collector's pauses that fell
inside timed next() calls (a full collection stops every thread of the process).

Pools (in memory, in this process; benchmarks/at_scale.py measures Parquet on a cluster):
64-d vectors in 10 Gaussian clusters by default, or the 28 x 28 jittered-digit stand-in
(`--pool digits`, standins.py), whose representation takes minutes to learn here.

    python benchmarks/next_latency.py [--sizes 20000 100000] [--calls 400]
        [--baseline-source DIR --baseline-name NAME]  ->  results/next_latency.json

`--baseline-source`: a folder holding an earlier `workbench` package (`git archive <commit>
workbench | tar -x -C DIR`), measured the same way right after, in a process of its own, and
reported beside these figures (before/after on the same machine, minutes apart).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, save  # noqa: E402
from report import now as utc_now  # noqa: E402

from workbench import Pool, Session  # noqa: E402

RESULTS = Path(__file__).parent / "results"
TARGET_MS = 5.0


def make_pool(kind: str, n: int, seed: int = 0):
    if kind == "digits":
        X, y, _, _ = standins.digits_28_split(seed, n_pool=n, n_test=10)
        return Pool.from_arrays(X, y), y
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (10, 64)).astype(np.float32)
    y = rng.integers(0, 10, n)
    return Pool.from_arrays((centres[y] + rng.normal(0, 1.5, (n, 64))).astype(np.float32), y), y


class GcPauses:
    """Pauses of the garbage collector, as (start, seconds, generation)."""

    def __init__(self):
        self.pauses: list[tuple[float, float, int]] = []
        self._start = 0.0

    def __call__(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((self._start, time.perf_counter() - self._start, info["generation"]))

    def within(self, spans) -> list[float]:
        return [d for (s, d, _) in self.pauses if any(a <= s <= b for a, b in spans)]


def one_pair(session, pool, y, log):
    started = time.perf_counter()
    item = session.next()
    ended = time.perf_counter()
    log["next"].append(ended - started)
    log["spans"].append((started, ended))
    started = time.perf_counter()
    session.label(item.item_id, y[pool.position(item.item_id)])
    log["label"].append(time.perf_counter() - started)


def summary(values_s) -> dict:
    ms = 1000 * np.asarray(values_s)
    return {"n": int(len(ms)), "p50_ms": round(float(np.quantile(ms, 0.5)), 2),
            "p95_ms": round(float(np.quantile(ms, 0.95)), 2),
            "p99_ms": round(float(np.quantile(ms, 0.99)), 2), "max_ms": round(float(ms.max()), 2),
            "over_5_ms": int((ms > TARGET_MS).sum())}


def measure(kind: str, n: int, calls: int, gc_pauses: GcPauses) -> dict:
    pool, y = make_pool(kind, n)
    out: dict = {"items": n, "pool": kind}
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        session = Session(pool, Path(tmp) / "labels", watch=False)
        rep = session.representation()
        out["representation_s"] = round(time.perf_counter() - started, 1)
        out["has_graph"] = bool(rep.has_graph)
        for _ in range(100):
            item = session.next()
            session.label(item.item_id, y[pool.position(item.item_id)])
        session.retrain()

        idle = {"next": [], "label": [], "spans": []}
        for _ in range(calls):
            one_pair(session, pool, y, idle)

        busy = {"next": [], "label": [], "spans": []}
        rounds, skipped = 0, 0
        while len(busy["next"]) < calls:
            future = session.retrain(background=True)
            rounds += 1
            while not future.done() and len(busy["next"]) < calls:
                trial = {"next": [], "label": [], "spans": []}
                one_pair(session, pool, y, trial)
                if future.done():  # the round ended during the pair: not a call during a round
                    skipped += 1
                    break
                for key in busy:
                    busy[key] += trial[key]
            session.wait_for_training()
        history = session.history
        session.close()

    out["no_round"] = {"next": summary(idle["next"]), "label": summary(idle["label"]),
                       "gc_pauses_in_next_ms": [round(1000 * d, 1) for d in gc_pauses.within(idle["spans"])]}
    out["during_round"] = {"next": summary(busy["next"]), "label": summary(busy["label"]),
                           "gc_pauses_in_next_ms": [round(1000 * d, 1)
                                                    for d in gc_pauses.within(busy["spans"])],
                           "rounds_overlapped": rounds, "pairs_across_a_round_end_left_out": skipped,
                           "round_duration_s_median": round(float(history["duration_s"][1:].median()), 2),
                           "labels_at_last_round": int(history["n_labels"].iloc[-1])}
    for q in ("p50_ms", "p99_ms"):
        out[f"next_{q[:3]}_ratio_during_round_to_none"] = round(
            out["during_round"]["next"][q] / out["no_round"]["next"][q], 2)
    out["next_p99_within_target"] = out["during_round"]["next"]["p99_ms"] <= TARGET_MS
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--calls", type=int, default=400, help="timed next()+label() pairs per condition")
    parser.add_argument("--pool", choices=["vectors", "digits"], default="vectors")
    parser.add_argument("--out", default=str(RESULTS / "next_latency.json"))
    parser.add_argument("--baseline-source", default=None)
    parser.add_argument("--baseline-name", default=None, help="what the baseline is (a commit)")
    args = parser.parse_args()

    import workbench

    report = {"date": utc_now(),
              "machine": machine(load_average_at_start=True),
              "code": str(Path(workbench.__file__).parent), "target_next_p99_ms": TARGET_MS,
              "results": []}
    gc_pauses = GcPauses()
    gc.callbacks.append(gc_pauses)
    for n in args.sizes:
        result = measure(args.pool, n, args.calls, gc_pauses)
        print(json.dumps(result), flush=True)
        report["results"].append(result)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    if args.baseline_source:
        report["baseline"] = baseline(args)
        for now, then in zip(report["results"], report["baseline"]["results"]):
            for phase in ("no_round", "during_round"):
                for q in ("p50_ms", "p99_ms"):
                    now[f"next_{q[:3]}_{phase}_baseline_over_this"] = round(
                        then[phase]["next"][q] / now[phase]["next"][q], 2)
    save(Path(args.out).name, report, folder=Path(args.out).parent)
    print("wrote", args.out)


def baseline(args) -> dict:
    """The same measurement of the `workbench` package in `args.baseline_source`."""
    source = Path(args.baseline_source).resolve()
    out = source / "next_latency_baseline.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--sizes", *map(str, args.sizes),
               "--calls", str(args.calls), "--pool", args.pool, "--out", str(out)]
    subprocess.run(command, check=True, cwd=source, env={**os.environ, "PYTHONPATH": str(source)})
    report = json.loads(out.read_text())
    if not report["code"].startswith(str(source)):
        raise RuntimeError(f"the baseline ran {report['code']}, not the package in {source}")
    return {"name": args.baseline_name, **report}


if __name__ == "__main__":
    main()
