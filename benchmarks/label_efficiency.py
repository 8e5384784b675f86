"""Label efficiency: how many labels each strategy needs, on data no strategy chose.

Every run is `workbench.simulate`: 20 labels before the first model, then batches of 10
chosen by the strategy, each round scored on a held-out split that no strategy sees. The
first 20 are what the widget shows first (cold_start="queue"): the session's cold start, a
spread over the pool's representation, or a random sample for the random strategy. On the
digits every run is repeated from 20 shared random seed labels (cold_start="random", the
protocol of earlier results), which isolates what the strategy's rounds add. Three data sets:

1. The digits (scikit-learn's 1,797 8 x 8 images): a stratified 70/30 pool/test split per
   seed; every learner x strategy x seed. The yardstick is the issue's: labels needed to
   reach 95% of the accuracy the same learner reaches with the whole pool labeled (same
   seed), with the spread over seeds; plus labels to a fixed 90% / 95% accuracy, which
   compares learners directly.
2. MNIST-sized stand-in (benchmarks/standins.py): the digits upsampled to 28 x 28 with a
   random affine jitter and noise per copy; per seed the originals are split 70/30 first,
   then 10,000 pool and 2,000 test copies are made, so no test image is a copy of a pool
   image. Labels to 90% and 95% accuracy, random against the default.
3. Real texts: the BBC News articles in ../shared/data (1,249 articles, 5 topics), 70/30
   per seed; labels to 90% and 95% accuracy.

Targets use accuracy; macro-F1 and balanced accuracy are recorded beside it in the curves.
Learners: "head" is the default (`LightHead` on the pool's representation), "torch" the
previous default (`TorchClassifier`, a CNN ensemble with self-training; slow: pass it with
--learners), "logreg" logistic regression on the pool's own features.

What was tuned on what, so the rest can be read as held out: the representation's soft
whitening and the spreading strength (alpha) were chosen on digits seed 0 and the stand-in
seed 0; diverse_margin's prefilter on digits seeds 0-4; spreading the cold start over the
representation (rather than the pixels) on digits seeds 0-4 and stand-in seeds 0-1. Digits
seeds 5-9, stand-in seeds 2-4 and the texts were not looked at while choosing.

    python benchmarks/label_efficiency.py [--seeds 10] [--standin-seeds 5] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one process per core; threads would fight
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

RESULTS = Path(__file__).parent / "results"
STRATEGIES = ["random", "least_confidence", "margin", "entropy", "bald", "diverse_margin"]
LEARNERS = ["head", "logreg"]
DEFAULT = ("head", "diverse_margin")  # what Session() uses when given no learner or strategy
TUNED_ON = {"representation whitening, spreading alpha": "digits split seed 0; stand-in seed 0",
            "diverse_margin prefilter": "digits seeds 0-4 (head and logreg)",
            "cold start spread over the representation": "digits seeds 0-4; stand-in seeds 0-1",
            "held out": "digits seeds 5-9, stand-in seeds 2-4, BBC News (all seeds)"}


def _setup_worker():
    import torch

    torch.set_num_threads(1)


def _full_pool_accuracy(learner_name: str, seed: int) -> float:
    from workbench import Session, datasets, make_learner

    _setup_worker()
    train, test = datasets.digits().train_test_split(0.3, seed=seed)
    return _fit_all(train, (test.X, test.y), make_learner(learner_name, seed), Session)


def _fit_all(pool, test, learner, Session) -> float:
    """Accuracy of `learner` trained on every pool label, through a session (so that the
    default learner sees the pool's representation, as in the runs)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        session = Session(pool, f"{tmp}/labels", learner=learner, test=test, watch=False,
                          audit_every=None, resume=False)
        session.label_many({i: pool.true_label(i) for i in pool.item_ids})
        session.retrain()
        accuracy = float(session.history["accuracy"].iloc[-1])
        session.close()
    return accuracy


