"""How well `suspects()` finds mislabeled items (issue: "bubble up the examples the network
suspects are mislabeled").

On scikit-learn's 1,797 digits, 5%, 10% and 20% of the labels are flipped, (i) uniformly to
another class and (ii) class-conditionally, each to its class's most confused class (from the
confusion matrix of 5-fold cross-validated logistic regression on the clean pixels), with 5
seeds. Every item is labeled through a real Session (`label_many` with the noisy labels, the
default learner: LightHead on the pool's representation) and ranked. Per setting: precision
at k (k = the number of flips), AUROC of the score against is-flipped
(`sklearn.metrics.roc_auc_score`), and the reviews needed, going down the ranking, to find
90% of the flips.

Compared, on the very same out-of-sample probabilities (`cross_fit`, which `suspects()` uses):
- ours: `suspects(session)`, the default score;
- loss: ranking by the out-of-sample loss -log p[given];
- cleanlab: `cleanlab.filter.find_label_issues` with its defaults (prune_by_noise_rate),
  issues ranked by self-confidence, then the rest by cleanlab's label quality score; also the
  size, precision and recall of the set it flags.
And, for reference, the issue's own setup: 5-fold logistic regression on the raw pixels,
ranked by loss and by cleanlab.

Choosing the default: every score (`margin`, `loss`, `confident_learning`) with one and two
cross-fitting passes is measured; the default is the one with the best mean P@k over the 6
settings on seeds 0-2 (ties: AUROC, then reviews). Seeds 3-4 are reported apart, as held out.

Speed: `suspects()` on the digits (all 1,797 labeled; median of 3) and on 100,000 items of 64
dimensions (Gaussian blobs, 10 classes, all labeled, 10% flipped; one call).

cleanlab is optional and never a dependency of the package (it is AGPL): install it yourself
(`pip install cleanlab`, here 2.9.0 into a separate folder on PYTHONPATH) to get its rows;
without it they are null.

    python benchmarks/label_noise.py [--quick]  ->  results/label_noise.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

from workbench import Pool, Session, datasets
from workbench.loop.cleaning import METHODS, cross_fit, suspects, suspicion

try:  # optional, AGPL: only ever compared against, never required
    import cleanlab
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
except ImportError:  # pragma: no cover - depends on the machine
    cleanlab = None

RESULTS = Path(__file__).parent / "results"
FRACTIONS = (0.05, 0.10, 0.20)
KINDS = ("uniform", "class_conditional")
SEEDS = (0, 1, 2, 3, 4)
CHOOSING = (0, 1, 2)
HELD_OUT = (3, 4)


# -- noise ------------------------------------------------------------------------------------
def most_confused(pool: Pool, y: np.ndarray) -> np.ndarray:
    """For each class, the class 5-fold cross-validated logistic regression on the clean
    pixels mistakes it for most often."""
    X = pool.X.reshape(len(pool), -1)
    with threadpool_limits(1, user_api="blas"):  # threads made these fits 100x slower on 2 cores
        pred = cross_val_predict(LogisticRegression(max_iter=2000), X, y,
                             cv=StratifiedKFold(5, shuffle=True, random_state=0))
    cm = confusion_matrix(y, pred, labels=np.arange(10))
    np.fill_diagonal(cm, -1)
    return cm.argmax(axis=1)


def flip(y: np.ndarray, fraction: float, kind: str, seed: int, confused: np.ndarray):
    """Noisy labels and the mask of flipped items: round(fraction * n) items chosen at random."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(y), int(round(fraction * len(y))), replace=False)
    noisy = y.copy()
    if kind == "uniform":
        noisy[chosen] = (y[chosen] + rng.integers(1, 10, len(chosen))) % 10
    else:
        noisy[chosen] = confused[y[chosen]]
    return noisy, noisy != y


# -- measures ---------------------------------------------------------------------------------
def measures(score: np.ndarray, flipped: np.ndarray) -> dict:
    """P@k (k = number of flips), AUROC, reviews to find 90% of the flips (ties: pool order)."""
    k = int(flipped.sum())
    order = np.lexsort((np.arange(len(score)), -score))
    found = np.cumsum(flipped[order])
    return {"precision_at_k": float(flipped[order[:k]].mean()),
            "auroc": float(roc_auc_score(flipped, score)),
            "reviews_for_90pct": int(np.searchsorted(found, int(np.ceil(0.9 * k))) + 1)}


