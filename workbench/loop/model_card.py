"""The model card: a bundle's README.md, for the person deciding whether to use the model.

It says what the model predicts and from what, which labels it learned from (the commit,
its labels_hash, the labels per class and per annotator), how good it is with honest
uncertainty (accuracy and macro-F1 with 95% intervals, on data the strategy did not choose,
and the confusion matrix there), how it got there (the training curve), how to run it
(with the workbench, or with onnxruntime and numpy alone) and where it should not be
trusted. The front matter is the Hugging Face Hub's model-card metadata.

A multi-label model's card (workbench.loop.model_card_multi) has the same sections; what it
predicts, its labels per class, its figures and its curve are its own (`parts`).
"""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

__all__ = ["model_card", "intervals", "learned_from"]

PIPELINE = {"image": "image-classification", "text": "text-classification",
            "table": "tabular-classification", "vector": "tabular-classification"}


def intervals(truth, predicted, *, seed: int = 0, resamples: int = 1000) -> dict:
    """95% intervals: Wilson for accuracy, a percentile bootstrap (seeded) for macro-F1
    (classes as in `workbench.learn.metrics`: those present in each resample's truth)."""
    from scipy.stats import binomtest

    truth, predicted = np.asarray(truth), np.asarray(predicted)
    n = len(truth)
    if n == 0:
        return {"accuracy": (np.nan, np.nan), "macro_f1": (np.nan, np.nan)}
    correct = int((truth == predicted).sum())
    ci = binomtest(correct, n).proportion_ci(0.95, method="wilson")
    classes = np.unique(np.concatenate([truth, predicted]))
    t, p = np.searchsorted(classes, truth), np.searchsorted(classes, predicted)
    draw = np.random.default_rng(seed).integers(0, n, (resamples, n))
    tb, pb = t[draw], p[draw]
    f1s = []
    for c in range(len(classes)):
        actual, said = (tb == c), (pb == c)
        hit = (actual & said).sum(1)
        total = actual.sum(1) + said.sum(1)
        f1 = np.where(total > 0, 2 * hit / np.maximum(total, 1), 0.0)
        f1s.append(np.where(actual.any(1), f1, np.nan))
    macro = np.nanmean(np.stack(f1s, 1), axis=1)
    return {"accuracy": (ci.low, ci.high), "macro_f1": tuple(np.percentile(macro, [2.5, 97.5]))}


def model_card(name: str, model, *, training: dict, labels: pd.DataFrame, truth, predicted,
               history: pd.DataFrame, parts: dict | None = None) -> str:
    """The card's Markdown. `parts` replaces what depends on the task (see single_label_parts;
    a multi-label model's come from workbench.loop.model_card_multi)."""
    sig = model.signature
    classes = [str(c) for c in model.classes]
    parts = parts or single_label_parts(model, training=training, labels=labels, truth=truth,
                                        predicted=predicted, history=history)
    per_class = parts["per_class"]
    per_annotator = labels["annotator"].value_counts()
    shape = " × ".join(map(str, sig.shape))
    lines = [
        "---",
        "library_name: workbench",
        f"pipeline_tag: {PIPELINE.get(sig.kind, 'other')}",
        "tags: [workbench, active-learning, onnx, safetensors]",
        "---",
        "",
        f"# {name}",
        "",
        parts["what"],
        "",
        "## What it reads",
        "",
        f"- Items: {sig.kind}, features of shape ({shape}), float32"
        + (f"; image files are read and divided by {sig.image_scale:g}" if sig.image_scale else "")
        + (f"; table columns {', '.join(sig.feature_names)}" if sig.feature_names else "") + ".",
        f"- Preprocessing: {_preprocessing(model)}.",
        "- `model.onnx` takes `items` (float32, N × the shape above) and gives `probabilities` "
        "(N × classes, in the order of `classes` in config.json) and `class_index`.",
        "",
        "## What it learned from",
        "",
        *learned_from(training),
        "",
        f"| class | {parts['per_class_heading']} |", "|---|---|",
        *[f"| {_cell(c)} | {int(per_class[c])} |" for c in classes],
        "",
        "| annotator | labels |", "|---|---|",
        *[f"| {_cell(a)} | {int(k)} |" for a, k in per_annotator.items()],
        "",
        "## How good it is",
        "",
        f"Measured on {training.get('eval_on')}: data the strategy did not choose.",
        "",
        *parts["quality"],
        "",
        "## Training curve",
        "",
        *parts["curve"],
        "",
        "## How to use it",
        "",
        "With the workbench:",
        "",
        "```python",
        "import workbench",
        "model = workbench.load_model(\"path/to/this/bundle\")  # or \"name@version\" from a registry",
        "model.predict(items)  # a Pool, an array shaped like its X, or raw items",
        "```",
        "",
        "With onnxruntime and numpy alone (X: float32, N × the input shape; for thousands of "
        "items, run it on a few hundred at a time: the graph's intermediate maps are large):",
        "",
        "```python",
        "import json, numpy as np, onnxruntime as ort",
        "classes = json.load(open(\"config.json\"))[\"classes\"]",
        "session = ort.InferenceSession(\"model.onnx\")",
        "proba = session.run([\"probabilities\"], {\"items\": X.astype(np.float32)})[0]",
        parts["decode"],
        "```",
        "",
        "## Intended use and known limits",
        "",
        *_limits(model, training, per_class, len(truth)),
        "",
    ]
    return "\n".join(lines)