def _run(args) -> pd.DataFrame:
    data, learner_name, strategy, seed, budget, stop_at, extra_rounds, cold_start = args
    from workbench import make_learner, simulate

    _setup_worker()
    started = time.perf_counter()
    pool = _pool(data, seed)
    curve = simulate(pool, strategy=strategy, learner=make_learner(learner_name, seed),
                     budget=budget, batch=10, initial=20, seed=seed, stop_at=stop_at,
                     extra_rounds=extra_rounds, cold_start=cold_start)
    print(f"{data:8s} {learner_name:7s} {strategy:17s} {cold_start:6s} seed={seed} "
          f"acc@{int(curve['n_labels'].iloc[-1])}={curve['accuracy'].iloc[-1]:.3f} "
          f"({time.perf_counter() - started:.0f}s)", flush=True)
    return curve.drop(columns="recall").assign(learner=learner_name, data=data, cold_start=cold_start)


_POOLS: dict = {}


def _pool(data: str, seed: int):
    """The pool a run labels (the digits are split inside simulate; the others carry their
    own test split)."""
    from workbench import Pool, datasets

    key = (data, seed)
    if key not in _POOLS:
        if data == "digits":
            _POOLS[key] = datasets.digits()
        elif data == "standin":
            X, y, X_test, y_test = standins.digits_28_split(seed)
            _POOLS[key] = Pool.from_arrays(X, y, X_test=X_test, y_test=y_test, name="digits-28x28")
        elif data == "bbc":
            if "bbc" not in _POOLS:  # one vocabulary for pool and test, vectorised once
                texts, labels = standins.bbc_articles()
                _POOLS["bbc"] = Pool.from_texts(texts, labels, name="bbc-news")
            train, test = _POOLS["bbc"].train_test_split(0.3, seed=seed)
            _POOLS[key] = Pool(train.X, item_ids=train.item_ids, y=train.y, kind="text",
                               items=train.items, X_test=test.X, y_test=test.y, name="bbc-news")
        else:
            raise ValueError(data)
    return _POOLS[key]


def _prepare(args):
    """Learn (and cache) a pool's representation once, before its runs start in parallel."""
    data, seed = args
    from workbench.data.representation import RepresentationJob

    _setup_worker()
    rep = RepresentationJob.start(_pool(data, seed), background=False).result()
    return data, seed, rep.build_seconds, rep.from_cache


def _full_accuracy_of(args) -> tuple:
    data, learner_name, seed = args
    from workbench import Session, make_learner

    _setup_worker()
    pool = _pool(data, seed)
    return data, learner_name, seed, _fit_all(pool, (pool.X_test, pool.y_test),
                                              make_learner(learner_name, seed), Session)


def _spread(values: pd.Series) -> dict:
    v = values.dropna()
    return {"mean": _num(v.mean()), "std": _num(v.std(ddof=1)) if len(v) > 1 else None,
            "min": _num(v.min()), "max": _num(v.max()), "median": _num(v.median()),
            "runs_reaching": int(len(v)), "runs": int(len(values)),
            "by_seed": [None if pd.isna(x) else int(x) for x in values]}


def digits_report(ex, seeds, learners, budget, cold_start) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    from workbench import labels_to_reach

    pairs = [(lr, s) for lr in learners for s in seeds]
    full = dict(zip(pairs, ex.map(_full_pool_accuracy, *zip(*pairs))))
    # BALD needs MC-dropout samples, which only the torch learner has. Every run stops two
    # rounds after reaching 95% of full-pool accuracy (the figure we need), or at `budget`.
    jobs = [("digits", lr, st, s, budget, 0.95 * full[(lr, s)], 2, cold_start)
            for lr in learners for s in seeds
            for st in STRATEGIES if not (st == "bald" and lr != "torch")]
    jobs.sort(key=lambda j: (j[1] != "torch", j[2] != "random"))  # longest runs first
    curves = pd.concat(list(ex.map(_run, jobs)), ignore_index=True)
    needed = []
    for (lr, st, s), curve in curves.groupby(["learner", "strategy", "seed"]):
        target = 0.95 * full[(lr, s)]
        needed.append({"learner": lr, "strategy": st, "seed": s, "full_pool_accuracy": full[(lr, s)],
                       "target": target, "labels_needed": labels_to_reach(curve, target),
                       "labels_to_90": labels_to_reach(curve, 0.90),
                       "macro_f1_at_target": _at(curve, labels_to_reach(curve, target), "macro_f1")})
    needed = pd.DataFrame(needed)
    summary = {}
    for lr, group in needed.groupby("learner"):
        by = group.groupby("strategy")
        means = by["labels_needed"].mean()
        summary[lr] = {
            "full_pool_accuracy": float(group["full_pool_accuracy"].mean()),
            "full_pool_accuracy_by_seed": [round(full[(lr, s)], 4) for s in seeds],
            "labels_needed_mean": {k: _num(v) for k, v in means.items()},
            "runs_reaching_target": {k: int(v.notna().sum()) for k, v in by["labels_needed"]},
            "ratio_to_random": {k: _num(v / means["random"]) for k, v in means.items()},
            "labels_needed_spread": {k: _spread(v.set_index("seed")["labels_needed"].reindex(seeds))
                                     for k, v in by},
            "labels_to_90_accuracy": {k: _spread(v.set_index("seed")["labels_to_90"].reindex(seeds))
                                      for k, v in by},
            "macro_f1_at_target_mean": {k: _num(v.mean()) for k, v in by["macro_f1_at_target"]},
        }
        # the ratio per seed (same seed, same split), and its spread
        wide = group.pivot(index="seed", columns="strategy", values="labels_needed")
        summary[lr]["ratio_to_random_by_seed"] = {
            st: [_num(v) for v in (wide[st] / wide["random"]).reindex(seeds)] for st in wide}
    return summary, curves, needed


