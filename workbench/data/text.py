"""Offline text features: TF-IDF reduced by LSA (truncated SVD).

Text pools need numbers for a model to learn from, and nothing may be downloaded at run
time, so the built-in vectorizer is classic and local: word and character n-gram TF-IDF,
reduced to a dense, L2-normalised vector small enough for an MLP. Users with better
embeddings pass them as `embeddings=` instead.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import hstack
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize


class TextVectorizer:
    def __init__(self, n_components: int = 128, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        # char n-grams make short, misspelled or non-English texts work too.
        self.words_ = TfidfVectorizer(sublinear_tf=True, min_df=1, max_features=50_000)
        self.chars_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True,
                                      max_features=50_000)
        tfidf = hstack([self._fit(self.words_, texts), self._fit(self.chars_, texts)]).tocsr()
        k = min(self.n_components, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
        if k < 2:  # too few texts for a reduction: keep the (small) TF-IDF itself
            self.svd_ = None
            return normalize(tfidf).toarray().astype(np.float32)
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state)
        return normalize(self.svd_.fit_transform(tfidf)).astype(np.float32)

    @staticmethod
    def _fit(vectorizer, texts):
        try:
            return vectorizer.fit_transform(texts)
        except ValueError:  # e.g. every text is empty or only stop words
            from scipy.sparse import csr_matrix

            return csr_matrix((len(texts), 1))
