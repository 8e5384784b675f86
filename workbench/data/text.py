"""Text features: real sentence embeddings when a model is installed locally, else TF-IDF
reduced by LSA (truncated SVD), offline.

Text pools need numbers for a model to learn from, and nothing may be downloaded at run
time. `text_features` uses a sentence-transformers model only if the package (the
optional extra `pip install workbench[text]`) and the model's files are already on this
machine (`local_files_only`, the Hugging Face hub offline); the model is named by
`WORKBENCH_TEXT_MODEL` (default `sentence-transformers/all-MiniLM-L6-v2`; "tfidf" turns
embeddings off). Otherwise the built-in vectorizer is classic and local: word and character
n-gram TF-IDF, reduced to a dense, L2-normalised vector. Either result is cached by a
fingerprint of the texts (and the method), so a notebook run again does not vectorise again.
Users with other embeddings pass them as `embeddings=` instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
from scipy.sparse import hstack
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

log = logging.getLogger(__name__)
DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
VERSION = 1  # of the TF-IDF + LSA recipe below: part of the cache key


def text_features(texts: list[str], *, cache: bool = True) -> np.ndarray:
    """Features for `texts`: local sentence embeddings when available, else TF-IDF + LSA;
    cached by a fingerprint of the texts in the workbench cache folder."""
    encoder = local_sentence_encoder()
    method = f"sentence:{encoder[0]}" if encoder else f"tfidf-lsa:v{VERSION}"
    path = _cache_path(texts, method) if cache else None
    if path is not None and path.exists():
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:  # truncated or foreign: compute again
            log.warning("ignoring unreadable cached text features %s (%s)", path, e)
    if encoder:
        features = np.asarray(encoder[1].encode(texts, show_progress_bar=False,
                                                normalize_embeddings=True), dtype=np.float32)
    else:
        vectorizer = TextVectorizer()
        features = vectorizer.fit_transform(texts)
        _remember(texts, vectorizer)
    if path is not None:
        _save(path, features)
    return features


# The vectorisers fitted in this process, by their texts: a model bundle carries the one that
# made a pool's features, and fitting it again costs as much as the first time (seconds for
# thousands of texts). Memory only, the last two: each holds its LSA components (tens of MB).
_FITTED: dict[str, TextVectorizer] = {}


def _key(texts: list[str]) -> str:
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{len(texts)}|".encode())
    h.update("\x1f".join(texts).encode())
    return h.hexdigest()


def _remember(texts: list[str], vectorizer: TextVectorizer) -> None:
    _FITTED[_key(texts)] = vectorizer
    while len(_FITTED) > 2:
        _FITTED.pop(next(iter(_FITTED)))


def local_sentence_encoder():
    """(name, model) of a sentence-transformers model that is installed on this machine, or
    None: never a download (local files only, the hub offline)."""
    name = os.environ.get("WORKBENCH_TEXT_MODEL", DEFAULT_MODEL)
    if name.lower() in ("", "tfidf", "none", "off"):
        return None
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    offline = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    os.environ.update({k: "1" for k in offline})
    try:
        return name, SentenceTransformer(name, local_files_only=True, device="cpu")
    except (OSError, ValueError, RuntimeError) as e:  # not installed locally: the offline path
        log.info("no local sentence-embedding model %r (%s); using TF-IDF + LSA", name, e)
        return None
    finally:
        for k, v in offline.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _cache_path(texts: list[str], method: str) -> Path | None:
    from workbench.data.representation_cache import default_cache_dir

    h = hashlib.blake2b(digest_size=20)
    h.update(f"{method}|{len(texts)}|".encode())
    h.update("\x1f".join(texts).encode())
    return default_cache_dir().parent / "texts" / f"{h.hexdigest()}.npy"


def _save(path: Path, features: np.ndarray) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, features)
        os.replace(tmp, path)
    except OSError as e:  # a read-only home: no cache, nothing lost
        log.warning("could not cache text features in %s (%s)", path.parent, e)


class TextVectorizer:
    """Word and character n-gram TF-IDF, reduced by LSA and L2-normalised.

    Its fitted state is plain data (`state()`: the vocabularies as lists, the IDF weights
    and the LSA components as arrays), so a model bundle carries it without pickle and
    `from_state` rebuilds a vectoriser that encodes new texts exactly as the pool's were."""

    def __init__(self, n_components: int = 128, random_state: int = 0):
        self.n_components = n_components
        self.random_state = random_state

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        # char n-grams make short, misspelled or non-English texts work too.
        self.words_ = TfidfVectorizer(**WORDS)
        self.chars_ = TfidfVectorizer(**CHARS)
        tfidf = hstack([self._fit(self.words_, texts), self._fit(self.chars_, texts)]).tocsr()
        k = min(self.n_components, tfidf.shape[0] - 1, tfidf.shape[1] - 1)
        if k < 2:  # too few texts for a reduction: keep the (small) TF-IDF itself
            self.svd_ = None
            return normalize(tfidf).toarray().astype(np.float32)
        self.svd_ = TruncatedSVD(n_components=k, random_state=self.random_state)
        return normalize(self.svd_.fit_transform(tfidf)).astype(np.float32)

    def transform(self, texts: list[str]) -> np.ndarray:
        parts = [v.transform(texts) if hasattr(v, "idf_") else _empty(len(texts))
                 for v in (self.words_, self.chars_)]
        tfidf = hstack(parts).tocsr()
        if self.svd_ is None:
            return normalize(tfidf).toarray().astype(np.float32)
        return normalize(self.svd_.transform(tfidf)).astype(np.float32)

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(JSON-able settings and vocabularies, arrays) for a bundle."""
        config = {"method": f"tfidf-lsa:v{VERSION}", "words": WORDS, "chars": CHARS,
                  "n_components": self.n_components}
        arrays = {}
        for name, v in (("words", self.words_), ("chars", self.chars_)):
            fitted = hasattr(v, "idf_")
            vocabulary = sorted(v.vocabulary_, key=v.vocabulary_.get) if fitted else []
            config[f"{name}_vocabulary"] = vocabulary
            arrays[f"{name}.idf"] = v.idf_.astype(np.float64) if fitted else np.zeros(0)
        if self.svd_ is not None:
            arrays["lsa.components"] = self.svd_.components_
        return config, arrays

    @classmethod
    def from_state(cls, config: dict, arrays: dict[str, np.ndarray]) -> TextVectorizer:
        if config.get("method") != f"tfidf-lsa:v{VERSION}":
            raise ValueError(f"text features made by {config.get('method')!r}; this workbench "
                             f"encodes texts with tfidf-lsa:v{VERSION} only")
        for name, settings in (("words", WORDS), ("chars", CHARS)):
            # the recipe is this version's, never read from the file: a stored setting could
            # otherwise make the vectoriser open files (input="filename") or backtrack forever
            if json.loads(json.dumps(config.get(name))) != json.loads(json.dumps(settings)):
                raise ValueError(f"the {name} vectoriser settings differ from tfidf-lsa:v{VERSION}'s")
        out = cls(config["n_components"])
        for name, settings in (("words", WORDS), ("chars", CHARS)):
            vocabulary = config[f"{name}_vocabulary"]
            if not isinstance(vocabulary, list) or not all(isinstance(t, str) for t in vocabulary):
                raise ValueError(f"the {name} vocabulary must be a list of strings")
            v = TfidfVectorizer(**settings, vocabulary=vocabulary or None)
            if vocabulary:
                v.idf_ = arrays[f"{name}.idf"]
            setattr(out, f"{name}_", v)
        if "lsa.components" in arrays:
            out.svd_ = TruncatedSVD(n_components=len(arrays["lsa.components"]))
            out.svd_.components_ = arrays["lsa.components"]
            out.svd_.n_features_in_ = arrays["lsa.components"].shape[1]
        else:
            out.svd_ = None
        return out

    @staticmethod
    def _fit(vectorizer, texts):
        try:
            return vectorizer.fit_transform(texts)
        except ValueError:  # e.g. every text is empty or only stop words
            return _empty(len(texts))


WORDS = {"sublinear_tf": True, "min_df": 1, "max_features": 50_000}
CHARS = {"analyzer": "char_wb", "ngram_range": (2, 4), "sublinear_tf": True, "max_features": 50_000}


def _empty(n: int):
    from scipy.sparse import csr_matrix

    return csr_matrix((n, 1))


def vectorizer_of(texts: list[str], features: np.ndarray) -> TextVectorizer | None:
    """The built-in vectoriser that made `features` from `texts`: the one fitted in this
    process if it reproduces them, else fitted again (it is deterministic); None when they
    came from elsewhere (sentence embeddings, a user's own `embeddings=`): new texts can then
    not be encoded the same way."""
    if features.ndim != 2 or len(texts) != len(features):
        return None
    fitted = _FITTED.get(_key(list(texts)))
    if fitted is not None:  # check a few rows: the features may have come from elsewhere
        rows = slice(0, min(32, len(texts)))
        if np.allclose(fitted.transform(list(texts[rows])), features[rows], atol=1e-5):
            return fitted
    vectorizer = TextVectorizer()
    again = vectorizer.fit_transform(list(texts))
    if again.shape != features.shape or not np.allclose(again, features, atol=1e-5):
        return None
    return vectorizer