def reach_report(ex, data, seeds, learners, strategies, budget) -> tuple[dict, pd.DataFrame]:
    """Labels to 90% and 95% accuracy on a data set with its own test split."""
    from workbench import labels_to_reach

    prepared = list(ex.map(_prepare, [(data, s) for s in seeds]))
    full = {(d, lr, s): acc for d, lr, s, acc in
            ex.map(_full_accuracy_of, [(data, lr, s) for lr in learners for s in seeds])}
    # Runs go on 8 rounds past 95% accuracy, so that every one has its figure at 100 labels.
    jobs = [(data, lr, st, s, budget, 0.95, 8, "queue") for lr in learners for st in strategies
            for s in seeds]
    jobs.sort(key=lambda j: j[2] != "random")
    curves = pd.concat(list(ex.map(_run, jobs)), ignore_index=True)
    out = {"representation_build_s": {f"seed {s}": round(b, 1) for _, s, b, _ in prepared}}
    for lr in learners:
        out[lr] = {"full_pool_accuracy_by_seed": [round(full[(data, lr, s)], 4) for s in seeds]}
        for st in strategies:
            runs = curves[(curves.learner == lr) & (curves.strategy == st)]
            per_seed = {t: pd.Series([labels_to_reach(runs[runs.seed == s], t) for s in seeds])
                        for t in (0.90, 0.95)}
            out[lr][st] = {
                "labels_to_90_accuracy": _spread(per_seed[0.90]),
                "labels_to_95_accuracy": _spread(per_seed[0.95]),
                "accuracy_at_60": _mean_at(runs, 60), "accuracy_at_100": _mean_at(runs, 100),
                "macro_f1_at_100": _mean_at(runs, 100, "macro_f1"),
            }
        if "random" in strategies:
            for st in strategies:
                for t in ("90", "95"):
                    mine = out[lr][st][f"labels_to_{t}_accuracy"]["mean"]
                    rand = out[lr]["random"][f"labels_to_{t}_accuracy"]["mean"]
                    out[lr][st][f"ratio_to_random_{t}"] = _num(mine / rand) if mine and rand else None
    return out, curves


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--standin-seeds", type=int, default=5)
    parser.add_argument("--text-seeds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--learners", nargs="+", default=LEARNERS)
    parser.add_argument("--parts", nargs="+", default=["digits", "standin", "bbc"])
    args = parser.parse_args()
    from workbench.ui.charts import learning_curves, save_png

    # Representations are learned afresh, and cached for this run only (not in ~/.cache);
    # the worker processes inherit the folder.
    os.environ.setdefault("WORKBENCH_CACHE_DIR", tempfile.mkdtemp(prefix="wb-bench-cache-"))
    started = time.perf_counter()
    seeds = list(range(args.seeds))
    report = {
        "date": now(),
        "machine": machine(load_average_at_start=True),
        "setup": {"data": "sklearn digits, stratified 70/30 pool/test split per seed",
                  "initial": 20, "batch": 10, "budget": args.budget, "seeds": args.seeds,
                  "cold_start": ("queue: the first 20 labels are what the session serves first "
                                 "(a spread over the representation; random for the random "
                                 "strategy); digits also from 20 shared random labels "
                                 "(summary_random_start)"),
                  "target": "95% of the same learner's full-pool accuracy (same seed); metric: accuracy"},
        "tuned_on": TUNED_ON,
    }
    RESULTS.mkdir(exist_ok=True)
    with ProcessPoolExecutor(args.jobs) as ex:
        if "digits" in args.parts:
            learner, strategy = DEFAULT
            all_curves, all_needed = [], []
            for cold_start, key in (("queue", "default"), ("random", "default_random_start")):
                summary, curves, needed = digits_report(ex, seeds, args.learners, args.budget,
                                                        cold_start)
                mine = summary.get(learner, {})
                report[key] = {
                    "learner": learner, "strategy": strategy, "cold_start": cold_start,
                    "labels_needed_mean": mine.get("labels_needed_mean", {}).get(strategy),
                    "ratio_to_random": mine.get("ratio_to_random", {}).get(strategy),
                    "spread": mine.get("labels_needed_spread", {}).get(strategy),
                    "random_spread": mine.get("labels_needed_spread", {}).get("random"),
                    "targets": {"labels_needed_mean": 35, "ratio_to_random": 0.5}}
                report["summary" if cold_start == "queue" else "summary_random_start"] = summary
                all_curves.append(curves)
                all_needed.append(needed.assign(cold_start=cold_start))
                if cold_start == "queue":
                    save_png(learning_curves(_common_length(curves)), RESULTS / "label_efficiency.png")
            pd.concat(all_curves).to_csv(RESULTS / "label_efficiency_curves.csv", index=False)
            pd.concat(all_needed).to_csv(RESULTS / "label_efficiency_runs.csv", index=False)
        if "standin" in args.parts:
            report["digits_28x28"], standin = reach_report(
                ex, "standin", list(range(args.standin_seeds)), ["head"], ["random", "diverse_margin"],
                args.budget)
            report["digits_28x28"]["setup"] = ("10,000 pool / 2,000 test jittered 28 x 28 copies of "
                                               "the 70% / 30% originals per seed; labels to a fixed "
                                               "accuracy; the default learner")
            standin.to_csv(RESULTS / "label_efficiency_28x28_curves.csv", index=False)
        if "bbc" in args.parts:
            report["bbc_news"], texts = reach_report(
                ex, "bbc", list(range(args.text_seeds)), ["head", "logreg"],
                ["random", "diverse_margin"], 150)
            report["bbc_news"]["setup"] = ("1,249 BBC News articles, 5 topics, stratified 70/30 per "
                                           "seed; TF-IDF + LSA features; labels to a fixed accuracy")
            texts.to_csv(RESULTS / "label_efficiency_bbc_curves.csv", index=False)
    report["runtime_s"] = round(time.perf_counter() - started)
    path = RESULTS / "label_efficiency.json"
    if path.exists() and set(args.parts) != {"digits", "standin", "bbc"}:
        report = {**json.loads(path.read_text()), **report}  # a partial rerun keeps the rest
    save(path.name, report, load_average_at_end=True)
    print(json.dumps({k: report.get(k) for k in ("default", "default_random_start", "digits_28x28")},
                     indent=2))


def _at(curve: pd.DataFrame, n_labels, column: str):
    if pd.isna(n_labels):
        return float("nan")
    return float(curve.loc[curve["n_labels"] == n_labels, column].iloc[0])


def _mean_at(runs: pd.DataFrame, n: int, column: str = "accuracy"):
    hit = runs[runs["n_labels"] == n]
    return _num(hit[column].mean()) if len(hit) == runs["seed"].nunique() else None


def _common_length(curves: pd.DataFrame) -> pd.DataFrame:
    """Cut each strategy's curves where its shortest seed ends, so that every point of the
    chart is a mean over all seeds (early-stopped runs end at different lengths)."""
    ends = curves.groupby(["learner", "strategy", "seed"])["n_labels"].max()
    common = ends.groupby(["learner", "strategy"]).min().rename("end")
    merged = curves.merge(common.reset_index(), on=["learner", "strategy"])
    return merged[merged["n_labels"] <= merged["end"]].drop(columns="end")


def _num(v):
    return None if v is None or pd.isna(v) else round(float(v), 3)


if __name__ == "__main__":
    main()