def single_label_parts(model, *, training: dict, labels: pd.DataFrame, truth, predicted,
                       history: pd.DataFrame) -> dict:
    """What a card says that depends on the task, for one class per item: what it predicts,
    the labels per class, accuracy and macro-F1 with intervals and the confusion matrix, the
    curve, and the line that turns the graph's probabilities into classes."""
    classes = [str(c) for c in model.classes]
    ci = intervals(truth, predicted)
    return {
        "what": f"A {type(model.learner).__name__} that sorts {model.signature.kind} items into "
                f"{len(classes)} classes: {', '.join(_code(c) for c in classes)}.",
        "per_class": labels["label"].astype(str).value_counts().reindex(classes, fill_value=0),
        "per_class_heading": "labels",
        "quality": [
            f"- Accuracy: {_pct(training.get('accuracy'))} (95% interval {_range(ci['accuracy'])}, "
            "Wilson)",
            f"- Macro-F1: {_pct(training.get('macro_f1'))} (95% interval {_range(ci['macro_f1'])}, "
            "bootstrap of 1,000 resamples)",
            "", *_confusion(truth, predicted, classes)],
        "curve": _curve(history),
        "decode": "print([classes[i] for i in proba.argmax(axis=1)])"}


def learned_from(training: dict) -> list[str]:
    """The card's lines on the labels a model learned from: the commit (or why none holds
    them), how many, and the model it started from."""
    commit = training.get("commit")
    return [
        (f"- Label commit `{commit[:12]}` on branch {_code(training.get('branch'))} of the store "
         f"{_code(training.get('store'))}; labels_hash `{training.get('labels_hash')}`." if commit else
         f"- No commit of the store {_code(training.get('store'))} holds exactly the labels it learned "
         "from (the store also has labels the session does not train on: items outside the pool, "
         f"or labels that arrived after the round); labels_hash `{training.get('labels_hash')}` "
         "identifies them."),
        f"- {training.get('n_labels')} labels used in training (round {training.get('round')}, "
        f"pool {_code(training.get('pool'))}), chosen by active learning: not a random sample of the pool.",
        *_parent(training.get("started_from"))]


def _parent(start: dict | None) -> list[str]:
    if not start:
        return []
    commit = (start.get("commit") or "none")[:12]
    taught = {  # what each kind of parent passes on (loop/start_from.py, loop/start_parts.py)
        "spans": "its spans on the texts it was sure of taught every round beside the labels above",
        "boxes": "this detector was fine-tuned from its network, and its boxes on the images it was "
                 "sure of taught every round beside the labels above"}.get(
        start.get("task"), "its representation encodes the items and its predictions taught every "
                           "round beside the labels above")
    return [f"- Started from the model {_code(start.get('bundle'))} ({start.get('n_labels')} labels, "
            f"commit `{commit}` of {_code(start.get('store'))}, labels_hash "
            f"`{start.get('labels_hash')}`): {taught}, so this model carries what that one learned too."]


