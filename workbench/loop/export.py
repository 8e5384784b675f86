"""Exporting a session's model as a bundle that names the label commit it learned from.

A bundle is only as trustworthy as what it says about its training: which labels (a commit
of the store, and its `labels_hash`), who gave them, and how well the model does on data
the strategy did not choose. `export_session` makes sure those are true when it writes them:

- a model older than the labels is retrained first (a bundle of the labels you have);
- the labels it learned from are a commit: the branch head when it holds exactly them,
  else a new commit "labels of model <name>";
- accuracy and macro-F1, with 95% intervals, are measured on the session's held-out test
  split or its random audit sample, never on items the strategy picked (for a multi-label
  session: micro-F1, macro-F1, Hamming loss and the accuracy of whole sets);
- a text pool's vectoriser is fitted again from the pool's texts and kept only if it
  reproduces the pool's features (then raw texts can be predicted), see
  `workbench.data.text.vectorizer_of`;
- a boxes session's detector (workbench.loop.export_boxes) is scored by mAP@0.5, precision and
  recall on the held-out test images or the audit images, as its rounds are; a spans session's
  tagger (workbench.loop.export_spans) by exact-match span F1, precision and recall likewise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.tasks import BOXES, MULTI_LABEL, SINGLE, SPANS, indicator
from workbench.learn.bundle import write_bundle
from workbench.learn.metrics import multi_label_scores
from workbench.learn.metrics import scores as metric_scores
from workbench.loop.export_boxes import write_boxes
from workbench.loop.export_parts import number
from workbench.loop.export_spans import exportable, write_spans
from workbench.loop.held_out import held_out
from workbench.loop.model_card import model_card
from workbench.loop.model_card_multi import multi_label_parts
from workbench.store.views import labels_hash

__all__ = ["CHECKS", "WRITERS", "bundle_as_zip", "export_session", "evaluation", "writer_of"]


def export_session(session, path, *, name: str | None = None, as_zip: bool | None = None,
                   overwrite: bool = False, embed_encoder: bool = False) -> Path:
    """Write the session's model as a bundle at `path`: one zip file when `path` ends in
    ".zip" (any case) or `as_zip`, else a folder. See `bundle_as_zip` for `as_zip=False`.
    What is shared by every task is done here (the model of the labels there are, the commit
    it learned from); the bundle itself is written by the task's writer (`WRITERS`)."""
    write = writer_of(session.task)
    if session.task in CHECKS:  # before retraining and committing for a bundle it cannot write
        CHECKS[session.task](session.learner)
    path = Path(path)
    as_zip = bundle_as_zip(path, as_zip)
    name = name or path.stem
    # A reopened store's model may still be rebuilt in the background (loop/resume.py):
    # export that one, not a round trained anew beside it.
    session.wait_for_training()
    labels = session.labels
    current = labels_hash(list(labels), [str(v) for v in labels.values()])
    model = session.model
    if model is None or model.info.get("labels_hash") != current:
        session.retrain()  # a bundle of the labels there are, not of an older round
        model = session.model
    commit = _commit_of(session, model.info["labels_hash"], name)
    training = {"commit": commit.id if commit else None, "labels_hash": model.info["labels_hash"],
                "branch": session.store.current_branch, "store": str(session.store.path),
                "round": model.info.get("round"), "n_labels": model.info.get("n_labels"),
                "exported": pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"),
                "pool": session.pool.name, "started_from": started_from(session)}
    return write(session, model, path, name=name, training=training, as_zip=as_zip,
                 overwrite=overwrite, embed_encoder=embed_encoder)


def write_classes(session, model, path: Path, *, name: str, training: dict, as_zip: bool,
                  overwrite: bool, embed_encoder: bool) -> Path:
    """The bundle of a model of classes (one per item, or a multi-label set): accuracy and
    macro-F1 (multi-label: micro-F1 and Hamming loss too) on held-out data, and its card."""
    if session.pool.kind == "text" and session.signature.text is None and "text" in session.pool.items:
        from workbench.data.text import vectorizer_of

        session.signature.text = vectorizer_of(session.pool.items["text"].astype(str).tolist(),
                                               session.pool.X)
    truth, predicted, eval_on = evaluation(session, model)
    multi = session.task == MULTI_LABEL
    if multi:
        scores = multi_label_scores(truth, predicted, session.class_names)
    else:
        scores = metric_scores(truth, predicted) if len(truth) else {"accuracy": float("nan"),
                                                                     "macro_f1": float("nan")}
    training = {**training, "learner": type(model.learner).__name__, "eval_on": eval_on,
                "accuracy": number(scores["accuracy"]), "macro_f1": number(scores["macro_f1"])}
    if multi:  # accuracy: the whole set right
        training.update(task=MULTI_LABEL, micro_f1=number(scores["micro_f1"]),
                        hamming_loss=number(scores["hamming_loss"]))
    rounds = session.rounds
    trained = rounds.model.trained_on if rounds.model is not None else list(session.labels)
    label_table = _label_table(session, trained)
    parts = (multi_label_parts(model, training=training, labels=label_table, truth=truth,
                               predicted=predicted, history=session.history) if multi else None)
    card = model_card(name, model, training=training, labels=label_table, truth=truth,
                      predicted=predicted, history=session.history, parts=parts)
    sample = np.random.default_rng(0).choice(len(session.pool), min(64, len(session.pool)),
                                             replace=False)
    return write_bundle(model, path, card=card, training=training, as_zip=as_zip,
                        overwrite=overwrite, check_items=_rows(session, model, np.sort(sample)),
                        embed_encoder=embed_encoder)


