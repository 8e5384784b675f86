"""Speed of the engine's hot paths, with baselines measured in the same run.

- query round: score a 100,000-item pool of 64-d vectors with the trained default
  learner and rank it with the default strategy (diverse_margin) and with plain margin,
  as a Session does after each retrain (target: under 1 s on 2 cores). Baseline: the
  margin round with LogisticRegression.
- retrain: fitting the default TorchClassifier on all of the digits' pool labels
  (target: a few seconds), and mid-session on 100 labels while self-training on the
  1,157 unlabeled rest of the pool. Baseline: LogisticRegression on the same labels.
- session label: Session.label() end to end (validation + durable append), p50/p99; and
  Session.next() (read other writers' new events, claim the item), alone and while a
  teammate's notebook labels the same store (one event for every two of ours).

    python benchmarks/engine_speed.py   ->  results/engine_speed.json
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

from workbench import LabelStore, Pool, Session, TorchClassifier, datasets, logistic_regression
from workbench.learn.queue import build_queue
from workbench.learn.strategies import diverse_margin, margin


def best_of(fn, repeat=5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def query_round(learner, X, strategy="margin") -> None:
    proba = learner.predict_proba(X)
    if strategy == "diverse_margin":
        query = diverse_margin(proba, len(X), features=X, batch=10, rng=0)
    else:
        query = margin(proba, len(X), rng=0)
    build_queue(query.positions, query.scores, strategy)


def next_latencies(session, y, *, teammate, n: int = 200) -> list[float]:
    """Milliseconds per Session.next() in a label-next loop; `teammate` (a second handle on
    the store) labels other items meanwhile, which each next() must read first."""
    times = []
    for k in range(n):
        if teammate is not None and k % 2 == 0:
            teammate.append(f"{len(y) - 1 - k}", "0")
        t = time.perf_counter()
        item = session.next()
        times.append(1000 * (time.perf_counter() - t))
        session.label(item, int(y[item.position]))
    return sorted(times)


def percentiles(ms: list[float]) -> dict:
    ms = sorted(ms)
    return {"p50": round(statistics.median(ms), 3), "p99": round(ms[int(0.99 * len(ms)) - 1], 3),
            "n": len(ms)}


def main() -> None:
    import torch

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(10, 64))
    y = rng.integers(0, 10, 100_000)
    X = (centers[y] + rng.normal(scale=2.0, size=(100_000, 64))).astype(np.float32)
    labeled = rng.choice(len(X), 500, replace=False)
    torch_clf = TorchClassifier(random_state=0).fit(X[labeled], y[labeled])
    logreg = logistic_regression().fit(X[labeled], y[labeled])
    t_query = best_of(lambda: query_round(torch_clf, X))
    t_query_diverse = best_of(lambda: query_round(torch_clf, X, "diverse_margin"))
    t_query_base = best_of(lambda: query_round(logreg, X))

    train, _ = datasets.digits().train_test_split(0.3, seed=0)
    t_fit = best_of(lambda: TorchClassifier(random_state=0).fit(train.X, train.y), repeat=3)
    flat = train.X.reshape(len(train), -1)
    t_fit_base = best_of(lambda: logistic_regression().fit(flat, train.y), repeat=3)
    first = np.random.default_rng(0).permutation(len(train))[:100]
    rest = np.setdiff1d(np.arange(len(train)), first)
    t_fit_100 = best_of(lambda: TorchClassifier(random_state=0).fit(train.X[first], train.y[first],
                                                                    X_unlabeled=train.X[rest]), repeat=3)

    pool = Pool.from_arrays(X, y)
    with tempfile.TemporaryDirectory() as tmp:
        session = Session(pool, Path(tmp) / "labels", learner=logreg, watch=False)
        items = session.peek(200)
        latencies = []
        for item in items:
            t = time.perf_counter()
            session.label(item, int(y[item.position]))
            latencies.append(time.perf_counter() - t)
        solo = next_latencies(session, y, teammate=None)
        teammate = LabelStore.open(Path(tmp) / "labels", annotator="teammate")
        team = next_latencies(session, y, teammate=teammate)
        session.close()
    latencies_ms = sorted(1000 * v for v in latencies)

    report = {
        "date": now(),
        "machine": machine(torch=torch.__version__, torch_threads=torch.get_num_threads()),
        "query_round_100k_64d_s": round(t_query, 4),
        "query_round_baseline_logreg_s": round(t_query_base, 4),
        "query_round_ratio_to_baseline": round(t_query / t_query_base, 2),
        "query_round_diverse_margin_100k_64d_s": round(t_query_diverse, 4),
        "retrain_digits_1257_labels_s": round(t_fit, 3),
        "retrain_baseline_logreg_s": round(t_fit_base, 3),
        "retrain_ratio_to_baseline": round(t_fit / t_fit_base, 2),
        "retrain_100_labels_self_training_on_1157_s": round(t_fit_100, 3),
        "session_label_ms": percentiles(latencies_ms),
        "session_next_ms": percentiles(solo),
        "session_next_with_a_teammate_writing_ms": percentiles(team),
        "targets": {"query_round_s": 1.0, "retrain_s": "a few seconds", "label_p99_ms": 10},
    }
    save("engine_speed.json", report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
