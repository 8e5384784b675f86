"""A spans session's bundle: its tagger as a `SpanModel` (workbench.learn.span_model), scored
by exact-match span F1, precision and recall on data the strategy did not choose
(`span_rounds.evaluate`), with its card; the steps are those of every task of parts
(workbench.loop.export_parts). The built-in TokenTagger and a fine-tuned HFTokenTagger fit in a
bundle (`exportable`).
"""

from __future__ import annotations

from workbench.data.spans import span_list
from workbench.data.tasks import SPANS
from workbench.learn.bundle import BundleError
from workbench.learn.span_model import SpanModel
from workbench.learn.token_tagger import TokenTagger
from workbench.loop import span_rounds
from workbench.loop.export_parts import Parts, write_parts
from workbench.loop.model_card_spans import span_model_card

__all__ = ["SPAN_PARTS", "exportable", "write_spans"]


def exportable(learner) -> None:
    """BundleError for a learner a spans bundle cannot hold: its arrays and graph are those of
    the built-in TokenTagger or of a fine-tuned HFTokenTagger (workbench.learn.hf_span_bundle).
    Asked before the session retrains or commits anything for the bundle, so a refused export
    changes nothing."""
    from workbench.learn.hf_tagger import HFTokenTagger

    if type(learner) in (TokenTagger, HFTokenTagger):
        return
    raise BundleError(f"cannot export this model: a spans bundle holds the built-in TokenTagger or an "
                      f"HFTokenTagger, not a {type(learner).__name__}")


def _text(session, item: str) -> str:
    pool = session.pool
    return str(pool.items["text"].iloc[pool.position(item)])


SPAN_PARTS = Parts(
    task=SPANS,
    network=lambda predictor: predictor.tagger,
    model=lambda session, predictor: SpanModel(predictor.tagger, session.class_names, info=predictor.info),
    evaluate=span_rounds.evaluate,
    figures={"span_f1": "f1", "precision": "precision", "recall": "recall"},
    per_class="f1_per_label",
    card=span_model_card,
    parts_of=lambda session, item, value: span_list(value, _text(session, item), session.class_names,
                                                    overlapping=session.pool.overlapping),
    check_items=lambda session, positions: [str(session.pool.items["text"].iloc[i]) for i in positions])


def write_spans(session, predictor, path, **options):
    """Write the bundle of a spans session's model (`predictor`: its `SpanPredictor`)."""
    return write_parts(SPAN_PARTS, session, predictor, path, **options)