# A session's bundle by its task: writer(session, model, path, *, name, training (what
# export_session found, for every task: the commit, labels_hash, round, pool, ...), as_zip,
# overwrite, embed_encoder) -> path. The writer adds its learner and scores to `training`.
WRITERS = {SINGLE: write_classes, MULTI_LABEL: write_classes, BOXES: write_boxes, SPANS: write_spans}
# A task whose bundle holds only some learners: check(learner) raises BundleError for others.
CHECKS = {SPANS: exportable}


def writer_of(task: str):
    """The bundle writer of `task`; a ValueError saying so for a task without bundles."""
    if task not in WRITERS:
        raise ValueError(f"a model bundle (export()) is not available for a {task!r} session")
    return WRITERS[task]


def _rows(session, model, positions):
    """Pool rows as the model reads them: their features, or, for a model whose encoder reads
    texts (a pretrained text model, workbench.data.pretrained), a Pool of them."""
    if getattr(model, "reads_texts", False):
        return session.pool.subset(positions)
    return session.pool.X[positions]


def bundle_as_zip(path, as_zip: bool | None) -> bool:
    """Whether the bundle at `path` is a zip file: what `as_zip` says, else (None) what the
    name says (".zip", any case). A folder named "x.zip" is what nobody means: an explicit
    `as_zip=False` with such a name is refused, naming the path."""
    named_zip = Path(path).suffix.lower() == ".zip"
    if as_zip is None:
        return named_zip
    if not as_zip and named_zip:
        raise ValueError(f"{str(path)!r} ends in {Path(path).suffix!r} but as_zip=False asks for "
                         "a bundle folder; drop as_zip=False to write a zip file, or choose a "
                         "path without .zip for a folder")
    return bool(as_zip)



def evaluation(session, model) -> tuple[np.ndarray, np.ndarray, str]:
    """(true labels, the model's predictions, what they are) on the session's test split,
    else its labeled random audit sample: data the strategy did not choose. For a
    multi-label session both are 0/1 matrices, items x `session.class_names`."""
    with session.lock:
        positions, truth, what = held_out(session, dict(session.item_state.labels),
                                          session.item_state.audit_ids())
    multi = session.task == MULTI_LABEL
    if positions is None:
        X = session.test[0]
    elif not truth:
        none = np.zeros((0, len(session.class_names)), np.int8) if multi else np.empty(0, str)
        return none, none, "no held-out data (no test split, no audit labels)"
    else:
        X = _rows(session, model, positions)
    if multi:
        names = session.class_names
        return indicator(truth, names), indicator(model.predict(X), names), what
    return (np.asarray([str(v) for v in truth]), np.asarray([str(v) for v in model.predict(X)]),
            what)


def started_from(session) -> dict | None:
    """What the session's model inherited: the bundle it started from, and what that one
    learned from (its own started_from too, so a chain of bundles stays traceable)."""
    start = session.rounds.start
    if start is None:
        return None
    keys = ("bundle", "commit", "labels_hash", "n_labels", "store", "task", "accuracy", "micro_f1",
            "span_f1", "map50", "started_from")
    return {k: start.info.get(k) for k in keys}


def _commit_of(session, trained_hash: str, name: str):
    """The commit whose labels are exactly those the model learned from: the head when it
    holds them, else one made now. None when no commit can be: the store holds labels the
    session does not train on (items outside the pool, another writer's label that arrived
    after the round), so its labels are not the model's; the card then says so."""
    from workbench.store import StoreError

    store = session.store
    if session.at is not None:
        commit = store.rev(session.at)
        return commit if commit.labels_hash == trained_hash else None
    try:
        head = store.rev("HEAD")
    except StoreError:  # no commit yet on this branch
        head = None
    if head is not None and head.labels_hash == trained_hash:
        return head
    try:
        commit = store.commit(f"labels of model {name}")
    except StoreError:  # nothing to commit: the store's labels are the head's, not the model's
        return None
    return commit if commit.labels_hash == trained_hash else None


def _label_table(session, trained: list[str]) -> pd.DataFrame:
    """The labels the model was fitted on (audit labels, kept for evaluation, are not)."""
    current = session.store.current_labels()
    frame = current[current.index.isin(trained)] if len(current) else current
    return frame[["label", "annotator"]] if len(frame) else pd.DataFrame(columns=["label", "annotator"])

