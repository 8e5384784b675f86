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

Actively chosen labels (issue 18, item 3: the labels people give are the ones the queue
serves, the ambiguous ones, not a random sample): for each seed a real Session on the digits
labels what its default strategy serves with the true label, as the simulated annotator of
`workbench.loop.simulate` does (the 20 cold-start items, then a round and the next
`batch_size` = 10 items, round after round). At 200, 500 and 1,000 labels, 7% of the labels
given so far are flipped (uniformly, and towards the class's most confused class) as one
`label_many` relabel in that session, ranked the same way, and taken back with `undo()`
before labeling goes on (so the queue never learns from them). Reported per size and kind:
the mean over the seeds and the spread (standard deviation, min, max).

Compared, on the very same out-of-sample probabilities (`cross_fit`, which `suspects()` uses):
- ours: `suspects(session)`, the default score (since issue 18 the loss, 3 passes);
- loss: ranking by the out-of-sample loss -log p[given] (now the same as ours);
- cleanlab: `cleanlab.filter.find_label_issues` with its defaults (prune_by_noise_rate),
  issues ranked by self-confidence, then the rest by cleanlab's label quality score; also the
  size, precision and recall of the set it flags.
And, for reference, the issue's own setup: 5-fold logistic regression on the raw pixels,
ranked by loss and by cleanlab.

Choosing the default: every score (`margin`, `loss`, `confident_learning`) after one, two and
three cross-fitting passes is measured (one `cross_fit(passes=3)`: its `by_pass`), ranked by
the mean P@k on seeds 0-2 (ties: AUROC, then reviews), separately for the 6 fully labeled
settings and the 6 actively chosen ones. Seeds 3-4 are reported apart, as held out.
`default_is_the_choice` says whether suspects()'s default (loss, 3 passes) ranks first, or
ties the first on P@k, in each; `previous_default` is the default before (margin, 2 passes).

Alternatives tried on the actively chosen labels and not taken (`alternatives` in each active
run, `active_alternatives` for the means): 10 folds instead of 5; a k-nearest-neighbour vote
(k = 10, cosine, weighted by similarity) over the other labeled items in the learner's
features, leaving out those the last pass left out, averaged into the last pass's
probabilities at weight 0.3 or 0.5 (a second opinion from the representation); confident
learning's per-class thresholds t_j (the mean p_j over the items labeled j) used to
calibrate the probabilities (p_j / t_j, renormalised) before scoring. Each with the loss and
the margin, 3 passes.

Speed: `suspects()` on the digits (all 1,797 labeled; median of 3) and on 100,000 items of 64
dimensions (Gaussian blobs, 10 classes, all labeled, 10% flipped; one call), with the default
and with `passes=2` (the default before).

cleanlab is optional and never a dependency of the package (it is AGPL): install it yourself
(`pip install cleanlab`, here 2.9.0 into a separate folder on PYTHONPATH) to get its rows;
without it they are null.

    python benchmarks/label_noise.py [--quick]  ->  results/label_noise.json

About 12 minutes on 2 cores (--quick: 2 seeds, 10% and 200/500 labels only, no 100k timing,
about 3 minutes, into results/label_noise_quick.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

from workbench import Pool, Session, datasets
from workbench.loop.cleaning import METHODS, cross_fit, suspects, suspicion

try:  # optional, AGPL: only ever compared against, never required
    import cleanlab
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
except ImportError:  # pragma: no cover - depends on the machine
    cleanlab = None

FRACTIONS = (0.05, 0.10, 0.20)
KINDS = ("uniform", "class_conditional")
SEEDS = (0, 1, 2, 3, 4)
CHOOSING = (0, 1, 2)
HELD_OUT = (3, 4)
PASSES = (1, 2, 3)
DEFAULT = "loss/3"  # suspects()'s default: the loss after (up to) 3 passes
PREVIOUS = "margin/2"  # the default before issue 18
ACTIVE_SIZES = (200, 500, 1000)
ACTIVE_FRACTION = 0.07  # the issue's 29 flips in 400 labels
INITIAL = 20  # cold-start labels before the first round, as simulate() gives


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
def judge(session, ids: list, flipped: np.ndarray) -> dict:
    """suspects() (timed) and every candidate score, measured against `flipped` (aligned with
    `ids`, the session's labeled items)."""
    row_of = {item: r for r, item in enumerate(ids)}
    started = time.perf_counter()
    table = suspects(session)
    seconds = time.perf_counter() - started
    ours = np.empty(len(ids))
    ours[[row_of[i] for i in table["item_id"]]] = table["score"].to_numpy()

    fit = cross_fit(session, passes=max(PASSES))  # deterministic: suspects()'s own probabilities
    at = np.array([row_of[i] for i in fit.item_ids])
    given = np.empty(len(ids), dtype=np.int64)
    given[at] = fit.given
    by_pass = {}
    for passes in PASSES:  # passes stop early once they would repeat: the last one stands
        proba = np.empty((len(ids), fit.proba.shape[1]))
        proba[at] = fit.by_pass[min(passes, fit.passes) - 1]
        by_pass[passes] = proba
    candidates = {f"{method}/{passes}": measures(suspicion(proba, given, method), flipped)
                  for passes, proba in by_pass.items() for method in METHODS}
    assert candidates[DEFAULT] == measures(ours, flipped), "suspects() is the default candidate"
    last, first = by_pass[max(PASSES)], by_pass[1]
    return {
        "n_flips": int(flipped.sum()), "passes_made": fit.passes,
        "ours": measures(ours, flipped), "ours_seconds": round(seconds, 3),
        "previous_default": candidates[PREVIOUS],
        "loss": measures(suspicion(last, given, "loss"), flipped),
        "cleanlab": cleanlab_ranking(given, last, flipped),
        "loss_one_pass": measures(suspicion(first, given, "loss"), flipped),
        "cleanlab_one_pass": cleanlab_ranking(given, first, flipped),
        "candidates": candidates,
    }


def run_setting(pool: Pool, y, kind: str, fraction: float, seed: int, confused, tmp: Path,
                cache: Path) -> dict:
    noisy, flipped = flip(y, fraction, kind, seed, confused)
    session = Session(pool, tmp / f"{kind}-{fraction}-{seed}", watch=False, seed=seed,
                      representation_cache=cache)
    session.label_many(dict(zip(pool.item_ids, noisy.tolist())))
    session.inputs.representation()  # learned once per run (then cached): not timed
    row = {"kind": kind, "fraction": fraction, "seed": seed,
           **judge(session, list(pool.item_ids), flipped),
           "reference_logistic_regression": logistic_reference(pool, noisy, flipped, seed)}
    session.close()
    return row


# -- actively chosen labels -------------------------------------------------------------------
def run_active(pool: Pool, seed: int, confused, tmp: Path, cache: Path, sizes=None) -> list[dict]:
    """One session labels what its queue serves (true labels) up to max(sizes); at each size
    (default ACTIVE_SIZES), ACTIVE_FRACTION of the labels are flipped each way, ranked, and
    the flips undone."""
    sizes = ACTIVE_SIZES if sizes is None else sizes
    session = Session(pool, tmp / f"active-{seed}", watch=False, seed=seed,
                      representation_cache=cache)
    session.inputs.representation()  # the cold start spreads over it, as in the widget
    served: dict = {}
    started = time.perf_counter()

    def label(k: int) -> None:
        for item in session.peek(k):
            session.label(item, pool.true_label(item.item_id))
            served[item.strategy] = served.get(item.strategy, 0) + 1

    rows = []
    label(INITIAL)
    for size in sizes:
        while len(session.labels) < size:
            session.retrain()
            label(min(session.batch_size, size - len(session.labels)))
        labeling_s = time.perf_counter() - started
        truth = dict(session.labels)
        ids = list(truth)
        y = np.array([int(truth[i]) for i in ids])
        for kind in KINDS:
            noisy, flipped = flip(y, ACTIVE_FRACTION, kind, seed * 10_000 + size, confused)
            session.label_many({ids[r]: int(noisy[r]) for r in np.flatnonzero(flipped)})
            assert [session.labels[i] for i in ids] == noisy.tolist()
            row = {"kind": kind, "n_labels": size, "seed": seed, **judge(session, ids, flipped),
                   "served_as": dict(served), "labeling_s": round(labeling_s, 1),
                   "alternatives": alternatives(session, ids, flipped)}
            session.undo()  # the flips go; the queue goes on from the true labels
            assert session.labels == truth
            rows.append(row)
            print(f"active {size} {kind} seed {seed}: ours {row['ours']} previous default "
                  f"{row['previous_default']} cleanlab {row['cleanlab']}", flush=True)
    session.close()
    return rows


def alternatives(session, ids: list, flipped: np.ndarray) -> dict:
    """The candidates not taken (see the module doc), measured like the others."""
    row_of = {item: r for r, item in enumerate(ids)}
    out = {}
    fits = {"folds=5": cross_fit(session, passes=max(PASSES)),
            "folds=10": cross_fit(session, folds=10, passes=max(PASSES))}
    for name, fit in fits.items():
        at = np.array([row_of[i] for i in fit.item_ids])
        given = np.empty(len(ids), dtype=np.int64)
        given[at] = fit.given
        proba = np.empty((len(ids), fit.proba.shape[1]))
        proba[at] = fit.proba
        options = {name: proba}
        if name == "folds=5":
            features = session.inputs.features()[session.pool.positions(ids)].reshape(len(ids), -1)
            left_out = np.array([row_of[i] for i in fit.pruned], dtype=np.int64)
            vote = knn_vote(features, given, proba.shape[1], left_out)
            options["knn 0.3"] = 0.7 * proba + 0.3 * vote
            options["knn 0.5"] = 0.5 * proba + 0.5 * vote
            options["cl thresholds"] = calibrated(proba, given)
        for option, p in options.items():
            for method in ("loss", "margin"):
                out[f"{option}/{method}"] = measures(suspicion(p, given, method), flipped)
    return out


def knn_vote(features: np.ndarray, given: np.ndarray, n_classes: int, left_out: np.ndarray,
             k: int = 10) -> np.ndarray:
    """Each item's k most similar other labeled items (cosine; `left_out` excluded) vote
    for their labels, weighted by similarity."""
    X = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    S = X @ X.T
    np.fill_diagonal(S, -np.inf)
    S[:, left_out] = -np.inf
    near = np.argsort(-S, axis=1)[:, :k]
    weight = np.take_along_axis(S, near, axis=1)
    weight = np.where(np.isfinite(weight), np.maximum(weight, 0), 0)
    vote = np.full((len(given), n_classes), 1e-3)
    for j in range(near.shape[1]):
        np.add.at(vote, (np.arange(len(given)), given[near[:, j]]), weight[:, j])
    return vote / vote.sum(axis=1, keepdims=True)


def calibrated(proba: np.ndarray, given: np.ndarray) -> np.ndarray:
    """p_j / t_j, renormalised (t_j: confident learning's threshold, the mean p_j over the
    items labeled j; 1 for a class nobody labeled)."""
    counts = np.bincount(given, minlength=proba.shape[1])
    sums = np.zeros(proba.shape[1])
    np.add.at(sums, given, proba[np.arange(len(given)), given])
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)
    q = proba / np.maximum(thresholds, 1e-12)
    return q / q.sum(axis=1, keepdims=True)


def spread(rows: list[dict], path: tuple) -> dict:
    """P@k over the rows: mean, standard deviation, min and max; AUROC and reviews: mean."""
    values = []
    for row in rows:
        for key in path:
            row = row[key]
        values.append(row)
    p = [v["precision_at_k"] for v in values]
    return {"precision_at_k": round(float(np.mean(p)), 4),
            "precision_at_k_sd": round(float(np.std(p, ddof=1)), 4) if len(p) > 1 else None,
            "precision_at_k_min": round(min(p), 4), "precision_at_k_max": round(max(p), 4),
            "auroc": round(float(np.mean([v["auroc"] for v in values])), 4),
            "reviews_for_90pct": round(float(np.mean([v["reviews_for_90pct"] for v in values])), 2)}


def summarise_active(runs: list[dict], seeds) -> dict:
    out = {}
    sizes = sorted({r["n_labels"] for r in runs})
    for size in sizes:
        for kind in (*KINDS, "both"):
            rows = [r for r in runs if r["n_labels"] == size and r["seed"] in seeds
                    and kind in (r["kind"], "both")]
            if not rows:
                continue
            out[f"{size} labels, {kind}"] = {
                "n_flips": rows[0]["n_flips"], "seeds": sorted({r["seed"] for r in rows}),
                "ours": spread(rows, ("ours",)),
                "previous_default": spread(rows, ("previous_default",)),
                "loss": spread(rows, ("loss",)),
                "cleanlab": (None if rows[0]["cleanlab"] is None
                             else spread(rows, ("cleanlab",))),
            }
    return out


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
                "ours": mean_of(rows, ("ours",)),
                "previous_default": mean_of(rows, ("previous_default",)),
                "loss": mean_of(rows, ("loss",)),
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
    best = table[ranked[0]]["precision_at_k"]
    return {"seeds": list(CHOOSING), "settings": len(rows), "ranked": ranked, "means": table,
            "default": DEFAULT, "default_is_the_choice": ranked[0] == DEFAULT,
            "default_ties_the_best_precision": table[DEFAULT]["precision_at_k"] >= best}


# -- speed ------------------------------------------------------------------------------------
def time_digits(pool: Pool, y, tmp: Path, cache: Path) -> dict:
    session = Session(pool, tmp / "speed-digits", watch=False, representation_cache=cache)
    session.label_many(dict(zip(pool.item_ids, y.tolist())))
    session.inputs.representation()
    times = {3: [], 2: []}
    for _ in range(3):
        for passes in times:
            started = time.perf_counter()
            table = suspects(session, passes=passes)
            times[passes].append(time.perf_counter() - started)
            if passes == 3:
                made = table.attrs["passes"]
    session.close()
    return {"items": len(pool), "labels": len(pool), "median_s": round(statistics.median(times[3]), 3),
            "all_s": [round(t, 3) for t in times[3]], "passes_made": made,
            "two_passes_median_s": round(statistics.median(times[2]), 3), "target_s": 5}


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
    started = time.perf_counter()
    suspects(session, passes=2)
    seconds_two = time.perf_counter() - started
    position = {item: p for p, item in enumerate(pool.item_ids)}
    score = np.empty(n)
    score[[position[i] for i in table["item_id"]]] = table["score"].to_numpy()
    session.close()
    return {"items": n, "dims": 64, "labels": n, "graph": bool(session.inputs.representation().has_graph),
            "label_many_s": round(setup, 2), "suspects_all_s": round(seconds, 2),
            "passes_made": table.attrs["passes"], "suspects_top_100_s": round(seconds_top, 2),
            "suspects_all_two_passes_s": round(seconds_two, 2), "target_s": 60,
            "quality_10pct_uniform": measures(score, flipped),
            "top_100_precision": float(np.mean([flipped[position[i]] for i in top["item_id"]]))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="2 seeds, 10%% and 200/500 labels only, no 100k timing")
    args = parser.parse_args()
    global FRACTIONS, SEEDS, ACTIVE_SIZES
    if args.quick:
        FRACTIONS, SEEDS, ACTIVE_SIZES = (0.10,), (0, 3), (200, 500)
    began = time.perf_counter()
    os.environ["WORKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="wb-bench-cache-")
    report = {"date": now(),
              "machine": machine(load_average_at_start=True),
              "cleanlab": None if cleanlab is None else cleanlab.__version__,
              "seeds": list(SEEDS), "seeds_for_choosing": list(CHOOSING),
              "seeds_held_out": list(HELD_OUT),
              "setup": "digits, all 1,797 items labeled with noisy labels through Session.label_many; "
                       "default learner LightHead; suspects() with its defaults (5 folds, 3 passes)",
              "active_setup": f"digits; per seed one Session labels what its default strategy "
                              f"serves ({INITIAL} cold-start items, then a round and "
                              f"10 items at a time) with the true labels; at "
                              f"{', '.join(map(str, ACTIVE_SIZES))} labels "
                              f"{ACTIVE_FRACTION:.0%} of them flipped (each kind), ranked by "
                              "suspects(), and undone"}
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
        active = []
        for seed in SEEDS:
            active.extend(run_active(pool, seed, confused, tmp, cache))
        report["choice"] = choose(runs)
        report["active_choice"] = choose(active)
        report["active_alternatives"] = {
            "seeds": list(CHOOSING),
            "means": {name: mean_of([r for r in active if r["seed"] in CHOOSING],
                                    ("alternatives", name))
                      for name in active[0]["alternatives"]},
            "held_out_seeds_means": {name: mean_of([r for r in active if r["seed"] in HELD_OUT],
                                                   ("alternatives", name))
                                     for name in active[0]["alternatives"]} if any(
                r["seed"] in HELD_OUT for r in active) else None}
        report["default_is_the_choice"] = {
            "fully_labeled": report["choice"]["default_ties_the_best_precision"],
            "actively_chosen": report["active_choice"]["default_ties_the_best_precision"]}
        report["all_seeds"] = summarise(runs, SEEDS)
        report["choosing_seeds"] = summarise(runs, CHOOSING)
        report["held_out_seeds"] = summarise(runs, HELD_OUT)
        report["active_all_seeds"] = summarise_active(active, SEEDS)
        report["active_choosing_seeds"] = summarise_active(active, CHOOSING)
        report["active_held_out_seeds"] = summarise_active(active, HELD_OUT)
        report["runs"] = runs
        report["active_runs"] = active
        report["speed_digits"] = time_digits(pool, y, tmp, cache)
        print("speed digits", report["speed_digits"], flush=True)
        if not args.quick:
            report["speed_100k_vectors"] = time_vectors(tmp, cache)
            print("speed 100k", report["speed_100k_vectors"], flush=True)
    report["run_time_s"] = round(time.perf_counter() - began, 1)
    name = "label_noise_quick.json" if args.quick else "label_noise.json"
    save(name, report, load_average_at_end=True)
    print(json.dumps({"fully labeled": {k: v["ours"] for k, v in report["all_seeds"].items()},
                      "actively chosen": {k: v["ours"] for k, v in report["active_all_seeds"].items()},
                      "run_time_s": report["run_time_s"]}, indent=1))


if __name__ == "__main__":
    main()
