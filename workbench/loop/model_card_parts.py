"""The skeleton of the model card of a model whose labels are made of parts (the spans of a
text, the boxes of an image): a bundle's README.md with the sections of every card
(workbench.loop.model_card) in the same order, filled by the kind's own module
(model_card_spans.py, model_card_boxes.py) with what only it knows: what the model reads, how
good it is and in what figure, how to run it, and its limits.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from workbench.loop.model_card import _cell, _pct, learned_from

__all__ = ["PartsCard", "count_table", "curve_table", "figure_table"]


@dataclass
class PartsCard:
    """What a kind's card says in its own words; `markdown` puts them in the order of every card."""

    pipeline_tag: str            # the Hugging Face Hub's task name
    tags: list[str]
    description: str             # the paragraph under the title
    reads: list[str]             # "What it reads" (Markdown lines)
    counts: list[str]            # the parts per class and items per annotator it learned from
    quality: list[str]           # "How good it is": the figures, then a table per class
    curve: list[str]             # the rounds' figures
    usage: list[str]             # "How to use it"
    limits: list[str]            # "Intended use and known limits"

    def markdown(self, name: str, training: dict) -> str:
        lines = [
            "---", "library_name: workbench", f"pipeline_tag: {self.pipeline_tag}",
            f"tags: [{', '.join(['workbench', 'active-learning', *self.tags, 'onnx', 'safetensors'])}]",
            "---", "", f"# {name}", "", self.description, "",
            "## What it reads", "", *self.reads, "",
            "## What it learned from", "", *learned_from(training), "", *self.counts, "",
            "## How good it is", "",
            f"Measured on {training.get('eval_on')}: data the strategy did not choose.", "",
            *self.quality, "",
            "## Training curve", "", *self.curve, "",
            "## How to use it", "", *self.usage, "",
            "## Intended use and known limits", "", *self.limits, ""]
        return "\n".join(lines)


def count_table(what: str, unit: str, counts: pd.Series) -> list[str]:
    """A two-column table of counts: `what` (class, label, annotator) and how many `unit`."""
    return [f"| {what} | {unit} |", "|---|---|", *[f"| {_cell(k)} | {int(n)} |" for k, n in counts.items()]]


def figure_table(what: str, figure: str, values: dict, none: str) -> list[str]:
    """A table of one figure per class (AP, F1), or `none` when there is no value."""
    if not values:
        return [none]
    rows = [f"| {_cell(c)} | {_pct(v)} |" for c, v in values.items()]
    return [f"| {what} | {figure} |", "|---|---|", *rows]


def curve_table(history: pd.DataFrame, columns: list[tuple[str, str]]) -> list[str]:
    """The rounds' figures: round, labels, and each (title, history column) of `columns`."""
    if history is None or history.empty:
        return ["No training rounds recorded."]
    titles = ["round", "labels", *(title for title, _ in columns)]
    rows = [f"| {' | '.join(titles)} |", "|" + "---|" * len(titles)]
    for _, r in history.iterrows():
        rows.append(f"| {r['round']} | {r['n_labels']} | "
                    + " | ".join(_pct(r.get(column)) for _, column in columns) + " |")
    return rows
