"""The model card of a spans model: a bundle's README.md, with the sections of every card
(workbench.loop.model_card) in a tagger's terms: the spans per label it learned from, exact-match
span F1 with precision and recall on data the strategy did not choose, F1 per label, the rounds'
curve, and how to run it (the workbench, or onnxruntime for the token tags).
"""

from __future__ import annotations

import pandas as pd

from workbench.learn.span_bundle import span_bundle_parts, span_card_section
from workbench.loop.model_card import _code, _pct
from workbench.loop.model_card_parts import PartsCard, count_table, curve_table, figure_table

__all__ = ["span_model_card"]


def span_model_card(name: str, model, *, training: dict, counts: tuple[pd.Series, pd.Series],
                    per_class: dict, n_eval: int, history: pd.DataFrame) -> str:
    """The card's Markdown. `counts`: (spans per label, texts per annotator) of the labels it
    learned from; `per_class`: exact-match F1 per label on the held-out data; `n_eval`: its
    texts."""
    per_label, per_annotator = counts
    config = span_bundle_parts(model.tagger)[0]
    card = PartsCard(
        pipeline_tag="token-classification", tags=["token-classification", "ner"],
        description=(f"A {type(model.tagger).__name__} that marks spans of text with {len(model.classes)} "
                     f"labels: {', '.join(_code(c) for c in model.classes)}."),
        reads=span_card_section(config).rstrip("\n").split("\n")[2:],  # its own heading left out
        counts=[*count_table("label", "spans", per_label), "",
                *count_table("annotator", "texts", per_annotator)],
        quality=[
            f"- Span F1: {_pct(training.get('span_f1'))} (exact match: a span counts when its start, end "
            "and label are all right; one word too many, or the right words with the wrong label, is a "
            "miss)",
            f"- Precision: {_pct(training.get('precision'))}, recall: {_pct(training.get('recall'))}", "",
            *figure_table("label", "F1", per_class, "No held-out spans: no F1 per label.")],
        curve=curve_table(history, [("span F1", "span_f1"), ("precision", "span_precision"),
                                    ("recall", "span_recall")]),
        usage=[
            "With the workbench:", "", "```python", "import workbench",
            "model = workbench.load_model(\"path/to/this/bundle\")  # or \"name@version\" from a registry",
            "spans = model.predict_spans(texts)  # a SpanList per text: (start, end, label), code points",
            "```", "", *_onnx_usage(config)],
        limits=_limits(training, per_label, n_eval))
    return card.markdown(name, training)


def _onnx_usage(config: dict) -> list[str]:
    if config["type"] == "HFTokenTagger":  # the network reads subword ids (hf_span_bundle.py)
        return ["With onnxruntime (each subword's tag probabilities; a word's are its first subword's). "
                "`model.onnx` may read the network's weights from `model.safetensors` beside it (a "
                "network of 16 MiB or more keeps them there, once): run it in the bundle folder, and "
                "unzip a zipped bundle first.", "",
                "```python", "import onnxruntime as ort", "session = ort.InferenceSession(\"model.onnx\")",
                "tagger = model.tagger",
                "inputs = tagger.tokenizer_(texts, padding=True, truncation=True,",
                "                           max_length=tagger.max_length_, return_tensors=\"np\")",
                "proba = session.run([\"probabilities\"], {\"input_ids\": inputs[\"input_ids\"],",
                "                    \"attention_mask\": inputs[\"attention_mask\"]})[0]", "```"]
    return ["With onnxruntime (each token's tag probabilities, from its hashed features):", "",
            "```python", "import onnxruntime as ort", "session = ort.InferenceSession(\"model.onnx\")",
            "proba = session.run([\"probabilities\"], {\"items\": model.token_features(texts)})[0]", "```"]


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
