"""Exporting a session's model as a bundle that names the label commit it learned from.

A bundle is only as trustworthy as what it says about its training: which labels (a commit
of the store, and its `labels_hash`), who gave them, and how well the model does on data
the strategy did not choose. `export_session` makes sure those are true when it writes them:

- a model older than the labels is retrained first (a bundle of the labels you have);
- the labels it learned from are a commit: the branch head when it holds exactly them,
  else a new commit "labels of model <name>";
- accuracy and macro-F1, with 95% intervals, are measured on the session's held-out test
  split or its random audit sample, never on items the strategy picked;
- a text pool's vectoriser is fitted again from the pool's texts and kept only if it
  reproduces the pool's features (then raw texts can be predicted), see
  `workbench.data.text.vectorizer_of`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.learn.bundle import write_bundle
from workbench.learn.metrics import scores as metric_scores
from workbench.loop.model_card import model_card
from workbench.store.views import labels_hash

__all__ = ["export_session", "evaluation"]


def export_session(session, path, *, name: str | None = None, as_zip: bool = False,
                   overwrite: bool = False) -> Path:
    path = Path(path)
    name = name or path.stem
    with session._lock:
        labels = dict(session._labels)
    current = labels_hash(list(labels), [str(v) for v in labels.values()])
    model = session.model
    if model is None or model.info.get("labels_hash") != current:
        session.retrain()  # a bundle of the labels there are, not of an older round
        model = session.model
    if session.pool.kind == "text" and session.signature.text is None and "text" in session.pool.items:
        from workbench.data.text import vectorizer_of

        session.signature.text = vectorizer_of(session.pool.items["text"].astype(str).tolist(),
                                               session.pool.X)
    commit = _commit_of(session, model.info["labels_hash"], name)
    truth, predicted, eval_on = evaluation(session, model)
    scores = metric_scores(truth, predicted) if len(truth) else {"accuracy": float("nan"),
                                                                 "macro_f1": float("nan")}
    training = {"commit": commit.id if commit else None, "labels_hash": model.info["labels_hash"],
                "branch": session.store.current_branch, "store": str(session.store.path),
                "round": model.info.get("round"), "n_labels": model.info.get("n_labels"),
                "learner": type(model.learner).__name__, "eval_on": eval_on,
                "accuracy": _number(scores["accuracy"]), "macro_f1": _number(scores["macro_f1"]),
                "exported": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
                "pool": session.pool.name}
    card = model_card(name, model, training=training, labels=_label_table(session, labels),
                      truth=truth, predicted=predicted, history=session.history)
    return write_bundle(model, path, card=card, training=training, as_zip=as_zip,
                        overwrite=overwrite)


def evaluation(session, model) -> tuple[np.ndarray, np.ndarray, str]:
    """(true labels, the model's predictions, what they are) on the session's test split,
    else its labeled random audit sample: data the strategy did not choose."""
    if session.test is not None:
        X, y = session.test
        return (np.asarray([str(v) for v in y]), np.asarray([str(v) for v in model.predict(X)]),
                f"held-out test split ({len(y)} items)")
    with session._lock:
        audited = [i for i in session._audit_ids() if i in session._labels]
        truth = [str(session._labels[i]) for i in audited]
    if not audited:
        return np.empty(0, str), np.empty(0, str), "no held-out data (no test split, no audit labels)"
    X = session.pool.X[session.pool.positions(audited)]
    return (np.asarray(truth), np.asarray([str(v) for v in model.predict(X)]),
            f"random audit sample ({len(audited)} items)")


def _commit_of(session, trained_hash: str, name: str):
    """The commit whose labels the model learned from; made now if the head is not it."""
    store = session.store
    if session.at is not None:
        return store.rev(session.at)
    try:
        head = store.rev("HEAD")
    except Exception:  # no commit yet on this branch
        head = None
    if head is not None and head.labels_hash == trained_hash:
        return head
    return store.commit(f"labels of model {name}")


def _label_table(session, labels: dict) -> pd.DataFrame:
    current = session.store.current_labels()
    frame = current[current.index.isin(list(labels))] if len(current) else current
    return frame[["label", "annotator"]] if len(frame) else pd.DataFrame(columns=["label", "annotator"])


def _number(value):
    value = float(value)
    return None if np.isnan(value) else round(value, 4)
