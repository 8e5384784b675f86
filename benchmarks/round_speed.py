"""How long a model update takes on data of the sizes people label (issue 9).

A round is what `Session.retrain()` does: fit the learner on the labels, evaluate it on
the held-out split, score what the strategy needs and re-rank the queue. Each figure is the
median of 3 rounds on the same labels (random items, seed 0), timed around `retrain()`, on
this machine, with the default learner (`LightHead` on the pool's representation) and the
default strategy (`diverse_margin`). The one-off cost per pool, learning its representation,
is timed separately: in the background (the session is usable at once), from a cold cache,
then again from the cache.

Pools: 10,000 MNIST-sized digits (28 x 28, see standins.py), 5,000 short texts cut from
the BBC News set, 1,000,000 vectors of 64 dimensions, and RGB images of 64 x 64 and
128 x 128 (photo-sized; 5,000 each). Baselines, measured in the same run on the same pool
and labels: the previous default (`TorchClassifier`, a 3-member CNN ensemble trained from
scratch with self-training) on the 28 x 28 digits, and `LogisticRegression` on the pool's
own features (the learner the texts tutorial used) everywhere.

    python benchmarks/round_speed.py [--quick]  ->  results/round_speed.json
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

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

from workbench import LightHead, Pool, Session, TorchClassifier, logistic_regression  # noqa: E402

TARGETS_S = {"round_10k_images_100_labels": 2, "round_5k_texts_100_labels": 2,
             "round_at_1000_labels": 10, "round_1m_vectors_100_labels": 5,
             "representation_10k_images": 60}


def label_randomly(session: Session, y, n: int, seed: int = 0) -> None:
    """Label `n` random pool items (not the audit reserve) with the ground truth."""
    pool = session.pool
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    have = len(session.labels)
    picks = [pool.item_ids[p] for p in order if pool.item_ids[p] not in session.labels][: n - have]
    session.label_many({i: y[pool.position(i)] for i in picks})


def round_seconds(session: Session, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        session.retrain()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def work_per_round(session: Session) -> dict:
    """Multiply-adds of the latest round's learner, counted from what it did."""
    learner, rep = session.model.learner, session.inputs.representation()
    if not isinstance(learner, LightHead) or rep is None:
        return {}
    n, d = rep.features.shape
    c = len(learner.classes_)
    rows = learner.n_pseudo_labels_ + len(session.labels)  # labels + sampled spread labels
    # L-BFGS: each iteration is a forward and a backward product over all rows
    out = {"head_fit": int(learner.head_.n_iter_[0]) * rows * d * c * 2,
           "labels_only_head_fit": int(learner.query_head_.n_iter_[0]) * len(session.labels) * d * c * 2}
    if learner.transductive_proba_ is not None:
        from workbench.learn.spreading import steps_for

        steps = learner.n_iter or steps_for(rep.neighbors.shape[1])  # at most: it may stop earlier
        out["label_spreading"] = steps * 2 * rep.neighbors.size * c
    test = session.test[0] if session.test is not None else ()
    out["scoring_test_split"] = len(test) * d * c
    out["total"] = sum(out.values())
    return out


def representation_timing(pool: Pool, *, classes) -> dict:
    """The one-off cost: a session on a cold cache learns the representation in the
    background (its first retrain waits for it); then a second session finds it cached."""
    with tempfile.TemporaryDirectory() as tmp:
        reports = []
        started = time.perf_counter()
        session = Session(pool, Path(tmp) / "labels", watch=False, classes=classes,
                          representation_cache=Path(tmp) / "cache")
        session.subscribe(lambda event: event == "representation_progress" and reports.append(
            session.inputs.state()))
        usable_after = time.perf_counter() - started
        session.next()  # the queue works while the representation is learned
        rep = session.inputs.representation()
        cold = time.perf_counter() - started
        session.close()
        started = time.perf_counter()
        again = Session(pool, Path(tmp) / "labels2", watch=False, classes=classes,
                        representation_cache=Path(tmp) / "cache")
        again.inputs.representation()
        cached = time.perf_counter() - started
        again.close()
    return {"build_s": round(rep.build_seconds, 2), "session_usable_after_s": round(usable_after, 3),
            "ready_after_cold_start_s": round(cold, 2), "ready_from_cache_s": round(cached, 3),
            "progress_reports": len(reports),
            "stages": list(dict.fromkeys(r["message"] for r in reports if r["status"] == "building")),
            "features": list(rep.features.shape), "graph": rep.has_graph}


