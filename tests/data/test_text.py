"""Text features: local sentence embeddings when installed (never a download), TF-IDF + LSA
otherwise, cached by a fingerprint of the texts."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from workbench import Pool
from workbench.data import text

TEXTS = ["the cat sat", "a dog barked", "stocks fell sharply", "the bank raised rates"]


@pytest.fixture
def fake_sentence_transformers(monkeypatch):
    """A stand-in for the optional package, recording how it was asked to load a model."""
    calls = []

    class SentenceTransformer:
        def __init__(self, name, **kw):
            import os

            calls.append((name, kw, os.environ.get("HF_HUB_OFFLINE")))
            if name == "not-installed":
                raise OSError(f"{name} is not in the local cache")

        def encode(self, texts, **kw):
            return np.array([[len(t), 1.0] for t in texts]) / 10

    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = SentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    return calls


def test_local_sentence_embeddings_are_used_and_never_downloaded(fake_sentence_transformers,
                                                                  monkeypatch):
    monkeypatch.setenv("WORKBENCH_TEXT_MODEL", "my-local-model")
    pool = Pool.from_texts(TEXTS, [0, 0, 1, 1])
    assert pool.X.shape == (4, 2)
    np.testing.assert_allclose(pool.X[:, 0], [len(t) / 10 for t in TEXTS])
    name, kw, offline = fake_sentence_transformers[-1]
    assert name == "my-local-model" and kw["local_files_only"] is True and offline == "1"


def test_without_a_local_model_texts_get_tfidf(fake_sentence_transformers, monkeypatch):
    monkeypatch.setenv("WORKBENCH_TEXT_MODEL", "not-installed")
    pool = Pool.from_texts(TEXTS)
    assert pool.X.shape == (4, 3)  # TF-IDF + LSA (k = n - 1 for so few texts)
    monkeypatch.setenv("WORKBENCH_TEXT_MODEL", "tfidf")
    assert text.local_sentence_encoder() is None


def test_text_features_are_cached_by_the_texts(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_TEXT_MODEL", "tfidf")
    first = text.text_features(TEXTS)
    cached = list((tmp_path / "texts").glob("*.npy"))
    assert len(cached) == 1

    def no_vectorizing(*a, **kw):
        raise AssertionError("vectorised again")

    monkeypatch.setattr(text.TextVectorizer, "fit_transform", no_vectorizing)
    np.testing.assert_array_equal(text.text_features(TEXTS), first)
    with pytest.raises(AssertionError, match="vectorised again"):  # other texts, another key
        text.text_features(TEXTS[:3] + ["the bank cut rates"])
    cached[0].write_bytes(b"broken")  # a truncated file is computed again, not trusted
    monkeypatch.undo()
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_TEXT_MODEL", "tfidf")
    np.testing.assert_array_equal(text.text_features(TEXTS), first)
