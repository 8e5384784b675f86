"""The model card of a spans model: a bundle's README.md, with the sections of every card
(workbench.loop.model_card) in a tagger's terms: the spans per label it learned from, exact-match
span F1 with precision and recall on data the strategy did not choose, F1 per label, the rounds'
curve, and how to run it (the workbench, or onnxruntime for the token tags).
"""

from __future__ import annotations

import pandas as pd

from workbench.learn.span_bundle import span_bundle_parts, span_card_section
from workbench.loop.model_card import _cell, _code, _pct, learned_from

__all__ = ["span_model_card"]


def span_model_card(name: str, model, *, training: dict, counts: tuple[pd.Series, pd.Series],
                    f1_per_label: dict, n_eval: int, history: pd.DataFrame) -> str:
    """The card's Markdown. `counts`: (spans per label, texts per annotator) of the labels it
    learned from; `f1_per_label`: exact-match F1 per label on the held-out data; `n_eval`: its
    texts."""
    per_label, per_annotator = counts
    config = span_bundle_parts(model.tagger)[0]
    lines = [
        "---",
        "library_name: workbench",
        "pipeline_tag: token-classification",
        "tags: [workbench, active-learning, token-classification, ner, onnx, safetensors]",
        "---",
        "",
        f"# {name}",
        "",
        f"A {type(model.tagger).__name__} that marks spans of text with {len(model.classes)} labels: "
        f"{', '.join(_code(c) for c in model.classes)}.",
        "",
        span_card_section(config),
        "## What it learned from",
        "",
        *learned_from(training),
        "",
        "| label | spans |", "|---|---|",
        *[f"| {_cell(c)} | {int(k)} |" for c, k in per_label.items()],
        "",
        "| annotator | texts |", "|---|---|",
        *[f"| {_cell(a)} | {int(k)} |" for a, k in per_annotator.items()],
        "",
        "## How good it is",
        "",
        f"Measured on {training.get('eval_on')}: data the strategy did not choose.",
        "",
        f"- Span F1: {_pct(training.get('span_f1'))} (exact match: a span counts when its start, end "
        "and label are all right; one word too many, or the right words with the wrong label, is a "
        "miss)",
        f"- Precision: {_pct(training.get('precision'))}, recall: {_pct(training.get('recall'))}",
        "",
        *_f1_table(f1_per_label),
        "",
        "## Training curve",
        "",
        *_curve(history),
        "",
        "## How to use it",
        "",
        "With the workbench:",
        "",
        "```python",
        "import workbench",
        "model = workbench.load_model(\"path/to/this/bundle\")  # or \"name@version\" from a registry",
        "spans = model.predict_spans(texts)  # a SpanList per text: (start, end, label), code points",
        "```",
        "",
        "With onnxruntime (each token's tag probabilities, from its hashed features):",
        "",
        "```python",
        "import onnxruntime as ort",
        "session = ort.InferenceSession(\"model.onnx\")",
        "proba = session.run([\"probabilities\"], {\"items\": model.token_features(texts)})[0]",
        "```",
        "",
        "## Intended use and known limits",
        "",
        *_limits(training, per_label, n_eval),
        "",
    ]
    return "\n".join(lines)


def _f1_table(f1_per_label: dict) -> list[str]:
    if not f1_per_label:
        return ["No held-out spans: no F1 per label."]
    return ["| label | F1 |", "|---|---|", *[f"| {_cell(c)} | {_pct(v)} |" for c, v in f1_per_label.items()]]


def _curve(history: pd.DataFrame) -> list[str]:
    if history is None or history.empty:
        return ["No training rounds recorded."]
    rows = ["| round | labels | span F1 | precision | recall |", "|---|---|---|---|---|"]
    for _, r in history.iterrows():
        rows.append(f"| {r['round']} | {r['n_labels']} | {_pct(r.get('span_f1'))} | "
                    f"{_pct(r.get('span_precision'))} | {_pct(r.get('span_recall'))} |")
    return rows


def _limits(training: dict, per_label: pd.Series, n_eval: int) -> list[str]:
    out = [f"- Made for texts like those of the pool {_code(training.get('pool'))}; texts from "
           "elsewhere (other sources, styles, languages) may score far lower than the figures above."]
    few = [f"{_code(c)} ({int(k)})" for c, k in per_label.items() if k < 10]
    if few:
        out.append(f"- Few spans for {', '.join(few)}: these labels are the least reliable.")
    if n_eval < 100:
        out.append(f"- Measured on {n_eval} texts only: the figures above are rough.")
    out.append("- A span is a run of whole tokens (words and marks of punctuation): a name that "
               "starts or ends inside a word is widened to the word.")
    return out