def cleanlab_ranking(given: np.ndarray, proba: np.ndarray, flipped: np.ndarray) -> dict | None:
    """cleanlab's default find_label_issues: its issues first (ranked by self-confidence),
    then the rest by its label quality score; plus the flagged set itself."""
    if cleanlab is None:
        return None
    proba = proba / proba.sum(axis=1, keepdims=True)
    issues = find_label_issues(given, proba, return_indices_ranked_by="self_confidence", n_jobs=1)
    quality = get_label_quality_scores(given, proba)
    rest = np.setdiff1d(np.arange(len(given)), issues)
    order = np.concatenate([issues, rest[np.argsort(quality[rest], kind="stable")]])
    score = np.empty(len(given))
    score[order] = np.arange(len(given), 0, -1)
    out = measures(score, flipped)
    hits = int(flipped[issues].sum())
    out.update({"n_flagged": int(len(issues)),
                "flagged_precision": hits / len(issues) if len(issues) else None,
                "flagged_recall": hits / int(flipped.sum())})
    return out


def logistic_reference(pool: Pool, noisy: np.ndarray, flipped: np.ndarray, seed: int) -> dict:
    """The issue's measurement: 5-fold logistic-regression probabilities on the raw pixels."""
    X = pool.X.reshape(len(pool), -1)
    with threadpool_limits(1, user_api="blas"):
        proba = cross_val_predict(LogisticRegression(max_iter=2000), X, noisy, method="predict_proba",
                                  cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    return {"loss": measures(suspicion(proba, noisy, "loss"), flipped),
            "cleanlab": cleanlab_ranking(noisy, proba, flipped)}


# -- one setting ------------------------------------------------------------------------------
def run_setting(pool: Pool, y, kind: str, fraction: float, seed: int, confused, tmp: Path,
                cache: Path) -> dict:
    noisy, flipped = flip(y, fraction, kind, seed, confused)
    session = Session(pool, tmp / f"{kind}-{fraction}-{seed}", watch=False, seed=seed,
                      representation_cache=cache)
    session.label_many(dict(zip(pool.item_ids, noisy.tolist())))
    session.inputs.representation()  # learned once per run (then cached): not timed
    position = {item: p for p, item in enumerate(pool.item_ids)}

    started = time.perf_counter()
    table = suspects(session)
    seconds = time.perf_counter() - started
    ours = np.empty(len(pool))
    ours[[position[i] for i in table["item_id"]]] = table["score"].to_numpy()

    fits = {passes: cross_fit(session, passes=passes) for passes in (1, 2)}
    candidates = {}
    for passes, fit in fits.items():
        at = np.array([position[i] for i in fit.item_ids])
        for method in METHODS:
            score = np.empty(len(pool))
            score[at] = suspicion(fit.proba, fit.given, method)
            candidates[f"{method}/{passes}"] = measures(score, flipped)
    default = fits[table.attrs["passes"]]  # the probabilities suspects() ranked by
    at = np.array([position[i] for i in default.item_ids])
    proba = np.empty((len(pool), default.proba.shape[1]))
    proba[at] = default.proba
    given = np.empty(len(pool), dtype=np.int64)
    given[at] = default.given
    single = fits[1]
    proba1 = np.empty_like(proba)
    proba1[[position[i] for i in single.item_ids]] = single.proba
    session.close()
    return {
        "kind": kind, "fraction": fraction, "seed": seed, "n_flips": int(flipped.sum()),
        "ours": measures(ours, flipped), "ours_seconds": round(seconds, 3),
        "loss": measures(suspicion(proba, given, "loss"), flipped),
        "cleanlab": cleanlab_ranking(given, proba, flipped),
        "loss_one_pass": measures(suspicion(proba1, given, "loss"), flipped),
        "cleanlab_one_pass": cleanlab_ranking(given, proba1, flipped),
        "candidates": candidates,
        "reference_logistic_regression": logistic_reference(pool, noisy, flipped, seed),
    }


def mean_of(rows: list[dict], path: tuple) -> dict | None:
    values = []
    for row in rows:
        for key in path:
            row = None if row is None else row.get(key)
        values.append(row)
    if any(v is None for v in values):
        return None
    keys = ["precision_at_k", "auroc", "reviews_for_90pct"] + (
        ["n_flagged", "flagged_precision", "flagged_recall"] if "n_flagged" in values[0] else [])
    return {k: round(float(np.mean([v[k] for v in values if v[k] is not None])), 4) for k in keys}


def summarise(runs: list[dict], seeds) -> dict:
    out = {}
    for kind in KINDS:
        for fraction in FRACTIONS:
            rows = [r for r in runs if r["kind"] == kind and r["fraction"] == fraction
                    and r["seed"] in seeds]
            if not rows:
                continue
            out[f"{kind} {fraction:.0%}"] = {
                "n_flips": rows[0]["n_flips"], "seeds": sorted(r["seed"] for r in rows),
                "ours": mean_of(rows, ("ours",)), "loss": mean_of(rows, ("loss",)),
                "cleanlab": mean_of(rows, ("cleanlab",)),
                "loss_one_pass": mean_of(rows, ("loss_one_pass",)),
                "cleanlab_one_pass": mean_of(rows, ("cleanlab_one_pass",)),
                "reference_logreg_loss": mean_of(rows, ("reference_logistic_regression", "loss")),
                "reference_logreg_cleanlab": mean_of(rows, ("reference_logistic_regression",
                                                            "cleanlab")),
            }
    return out


def choose(runs: list[dict]) -> dict:
    """Every candidate score's mean over the settings on the choosing seeds, best first."""
    rows = [r for r in runs if r["seed"] in CHOOSING]
    table = {name: mean_of(rows, ("candidates", name)) for name in rows[0]["candidates"]}
    ranked = sorted(table, key=lambda n: (-table[n]["precision_at_k"], -table[n]["auroc"],
                                          table[n]["reviews_for_90pct"]))
    return {"seeds": list(CHOOSING), "ranked": ranked, "means": table}


# -- speed ------------------------------------------------------------------------------------
def time_digits(pool: Pool, y, tmp: Path, cache: Path) -> dict:
    session = Session(pool, tmp / "speed-digits", watch=False, representation_cache=cache)
    session.label_many(dict(zip(pool.item_ids, y.tolist())))
    session.inputs.representation()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        suspects(session)
        times.append(time.perf_counter() - started)
    session.close()
    return {"items": len(pool), "labels": len(pool), "median_s": round(statistics.median(times), 3),
            "all_s": [round(t, 3) for t in times], "target_s": 5}


def time_vectors(tmp: Path, cache: Path, n: int = 100_000) -> dict:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 64))
    yv = rng.integers(0, 10, n)
    V = (centers[yv] + rng.normal(scale=2.0, size=(n, 64))).astype(np.float32)
    noisy, flipped = flip(yv, 0.10, "uniform", 0, np.arange(10))
    pool = Pool.from_arrays(V, yv)
    session = Session(pool, tmp / "speed-vectors", watch=False, representation_cache=cache)
    session.inputs.representation()
    started = time.perf_counter()
    session.label_many(dict(zip(pool.item_ids, noisy.tolist())))
    setup = time.perf_counter() - started
    started = time.perf_counter()
    table = suspects(session)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    top = suspects(session, k=100)
    seconds_top = time.perf_counter() - started
    position = {item: p for p, item in enumerate(pool.item_ids)}
    score = np.empty(n)
    score[[position[i] for i in table["item_id"]]] = table["score"].to_numpy()
    session.close()
    return {"items": n, "dims": 64, "labels": n, "graph": bool(session.inputs.representation().has_graph),
            "label_many_s": round(setup, 2), "suspects_all_s": round(seconds, 2),
            "suspects_top_100_s": round(seconds_top, 2), "target_s": 60,
            "quality_10pct_uniform": measures(score, flipped),
            "top_100_precision": float(np.mean([flipped[position[i]] for i in top["item_id"]]))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10% only, no 100k timing")
    args = parser.parse_args()
    global FRACTIONS, SEEDS
    if args.quick:
        FRACTIONS, SEEDS = (0.10,), (0, 3)
    os.environ["WORKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="wb-bench-cache-")
    report = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                          "python": platform.python_version(),
                          "load_average_at_start": os.getloadavg()},
              "cleanlab": None if cleanlab is None else cleanlab.__version__,
              "seeds": list(SEEDS), "seeds_for_choosing": list(CHOOSING),
              "seeds_held_out": list(HELD_OUT),
              "setup": "digits, all 1,797 items labeled with noisy labels through Session.label_many; "
                       "default learner LightHead; suspects() with its defaults (5 folds)"}
    pool = datasets.digits()
    y = np.asarray(pool.y).astype(int)
    confused = most_confused(pool, y)
    report["most_confused"] = {str(c): int(to) for c, to in enumerate(confused)}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cache = tmp / "cache"
        for kind in KINDS:
            for fraction in FRACTIONS:
                for seed in SEEDS:
                    row = run_setting(pool, y, kind, fraction, seed, confused, tmp, cache)
                    runs.append(row)
                    print(f"{kind} {fraction:.0%} seed {seed}: ours {row['ours']} loss {row['loss']} "
                          f"cleanlab {row['cleanlab']}", flush=True)
        report["choice"] = choose(runs)
        report["default_is_the_choice"] = report["choice"]["ranked"][0] == "margin/2"
        report["all_seeds"] = summarise(runs, SEEDS)
        report["choosing_seeds"] = summarise(runs, CHOOSING)
        report["held_out_seeds"] = summarise(runs, HELD_OUT)
        report["runs"] = runs
        report["speed_digits"] = time_digits(pool, y, tmp, cache)
        print("speed digits", report["speed_digits"], flush=True)
        if not args.quick:
            report["speed_100k_vectors"] = time_vectors(tmp, cache)
            print("speed 100k", report["speed_100k_vectors"], flush=True)
    report["machine"]["load_average_at_end"] = os.getloadavg()
    RESULTS.mkdir(exist_ok=True)
    name = "label_noise_quick.json" if args.quick else "label_noise.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2))
    print(json.dumps(report["all_seeds"], indent=1))


if __name__ == "__main__":
    main()
