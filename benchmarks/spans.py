"""Span label efficiency: exact-match span F1 by labeled texts, the default strategy against
random, and how long a round takes.

Two data sets, both built offline, each with test texts whose entity names the pool never
uses (workbench/data/entity_texts.py splits every name list in two halves):

1. "templates": `workbench.data.entity_texts`: one to three template sentences per text with
   people, organisations and places filled in (3 labels); 1,000 pool and 300 test texts.
2. "bbc-inserted": the first two sentences of a BBC News article (../shared/data/bbc-news.csv,
   real text, nothing of it marked) with one template sentence inserted at a random sentence
   boundary, its entities' offsets shifted accordingly; 1,000 pool and 300 test texts, the
   test texts from other articles. The file's articles are lower case, so capitals give the
   inserted sentence away: this set tests labels and boundaries amid real words, not finding
   the sentence.

Every run is a `Session` with the default learner (`TokenTagger`): 10 texts from the
session's cold start (a diverse pick of the pool's text features; the random strategy's own
order for random), then batches of 10 served by `next()` and labeled with the ground truth,
retrained after each batch and scored on the test texts. The tagger's features and C were
chosen on seed 0 of "templates" with random labels (20, 50, 200 texts); the default strategy,
mean token entropy, over least confident token on seeds 0-1 of both sets (budget 200); the
figures reported are of seeds 2-6, which chose nothing. Reported: span F1 at 50/100/200
texts (mean, min, max over seeds), labels to reach 90% of the F1 the tagger reaches with the
whole pool labeled (median, default against random), and the median seconds of a round.

    python benchmarks/spans.py [--seeds 5] [--budget 200]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from report import machine, now, save  # noqa: E402

from workbench import Pool, Session
from workbench.data.entity_texts import LABELS, entity_texts
from workbench.data.spans import span_scores
from workbench.learn.token_tagger import TokenFeatures, TokenTagger

BBC = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbc-news.csv"
CHECKPOINTS = (50, 100, 200)


def bbc_inserted(n: int, *, seed: int, half: int, skip: int = 0) -> tuple[list[str], list[list[tuple]]]:
    """`n` BBC leads (articles `skip`.. of a seeded shuffle) with a template sentence inserted."""
    articles = pd.read_csv(BBC)
    order = np.random.default_rng(seed).permutation(len(articles))[skip:skip + n]
    inserts, marks = entity_texts(n, seed=seed + 101 * (half + 1), half=half)
    rng = np.random.default_rng([seed, half, 7])
    texts, spans = [], []
    for i, row in enumerate(order):
        body = re.sub(r"\s+", " ", str(articles["text"].iloc[row])).strip()
        sentences = re.split(r"(?<=[.!?]) ", body)[:2]
        first = inserts[i].split(". ")[0].rstrip(".") + "."  # one template sentence
        keep = [m for m in marks[i] if m[1] <= len(first)]
        at = int(rng.integers(0, len(sentences) + 1))
        before = " ".join(sentences[:at])
        shift = len(before) + (1 if before else 0)
        texts.append(" ".join([*sentences[:at], first, *sentences[at:]]))
        spans.append([(s + shift, e + shift, label) for s, e, label in keep])
    return texts, spans


def make_data(name: str, seed: int) -> tuple[Pool, Pool]:
    if name == "templates":
        (texts, spans), (test_texts, test_spans) = (entity_texts(1000, seed=seed, half=0),
                                                    entity_texts(300, seed=seed, half=1))
    else:
        texts, spans = bbc_inserted(1000, seed=seed, half=0)
        test_texts, test_spans = bbc_inserted(300, seed=seed, half=1, skip=1000)
    return (Pool.from_texts(texts, y=spans, task="spans", classes=LABELS, name=name),
            Pool.from_texts(test_texts, y=test_spans, task="spans", classes=LABELS, name=f"{name}-test"))


def full_pool_f1(pool: Pool, test: Pool, seed: int) -> float:
    features = TokenFeatures(pool.items["text"].tolist())
    test_features = TokenFeatures(test.items["text"].tolist())
    tagger = TokenTagger(LABELS, random_state=seed).fit_spans(features, np.arange(len(pool)), list(pool.y))
    predicted = [s for s, _ in tagger.predict_spans(test_features, np.arange(len(test)))]
    return span_scores(list(test.y), predicted)["f1"]


def run(pool: Pool, test: Pool, strategy: str, budget: int, seed: int) -> tuple[pd.DataFrame, list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        session = Session(pool, Path(folder) / "store", test=test, strategy=strategy, seed=seed,
                          watch=False)
        rounds = []
        while len(session.labels) < budget:
            for _ in range(10):
                item = session.next()
                if item is None:
                    break
                session.label(item, pool.true_label(item.item_id))
            started = time.perf_counter()
            session.retrain()
            rounds.append(time.perf_counter() - started)
        history = session.history[["n_labels", "span_f1", "span_precision", "span_recall"]].copy()
        session.close()
    return history, rounds


def labels_to(curve: pd.DataFrame, target: float) -> float:
    reached = curve.loc[curve["span_f1"] >= target, "n_labels"]
    return float(reached.iloc[0]) if len(reached) else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=2,
                        help="seeds 0-1 chose the default strategy: the report uses later ones")
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--data", nargs="+", default=["templates", "bbc-inserted"])
    parser.add_argument("--strategies", nargs="+", default=["mean_token_entropy", "random"])
    args = parser.parse_args()
    started = time.time()
    report = {"date": now(),
              "machine": machine(load_average_at_start=True),
              "protocol": " ".join(__doc__.split("\n\n")[2:4]).replace("\n", " "), "data": {}}
    runs = []
    for data in args.data:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            pool, test = make_data(data, seed)
            full = full_pool_f1(pool, test, seed)
            for strategy in args.strategies:
                t = time.time()
                curve, round_s = run(pool, test, strategy, args.budget, seed)
                row = {"data": data, "seed": seed, "strategy": strategy, "full_pool_span_f1": full,
                       "labels_to_90pct_of_full": labels_to(curve, 0.9 * full),
                       "round_s_median": float(np.median(round_s)), "run_s": round(time.time() - t, 1)}
                for n in CHECKPOINTS:
                    at = curve.loc[curve["n_labels"] == n, "span_f1"]
                    row[f"span_f1_at_{n}"] = float(at.iloc[0]) if len(at) else float("nan")
                runs.append(row)
                print(json.dumps(row), flush=True)
    frame = pd.DataFrame(runs)
    for data, part in frame.groupby("data"):
        summary = {"full_pool_span_f1_mean": round(float(part["full_pool_span_f1"].mean()), 4)}
        for strategy, rows in part.groupby("strategy"):
            summary[strategy] = {
                **{f"span_f1_at_{n}": {"mean": round(float(rows[f"span_f1_at_{n}"].mean()), 4),
                                       "min": round(float(rows[f"span_f1_at_{n}"].min()), 4),
                                       "max": round(float(rows[f"span_f1_at_{n}"].max()), 4)}
                   for n in CHECKPOINTS},
                "labels_to_90pct_of_full": {"median": float(rows["labels_to_90pct_of_full"].median()),
                                            "per_seed": rows["labels_to_90pct_of_full"].tolist()},
                "round_s_median": round(float(rows["round_s_median"].median()), 3)}
        a = summary.get(args.strategies[0], {}).get("labels_to_90pct_of_full", {}).get("median")
        b = summary.get("random", {}).get("labels_to_90pct_of_full", {}).get("median")
        summary["ratio_default_to_random_labels_to_90pct"] = (
            round(a / b, 3) if a is not None and b and a == a and b == b else None)
        report["data"][data] = summary
    report["runs"] = runs
    report["seconds"] = round(time.time() - started)
    save("spans.json", report, load_average_at_end=True)
    print(json.dumps(report["data"], indent=2))


if __name__ == "__main__":
    main()
