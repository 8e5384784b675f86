"""The default learner of a spans pool: a token classifier over BIO tags.

Each text is cut into tokens (`workbench.data.spans.tokens`: words and marks of punctuation);
each token is described by hashed features of itself and its neighbours (the word, its
lower case, its shape such as "Xxxx" or "dd", prefixes and suffixes, the words either side)
and a multinomial logistic regression predicts its tag (`B-PER`, `I-PER`, `O`, ...). The
predicted spans are the BIO runs of the most likely tags. No CRF: with tens of labeled texts
a per-token head learns as much, in a fraction of a second (issue 21 allows "a BiLSTM/CRF-free
token head").

The pool's token features are built once (`TokenFeatures`) and every round reads rows of them:
a round fits on the labeled texts' tokens and predicts every text's tokens with one sparse
product. How unsure the model is of a text (what the queue ranks by) comes from its tokens'
probabilities: the least confident token (1 - the smallest top-tag probability) or the mean
token entropy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.feature_extraction import FeatureHasher
from sklearn.linear_model import LogisticRegression

from workbench.data.spans import Span, SpanList, bio_tags, spans_from_bio, tokens

N_FEATURES = 2 ** 15  # ample for the words of a pool; 2 ** 18 made each fit 10x slower
UNCERTAINTY = ("least_confident_token", "mean_token_entropy")  # the columns of `uncertainty`


def _shape(word: str) -> str:
    out = []
    for ch in word:
        c = "X" if ch.isupper() else "x" if ch.islower() else "d" if ch.isdigit() else ch
        if not out or out[-1] != c or len(out) < 2 or out[-2] != c:  # "Xxxxx" -> "Xxx"
            out.append(c)
    return "".join(out)


def _token_features(words: list[str]) -> list[list[str]]:
    rows = []
    lower = [w.lower() for w in words]
    shapes = [_shape(w) for w in words]
    for i, w in enumerate(words):
        prev_w = lower[i - 1] if i else "<s>"
        next_w = lower[i + 1] if i + 1 < len(words) else "</s>"
        prev_s = shapes[i - 1] if i else "<s>"
        next_s = shapes[i + 1] if i + 1 < len(words) else "</s>"
        rows.append(["bias", f"w={lower[i]}", f"shape={shapes[i]}", f"pre2={lower[i][:2]}",
                     f"pre3={lower[i][:3]}", f"suf2={lower[i][-2:]}", f"suf3={lower[i][-3:]}",
                     f"title={w.istitle()}", f"upper={w.isupper()}", f"first={i == 0}",
                     f"prev={prev_w}", f"next={next_w}", f"prev_shape={prev_s}", f"next_shape={next_s}",
                     f"prev_w+w={prev_w}|{lower[i]}", f"w+next_w={lower[i]}|{next_w}",
                     f"prev2={lower[i - 2] if i > 1 else '<s>'}",
                     f"next2={lower[i + 2] if i + 2 < len(words) else '</s>'}"])
    return rows


class TokenFeatures:
    """Every text's tokens (code-point offsets) and their hashed features, in one sparse
    matrix: the rows of text `i` are `rows[starts[i]:starts[i + 1]]`."""

    def __init__(self, texts: Sequence[str]):
        self.texts = [str(t) for t in texts]
        self.tokens = [tokens(t) for t in self.texts]
        self.starts = np.concatenate([[0], np.cumsum([len(t) for t in self.tokens])]).astype(np.int64)
        hasher = FeatureHasher(N_FEATURES, input_type="string", alternate_sign=False)
        self.rows = hasher.transform(
            f for text, toks in zip(self.texts, self.tokens)
            for f in _token_features([text[a:b] for a, b in toks])).tocsr()

    def of(self, positions) -> sparse.csr_matrix:
        """The token rows of the texts at `positions`, in that order."""
        index = np.concatenate([np.arange(self.starts[p], self.starts[p + 1]) for p in positions]
                               or [np.empty(0, np.int64)])
        return self.rows[index]


class WordTagger(BaseEstimator):
    """What every spans learner reads from its words' tag probabilities: the spans, how unsure
    it is of a text, its least sure word. A subclass sets `tag_names_` when fitted and gives
    `token_proba(features, positions)`, one row per token of `workbench.data.spans.tokens`
    (a learner over subwords maps them back to those words: `HFTokenTagger`)."""

    def predict_spans(self, features: TokenFeatures, positions) -> list[tuple[SpanList, list[float]]]:
        """For each text at `positions`: its predicted spans and, for each, the model's
        confidence (the smallest top-tag probability over the span's tokens)."""
        proba = self.token_proba(features, positions)
        out, at = [], 0
        for p in positions:
            toks = features.tokens[p]
            block = proba[at:at + len(toks)]
            at += len(toks)
            tags = [self.tag_names_[j] for j in block.argmax(axis=1)]
            spans = spans_from_bio(toks, tags)
            top = block.max(axis=1) if len(toks) else np.empty(0)
            starts = [t[0] for t in toks]
            confidence = []
            for span in spans:
                inside = [j for j, s in enumerate(starts) if span.start <= s < span.end]
                confidence.append(float(top[inside].min()) if inside else 1.0)
            out.append((spans, confidence))
        return out

    def uncertainty(self, features: TokenFeatures, positions) -> np.ndarray:
        """(texts, 2): how unsure the model is of each text at `positions`, by the measures of
        UNCERTAINTY: 1 - the least confident token's top-tag probability, and the mean token
        entropy (nats). A text with no tokens is 0 by both."""
        proba = self.token_proba(features, positions)
        out = np.zeros((len(positions), 2))
        top = proba.max(axis=1)
        entropy = -(proba * np.log(np.clip(proba, 1e-12, 1))).sum(axis=1)
        at = 0
        for i, p in enumerate(positions):
            n = int(features.starts[p + 1] - features.starts[p])
            if n:
                out[i] = 1 - top[at:at + n].min(), entropy[at:at + n].mean()
            at += n
        return out

    def least_sure_token(self, features: TokenFeatures, position: int) -> tuple[str, str, float]:
        """The word of the text the model is least sure of, its top tag and that tag's probability."""
        proba = self.token_proba(features, [position])
        if not len(proba):
            return "", "O", 1.0
        j = int(proba.max(axis=1).argmin())
        a, b = features.tokens[position][j]
        k = int(proba[j].argmax())
        return features.texts[position][a:b], self.tag_names_[k], float(proba[j, k])



class TokenTagger(WordTagger):
    """A per-token multinomial logistic regression over the BIO tags of `labels` (see the
    module doc). `fit_spans` / `predict_spans` speak spans; `C` is the inverse strength of
    the L2 penalty."""

    def __init__(self, labels: Sequence[str] | None = None, C: float = 10.0, random_state: int = 0):
        self.labels = labels
        self.C = C
        self.random_state = random_state

    def tags(self) -> list[str]:
        return ["O", *(f"{p}-{label}" for label in self.labels for p in ("B", "I"))]

    def fit_spans(self, features: TokenFeatures, positions, span_lists) -> TokenTagger:
        """Fit on the texts at `positions` of `features`, marked with `span_lists`."""
        if not self.labels:
            raise ValueError("TokenTagger needs labels=[...]: the span labels it tags")
        names = self.tags()
        y = np.concatenate([[names.index(t) if t in names else 0 for t in
                             bio_tags(features.texts[p], spans)[1]]
                            for p, spans in zip(positions, span_lists)] or [np.empty(0, int)])
        X = features.of(positions)
        self.tag_names_ = names
        present = np.unique(y)
        if len(present) < 2:  # nothing marked yet (or only marks): every token gets that tag
            self.constant_ = int(present[0]) if len(present) else 0
            self.model_ = None
            return self
        self.constant_ = None
        # Only the hashed features the labeled tokens have: the others would get weight 0
        # under the L2 penalty anyway, and L-BFGS over all 2 ** 15 x tags weights took 10x
        # longer (1.5 s of a 150-text fit went to the optimizer's own bookkeeping).
        self.columns_ = np.unique(X.indices)
        self.model_ = LogisticRegression(C=self.C, max_iter=300, random_state=self.random_state)
        self.model_.fit(X[:, self.columns_], y)
        self.present_ = present
        return self

    def token_proba(self, features: TokenFeatures, positions) -> np.ndarray:
        """(tokens of those texts, tags): the probability of each tag for each token."""
        X = features.of(positions)
        out = np.zeros((X.shape[0], len(self.tag_names_)), dtype=np.float64)
        if self.model_ is None:
            out[:, self.constant_] = 1.0
        else:
            out[:, self.present_] = self.model_.predict_proba(X[:, self.columns_])
        return out


__all__ = ["Span", "TokenFeatures", "TokenTagger", "UNCERTAINTY", "WordTagger"]
