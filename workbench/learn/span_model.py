"""A spans model as a user holds it: texts in, the spans of each text out.

`SpanModel` is what `workbench.load_model` returns for a bundle of a spans session (and what
`session.export` writes one from): the session's fitted `TokenTagger`
(workbench.learn.token_tagger), reading raw texts, tokenised and hashed by the same code.
`predict_spans(texts)` gives one `SpanList` per text (offsets in code points), as the session
suggested them; `token_proba`, `tokens` and `token_features` show what lies beneath (the last
is the ONNX graph's input, see workbench.learn.span_bundle).
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable, Mapping

import numpy as np

from workbench.data.spans import TOKEN, SpanList
from workbench.learn.model import InputSignature
from workbench.learn.token_tagger import N_FEATURES, TokenFeatures, TokenTagger

__all__ = ["SpanModel"]


def _shown(value) -> str:
    return f"{type(value).__name__} {reprlib.repr(value)}"


def _texts(texts, what: str) -> list[str]:
    """The texts as a list of str; a ValueError naming the value for anything else (a str alone
    would otherwise be read as a list of one-letter texts, a number as its digits)."""
    if isinstance(texts, (str, bytes)):
        raise ValueError(f"{what} takes a list of texts, got one {_shown(texts)}; wrap it in a list: [text]")
    if texts is None or isinstance(texts, Mapping) or not isinstance(texts, Iterable):
        raise ValueError(f"{what} takes a list of texts (str), got {_shown(texts)}")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise ValueError(f"{what}: texts[{i}] is {_shown(text)}; expected a str (a text)")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate: half of a UTF-16 pair, no character
            raise ValueError(f"{what}: texts[{i}] holds {text[e.start:e.end]!r} at code point {e.start}, "
                             "half of a UTF-16 surrogate pair and no character; expected text that "
                             "UTF-8 can hold (decode the source with errors='replace')") from None
    return [str(t) for t in out]  # numpy's str_ as plain str


class SpanModel:
    """A spans bundle's model: the session's TokenTagger rebuilt from its parts, reading raw
    texts. `predict_spans(texts)` gives one SpanList per text, as the session predicted them."""

    task = "spans"

    def __init__(self, tagger: TokenTagger, classes, info: dict | None = None):
        self.tagger = tagger
        self.classes = list(classes)
        self.info = dict(info or {})
        # what it reads, for whoever reads items for it (`workbench predict`): texts, whose
        # features it makes itself (text=None: no vectoriser of the pool's)
        self.signature = InputSignature(kind="text", shape=(N_FEATURES,))

    @property
    def tags(self) -> list[str]:
        return list(self.tagger.tag_names_)

    def __repr__(self) -> str:
        return f"SpanModel(labels={self.classes}, tags={len(self.tags)})"

    @staticmethod
    def _features(texts: list[str]) -> TokenFeatures | None:
        # FeatureHasher fails on a batch with no tokens at all (no texts, or only blank ones)
        return TokenFeatures(texts) if any(TOKEN.search(t) for t in texts) else None

    def predict_spans(self, texts) -> list[SpanList]:
        """One SpanList per text: the BIO runs of each token's likeliest tag."""
        return [spans for spans, _ in self.predict_spans_with_confidence(texts)]

    def predict_spans_with_confidence(self, texts) -> list[tuple[SpanList, list[float]]]:
        """For each text, its spans and for each span the smallest top-tag probability over its
        tokens (what the session shows as a suggestion's confidence)."""
        texts = _texts(texts, "predict_spans")
        features = self._features(texts)
        if features is None:
            return [(SpanList(), []) for _ in texts]
        return self.tagger.predict_spans(features, range(len(texts)))

    def tokens(self, texts) -> list[list[tuple[int, int]]]:
        """Each text's tokens, (start, end) in code points: the rows of `token_proba`."""
        texts = _texts(texts, "tokens")
        features = self._features(texts)
        return [[] for _ in texts] if features is None else features.tokens

    def token_proba(self, texts) -> list[np.ndarray]:
        """For each text, (its tokens, tags): each tag's probability for each token."""
        texts = _texts(texts, "token_proba")
        features = self._features(texts)
        if features is None:
            return [np.zeros((0, len(self.tags))) for _ in texts]
        proba = self.tagger.token_proba(features, range(len(texts)))
        return np.split(proba, features.starts[1:-1])

    def token_features(self, texts) -> np.ndarray:
        """The ONNX graph's "items": float32 (all the texts' tokens, N_FEATURES), dense (128 KiB
        a token: 600 tokens take 80 MB, so feed texts in small batches). Rows in the order of
        `tokens(texts)`. A Hugging Face tagger's graph reads subword ids instead: ValueError."""
        if type(self.tagger) is not TokenTagger:
            raise ValueError(f"token_features are the built-in TokenTagger's graph input; this model's "
                             f"{type(self.tagger).__name__} graph reads the tokenizer's input_ids and "
                             "attention_mask: model.tagger.tokenizer_(texts, padding=True, truncation=True, "
                             "return_tensors='np')")
        features = self._features(_texts(texts, "token_features"))
        if features is None:
            return np.zeros((0, N_FEATURES), np.float32)
        return features.rows.astype(np.float32).toarray()

    def table(self, ids, texts, *, batch: int = 64, progress=None):
        """A DataFrame of one row per span, (item_id, start, end, label, text, confidence): the
        spans of `predict_spans`, the words they cover, and how sure the tagger is of the least
        sure of its tokens; the texts are tagged `batch` at a time (`progress(n)` after each)."""
        import pandas as pd

        texts = _texts(texts, "table")
        if len(ids) != len(texts):
            raise ValueError(f"got {len(ids)} item ids for {len(texts)} texts; expected one id per text")
        rows = []
        for start in range(0, len(texts), batch):
            part = texts[start:start + batch]
            for item_id, text, (spans, sure) in zip(ids[start:start + batch], part,
                                                    self.predict_spans_with_confidence(part)):
                rows.extend((str(item_id), s.start, s.end, s.label, text[s.start:s.end], float(p))
                            for s, p in zip(spans, sure))
            if progress is not None:
                progress(len(part))
        return pd.DataFrame(rows, columns=["item_id", "start", "end", "label", "text", "confidence"])
