"""Label efficiency on the digits: how many labels each strategy needs.

For each learner (the default TorchClassifier and LogisticRegression), each seed and
each strategy, simulate labeling on a stratified 70/30 pool/test split fixed by the
seed: 20 random seed labels, then batches of 10 chosen by the strategy, scored on the
held-out 30% that no strategy sees. The torch learner self-trains on the unlabeled
rest of the pool (pseudo-labels), under every strategy alike, random included. The
yardstick is 95% of the accuracy the same learner reaches on the whole pool (same
seed), and the figure is the number of labels each run needs to reach it.
Results: results/label_efficiency.{csv,json,png}.

    python benchmarks/label_efficiency.py [--seeds 5] [--budget 300] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one process per core; threads would fight

import pandas as pd  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STRATEGIES = ["random", "least_confidence", "margin", "entropy", "bald", "diverse_margin"]
LEARNERS = ["torch", "logreg"]
DEFAULT = ("torch", "diverse_margin")  # what Session() uses when given no learner or strategy


def _full_pool_accuracy(learner_name: str, seed: int) -> float:
    import torch

    from workbench import datasets, features_for, make_learner

    torch.set_num_threads(1)
    train, test = datasets.digits().train_test_split(0.3, seed=seed)
    learner = make_learner(learner_name, seed).fit(features_for(make_learner(learner_name), train.X), train.y)
    return float((learner.predict(features_for(learner, test.X)) == test.y).mean())


def _run(args) -> pd.DataFrame:
    learner_name, strategy, seed, budget, stop_at = args
    import torch

    from workbench import datasets, make_learner, simulate

    torch.set_num_threads(1)
    started = time.perf_counter()
    curve = simulate(datasets.digits(), strategy=strategy, learner=make_learner(learner_name, seed),
                     budget=budget, batch=10, initial=20, seed=seed, stop_at=stop_at, extra_rounds=2)
    print(f"{learner_name:7s} {strategy:17s} seed={seed} acc@{budget}={curve['accuracy'].iloc[-1]:.3f} "
          f"({time.perf_counter() - started:.0f}s)", flush=True)
    return curve.assign(learner=learner_name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--learners", nargs="+", default=LEARNERS)
    args = parser.parse_args()
    from workbench import labels_to_reach
    from workbench.ui.charts import learning_curves, save_png

    started = time.perf_counter()
    seeds = range(args.seeds)
    with ProcessPoolExecutor(args.jobs) as ex:
        full = dict(zip([(lr, s) for lr in args.learners for s in seeds],
                        ex.map(_full_pool_accuracy, *zip(*[(lr, s) for lr in args.learners for s in seeds]))))
        # BALD needs MC-dropout samples, which only the torch learner has.
        # Torch runs stop two rounds after reaching the target (the figure we need) to
        # keep the benchmark under an hour on 2 cores; logreg runs are cheap and go to budget.
        jobs = [(lr, st, s, args.budget, 0.95 * full[(lr, s)] if lr == "torch" else None)
                for lr in args.learners for s in seeds for st in STRATEGIES
                if not (st == "bald" and lr != "torch")]
        jobs.sort(key=lambda j: (j[0] != "torch", j[1] != "random"))  # longest runs first
        curves = pd.concat(list(ex.map(_run, jobs)), ignore_index=True)

    needed = []
    for (lr, st, s), curve in curves.groupby(["learner", "strategy", "seed"]):
        target = 0.95 * full[(lr, s)]
        needed.append({"learner": lr, "strategy": st, "seed": s, "full_pool_accuracy": full[(lr, s)],
                       "target": target, "labels_needed": labels_to_reach(curve, target)})
    needed = pd.DataFrame(needed)
    summary = {}
    for lr, group in needed.groupby("learner"):
        means = group.groupby("strategy")["labels_needed"].agg(["mean", "max", "count"])
        reached = group.groupby("strategy")["labels_needed"].apply(lambda v: int(v.notna().sum()))
        random_mean = means.loc["random", "mean"]
        summary[lr] = {
            "full_pool_accuracy": float(group["full_pool_accuracy"].mean()),
            "labels_needed_mean": {k: _num(v) for k, v in means["mean"].items()},
            "runs_reaching_target": {k: int(v) for k, v in reached.items()},
            "ratio_to_random": {k: _num(v / random_mean) for k, v in means["mean"].items()},
        }
    default_learner, default_strategy = DEFAULT
    default_summary = summary.get(default_learner, {})
    report = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version()},
        "setup": {"data": "sklearn digits, stratified 70/30 pool/test split per seed",
                  "initial": 20, "batch": 10, "budget": args.budget, "seeds": args.seeds,
                  "target": "95% of the same learner's full-pool accuracy (same seed)"},
        "default": {"learner": default_learner, "strategy": default_strategy,
                    "labels_needed_mean": default_summary.get("labels_needed_mean", {}).get(default_strategy),
                    "ratio_to_random": default_summary.get("ratio_to_random", {}).get(default_strategy)},
        "summary": summary,
        "runtime_s": round(time.perf_counter() - started),
    }
    RESULTS.mkdir(exist_ok=True)
    curves.to_csv(RESULTS / "label_efficiency_curves.csv", index=False)
    needed.to_csv(RESULTS / "label_efficiency_runs.csv", index=False)
    (RESULTS / "label_efficiency.json").write_text(json.dumps(report, indent=2))
    save_png(learning_curves(_common_length(curves)), RESULTS / "label_efficiency.png")
    print(json.dumps(report, indent=2))


def _common_length(curves: pd.DataFrame) -> pd.DataFrame:
    """Cut each strategy's curves where its shortest seed ends, so that every point of the
    chart is a mean over all seeds (early-stopped runs end at different lengths)."""
    ends = curves.groupby(["learner", "strategy", "seed"])["n_labels"].max()
    common = ends.groupby(["learner", "strategy"]).min().rename("end")
    merged = curves.merge(common.reset_index(), on=["learner", "strategy"])
    return merged[merged["n_labels"] <= merged["end"]].drop(columns="end")


def _num(v):
    return None if pd.isna(v) else round(float(v), 3)


if __name__ == "__main__":
    main()