def rounds(pool: Pool, y, test, *, at=(100, 1000), learner=None, repeat: int = 3,
           cache=None) -> dict:
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        kw = {} if learner is None else {"learner": learner}
        session = Session(pool, Path(tmp) / "labels", test=test, watch=False,
                          representation_cache=cache, **kw)
        for n in at:
            label_randomly(session, y, n)
            out[f"round_s_at_{n}_labels"] = round(round_seconds(session, repeat), 3)
            out[f"accuracy_at_{n}_labels"] = round(float(session.history["accuracy"].iloc[-1]), 4)
            work = work_per_round(session)
            if work:
                out[f"multiply_adds_at_{n}_labels"] = work
        session.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="small pools, to try the script")
    parser.add_argument("--skip-baseline-cnn", action="store_true")
    args = parser.parse_args()
    import torch

    scale = 10 if args.quick else 1
    # Cold caches (representations and text features), and none of it in the user's ~/.cache
    os.environ["WORKBENCH_CACHE_DIR"] = tempfile.mkdtemp(prefix="wb-bench-cache-")
    report = {"date": now(),
              "machine": machine(load_average_at_start=True, torch=torch.__version__,
                                 cuda=torch.cuda.is_available()),
              "setup": "median of 3 rounds per figure; labels: random pool items, seed 0; "
                       "default learner LightHead and strategy diverse_margin",
              "targets_s": TARGETS_S}
    cache = Path(tempfile.mkdtemp(prefix="wb-bench-cache-"))

    def log(name, value):
        print(f"{name}: {json.dumps(value)}", flush=True)
        report[name] = value

    # -- 10,000 images of 28 x 28 --------------------------------------------------------
    X, y, X_test, y_test = standins.digits_28_split(0, n_pool=10_000 // scale, n_test=2_000 // scale)
    pool = Pool.from_arrays(X, y)
    log("images_28x28_representation", representation_timing(pool, classes=None))
    log("images_28x28", rounds(pool, y, (X_test, y_test), cache=cache))
    log("images_28x28_baseline_logreg_raw_pixels",
        rounds(pool, y, (X_test, y_test), learner=logistic_regression(), at=(100,)))
    if not args.skip_baseline_cnn:
        log("images_28x28_baseline_previous_default_torch",
            rounds(pool, y, (X_test, y_test), learner=TorchClassifier(random_state=0), at=(100,),
                   repeat=1))

    # -- 5,000 short texts ------------------------------------------------------------------
    texts, labels = standins.bbc_chunks(6_000 // scale, seed=0)
    started = time.perf_counter()
    text_pool = Pool.from_texts(texts[:5_000 // scale], labels[:5_000 // scale])
    vectorise = time.perf_counter() - started
    test_texts = Pool.from_texts(texts[5_000 // scale:], labels[5_000 // scale:])
    log("texts_5k_vectorise_s", round(vectorise, 2))
    started = time.perf_counter()
    Pool.from_texts(texts[:5_000 // scale], labels[:5_000 // scale])
    log("texts_5k_vectorise_again_from_cache_s", round(time.perf_counter() - started, 3))
    log("texts_5k_representation", representation_timing(text_pool, classes=None))
    # The test split must be in the pool's feature space: vectorise pool and test together.
    both = Pool.from_texts(texts, labels)
    text_pool = both.subset(np.arange(5_000 // scale))
    text_test = (both.X[5_000 // scale:], both.y[5_000 // scale:])
    del test_texts
    log("texts_5k", rounds(text_pool, text_pool.y, text_test, cache=cache))
    log("texts_5k_baseline_logreg", rounds(text_pool, text_pool.y, text_test,
                                           learner=logistic_regression(), at=(100,)))

    # -- 1,000,000 vectors of 64 dimensions --------------------------------------------------
    rng = np.random.default_rng(0)
    n = 1_000_000 // scale
    centers = rng.normal(size=(10, 64))
    yv = rng.integers(0, 10, n + 10_000)
    V = (centers[yv] + rng.normal(scale=2.0, size=(n + 10_000, 64))).astype(np.float32)
    started = time.perf_counter()
    vectors = Pool.from_arrays(V[:n], yv[:n])
    log("vectors_1m_pool_s", round(time.perf_counter() - started, 2))
    log("vectors_1m_representation", representation_timing(vectors, classes=None))
    test = (V[n:], yv[n:])
    log("vectors_1m", rounds(vectors, yv[:n], test, at=(100,), cache=cache))
    log("vectors_1m_baseline_logreg", rounds(vectors, yv[:n], test, learner=logistic_regression(),
                                             at=(100,)))
    del V, vectors

    # -- photo-sized RGB images ---------------------------------------------------------------
    for side in (64, 128):
        P, yp = standins.photos(5_000 // scale + 1_000 // scale, side, seed=side)
        photos = Pool.from_arrays(P[:5_000 // scale], yp[:5_000 // scale])
        log(f"images_{side}x{side}_rgb_representation", representation_timing(photos, classes=None))
        log(f"images_{side}x{side}_rgb", rounds(photos, yp[:5_000 // scale],
                                                (P[5_000 // scale:], yp[5_000 // scale:]),
                                                at=(100,), cache=cache))
        del P, photos

    report["ratios_to_baseline"] = _ratios(report)
    name = "round_speed_quick.json" if args.quick else "round_speed.json"
    save(name, report, load_average_at_end=True)
    print(json.dumps(report["ratios_to_baseline"], indent=2))


def _ratios(report: dict) -> dict:
    def ratio(a, b):
        try:
            return round(a / b, 4)
        except (KeyError, TypeError, ZeroDivisionError):
            return None

    out = {}
    img = report.get("images_28x28", {})
    cnn = report.get("images_28x28_baseline_previous_default_torch", {})
    lr = report.get("images_28x28_baseline_logreg_raw_pixels", {})
    out["images_28x28_round_vs_previous_default"] = ratio(img.get("round_s_at_100_labels"),
                                                          cnn.get("round_s_at_100_labels"))
    out["images_28x28_round_vs_logreg_raw"] = ratio(img.get("round_s_at_100_labels"),
                                                    lr.get("round_s_at_100_labels"))
    out["texts_5k_round_vs_logreg"] = ratio(report.get("texts_5k", {}).get("round_s_at_100_labels"),
                                            report.get("texts_5k_baseline_logreg", {}).get(
                                                "round_s_at_100_labels"))
    out["vectors_1m_round_vs_logreg"] = ratio(report.get("vectors_1m", {}).get("round_s_at_100_labels"),
                                              report.get("vectors_1m_baseline_logreg", {}).get(
                                                  "round_s_at_100_labels"))
    return out


if __name__ == "__main__":
    main()
