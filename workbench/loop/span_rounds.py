"""A spans session's rounds: what `Rounds` and `Ranker` do for one class per item, done for
texts whose labels are lists of spans.

The learner (`workbench.learn.token_tagger.TokenTagger` by default) tags tokens; a round fits
it on the labeled texts (audit ones left out), scores it by exact-match span F1 on data the
strategy did not choose (the test pool, or the audit texts), and ranks the queue by how unsure
it is of each unlabeled text. The round's `proba` and `query_proba` hold, for every text, the
two uncertainty measures of `token_tagger.UNCERTAINTY` (computed on demand, as class
probabilities are for other tasks); the strategies of `strategies.SPAN_STRATEGIES` rank by one
of them. A
served text's suggestion is the model's spans, pre-annotated in the widget, and its confidence
the least sure span's.
"""

from __future__ import annotations

import threading
import time

import numpy as np
from sklearn.base import clone

from workbench.data.spans import SpanList, span_scores
from workbench.learn.token_tagger import UNCERTAINTY, TokenFeatures
from workbench.loop.held_out import MIN_AUDIT
from workbench.loop.inputs import Scores
from workbench.loop.scored_rounds import scored_row
from workbench.store.views import labels_hash

_lock = threading.Lock()
SURE = 0.995  # a least sure word at this probability or more: the model doubts nothing here


def pool_features(session) -> TokenFeatures:
    """The pool's token features, built the first time a round asks (once per session)."""
    with _lock:
        features = getattr(session, "_token_features", None)
        if features is None:
            features = session._token_features = TokenFeatures(session.pool.items["text"].tolist())
        return features


def test_features(session) -> TokenFeatures | None:
    if session.test is None:
        return None
    with _lock:
        features = getattr(session, "_test_token_features", None)
        if features is None:
            features = session._test_token_features = TokenFeatures(list(session.test[0]))
        return features


class SpanPredictor:
    """A fitted tagger with the token features it reads: texts of the pool in, spans out."""

    def __init__(self, tagger, features: TokenFeatures, info: dict):
        self.tagger, self.features, self.info = tagger, features, info
        self.task = "spans"

    def spans_of(self, position: int) -> tuple[SpanList, float]:
        """The model's spans for the text at `position`, and how sure it is of the least sure
        of them (1.0 when it marks nothing)."""
        spans, confidence = self.tagger.predict_spans(self.features, [int(position)])[0]
        return spans, float(min(confidence, default=1.0))


def fit(session, labels: dict, audit: set[str], round_: int, prior=None) -> tuple:
    """One round: (the fitted tagger, its uncertainty over the pool's texts (Scores, what the
    queue ranks by), its SpanPredictor, the texts it trained on, the history row). `prior`: the
    bundle the session started from (loop/start_parts.py), whose sure texts it learns too."""
    train_ids = [i for i in labels if i not in audit]
    if not train_ids:
        raise ValueError("need at least one labeled text (outside the audit sample) to train; "
                         "label a few more texts")
    started = time.perf_counter()
    features = pool_features(session)
    positions, targets = session.pool.positions(train_ids), [labels[i] for i in train_ids]
    if prior is not None:
        sure, parts = prior.sure(labels.keys())
        positions, targets = np.concatenate([positions, sure]), targets + parts
    tagger = clone(session.learner)
    tagger.fit_spans(features, positions, targets)
    hash_ = labels_hash(list(labels), [str(v) for v in labels.values()])
    info = {"round": round_, "n_labels": len(train_ids), "labels_hash": hash_}
    row = scored(session, tagger, labels, audit, train_ids, hash_, started)
    return tagger, uncertainty_scores(session, tagger), SpanPredictor(tagger, features, info), train_ids, row


def uncertainty_scores(session, tagger) -> Scores:
    """The tagger's uncertainty over the pool's texts (UNCERTAINTY's columns), on demand."""
    features = pool_features(session)
    return Scores(len(session.pool), len(UNCERTAINTY),
                  lambda positions: tagger.uncertainty(features, positions))


def scored(session, tagger, labels: dict, audit: set[str], train_ids: list, hash_, started=None) -> dict:
    """The history row of a tagger trained on `train_ids`: its span scores (see evaluate)."""
    metrics, eval_on, n_eval = evaluate(session, tagger, labels, audit)
    return scored_row(train_ids, eval_on, n_eval, started, hash_, span_f1=metrics["f1"],
                      span_precision=metrics["precision"], span_recall=metrics["recall"])


def evaluate(session, tagger, labels: dict, audit: set[str]) -> tuple[dict, str, int]:
    """Exact-match span precision, recall and F1 on the test pool's texts, or on the audit
    texts (their labels were kept out of training); with what and how many."""
    if session.test is not None:
        features, truth = test_features(session), list(session.test[1])
        positions = np.arange(len(truth))
        what = f"held-out test texts ({len(truth)})"
    else:
        audited = [i for i in audit if i in labels]
        truth = [labels[i] for i in audited]
        if len(truth) < MIN_AUDIT:
            too_few = f"audit sample too small ({len(truth)} of {MIN_AUDIT} needed)"
            return span_scores([], []), too_few, len(truth)
        features, positions = pool_features(session), session.pool.positions(audited)
        what = f"random audit sample ({len(truth)} texts)"
    predicted = [spans for spans, _ in tagger.predict_spans(features, positions)]
    return span_scores(truth, predicted, session.class_names), what, len(truth)


def reason(session, model, role: str, score, position: int, who: str) -> str:
    """Why a text is shown, in the words of the strategy that ranked it."""
    word, tag, p = model.learner.least_sure_token(model.predictor.features, int(position))
    if role in ("least_confident_token", "mean_token_entropy") and p >= SURE:
        name = "least confident token" if role == "least_confident_token" else "mean token entropy"
        return (f"{name} {score:.2f}: {who} is sure of every word here (its least sure, \"{word}\", "
                f"{tag} at {p:.0%}), and of the texts after it in the queue")
    if role == "least_confident_token":
        return (f"least confident token {score:.2f}: {who} is least sure of \"{word}\" "
                f"({tag}, {p:.0%})")
    if role == "mean_token_entropy":
        return (f"mean token entropy {score:.2f} nats: {who} hesitates over this text, most "
                f"over \"{word}\" ({tag}, {p:.0%})")
    return role