def _preprocessing(model) -> str:
    steps = []
    if model.signature.text is not None:
        steps.append("TF-IDF + LSA of raw texts (in Python, outside model.onnx)")
    elif model.signature.kind == "text":
        steps.append("none for texts: pass the pool's text features (embeddings)")
    if model.signature.kind == "image":
        steps.append("decoding image files (in Python, outside model.onnx)")
    if hasattr(model.encoder, "spec"):  # workbench.data.pretrained: recorded, not carried
        steps.append(f"the pretrained encoder {model.encoder.describe()}: outside model.onnx (which "
                     "then reads its vectors, and the encoder must be on the machine that loads this "
                     "bundle) unless exported with embed_encoder=True (config.json's in_onnx says which)")
    elif model.encoder is not None:
        steps.append(f"the pool's representation ({model.encoder.name}), inside model.onnx")
    return "; ".join(steps) or "none"


def _confusion(truth, predicted, classes) -> list[str]:
    if len(truth) == 0:
        return ["No held-out data: the confusion matrix is empty."]
    frame = pd.crosstab(pd.Series(truth, name="true"), pd.Series(predicted, name="predicted"))
    frame = frame.reindex(index=classes, columns=classes, fill_value=0)
    head = "| true \\ predicted | " + " | ".join(_cell(c) for c in classes) + " |"
    rows = [f"| {_cell(c)} | " + " | ".join(str(int(v)) for v in frame.loc[c]) + " |" for c in classes]
    return ["Confusion matrix (rows: true class, columns: predicted):", "", head,
            "|---" * (len(classes) + 1) + "|", *rows]


def _curve(history: pd.DataFrame) -> list[str]:
    if history is None or history.empty:
        return ["No training rounds recorded."]
    rows = ["| round | labels | accuracy | macro-F1 |", "|---|---|---|---|"]
    for _, r in history.iterrows():
        rows.append(f"| {r['round']} | {r['n_labels']} | {_pct(r['accuracy'])} | {_pct(r['macro_f1'])} |")
    return rows


def _limits(model, training, per_class, n_eval) -> list[str]:
    out = [f"- Made for {model.signature.kind} items like those of the pool {_code(training.get('pool'))}; "
           "items from elsewhere (other cameras, sources, vocabularies) may score far lower than "
           "the figures above."]
    few = [f"{_code(c)} ({int(k)})" for c, k in per_class.items() if k < 10]
    if few:
        out.append(f"- Few labels for {', '.join(few)}: predictions of these classes are the "
                   "least reliable.")
    if n_eval < 100:
        out.append(f"- Measured on {n_eval} items only: the intervals above are wide for a reason.")
    if model.signature.kind == "image" and max(model.signature.shape[:2]) > 32:
        out.append("- Images are downscaled to at most 32 pixels a side before the features: "
                   "fine detail is lost.")
    out.append("- Probabilities are a model's, not calibrated frequencies; check them on your data "
               "before using a threshold.")
    return out


def _cell(value) -> str:
    """A name from the data (a class, an annotator) as Markdown text: HTML and Markdown
    characters escaped, so a card shows it as written and never renders it."""
    text = html.escape(" ".join(str(value).split()), quote=False)
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", text)


def _code(value) -> str:
    """A name from the data in code style; backticks in it cannot close the span early."""
    text = " ".join(str(value).split())
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}" if "`" in text else f"`{text}`"


def _pct(value) -> str:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if np.isnan(value) else f"{value:.1%}"


def _range(pair) -> str:
    lo, hi = pair
    return "n/a" if np.isnan(lo) else f"{lo:.1%} to {hi:.1%}"
