"""Data of the sizes people label, built offline from what ships with the dependencies.

- `digits_28`: MNIST-sized (28 x 28) handwritten digits: scikit-learn's 8 x 8 digits
  upsampled to 20 x 20 (cubic, `scipy.ndimage.zoom`), centred in a 28 x 28 frame like
  MNIST's, each copy with its own random affine jitter (rotation +-12 degrees, scale +-10%,
  shift +-2 px) and Gaussian noise (sd 0.05). Split the 1,797 originals first, then make
  copies of each side, so that no test image is a jittered copy of a pool image.
- `photos`: RGB images of a given size (64 x 64, 128 x 128) for cost figures only: the
  upsampled digits tinted on a random colour background, with noise.
- `bbc_chunks`: short texts cut from the real BBC News articles in ../shared/data (read from
  there, never copied): two sentences per text, labeled with the article's category.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BBC = Path(__file__).resolve().parents[2] / "shared" / "data" / "bbc-news.csv"


def digits_base():
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.images / 16.0).astype(np.float32), data.target


def _upsampled(images8: np.ndarray, size: int = 20, frame: int = 28) -> np.ndarray:
    from scipy import ndimage

    pad = (frame - size) // 2
    return np.stack([np.pad(np.clip(ndimage.zoom(im, size / im.shape[0], order=3), 0, 1), pad)
                     for im in images8])


def _jitter(image: np.ndarray, rng, rot=12.0, scale=0.1, shift=2.0, noise=0.05) -> np.ndarray:
    from scipy import ndimage

    angle = np.deg2rad(rng.uniform(-rot, rot))
    s = 1 + rng.uniform(-scale, scale)
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) / s
    centre = (np.array(image.shape) - 1) / 2
    offset = centre - matrix @ centre - rng.uniform(-shift, shift, 2)
    out = ndimage.affine_transform(image, matrix, offset=offset, order=1)
    return np.clip(out + rng.normal(0, noise, out.shape), 0, 1).astype(np.float32)


def digits_28(images8: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` jittered 28 x 28 copies of the given 8 x 8 digits (each original used about
    equally often, in a seeded order)."""
    rng = np.random.default_rng(seed)
    base = _upsampled(images8)
    order = np.concatenate([rng.permutation(len(y)) for _ in range(-(-n // len(y)))])[:n]
    return np.stack([_jitter(base[i], rng) for i in order]), y[order]


def digits_28_split(seed: int, n_pool: int = 10_000, n_test: int = 2_000, test_size: float = 0.3):
    """(X_pool, y_pool, X_test, y_test): originals split 70/30 (stratified, by `seed`) first."""
    from sklearn.model_selection import train_test_split

    images, y = digits_base()
    pool_idx, test_idx = train_test_split(np.arange(len(y)), test_size=test_size,
                                          random_state=seed, stratify=y)
    X_pool, y_pool = digits_28(images[pool_idx], y[pool_idx], n_pool, seed)
    X_test, y_test = digits_28(images[test_idx], y[test_idx], n_test, seed + 10_000)
    return X_pool, y_pool, X_test, y_test


def photos(n: int, side: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` RGB images side x side in [0, 1] (a coloured digit on a coloured background)."""
    from scipy import ndimage

    images, y = digits_base()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(y), n)
    out = np.empty((n, side, side, 3), np.float32)
    for k, i in enumerate(pick):
        glyph = np.clip(ndimage.zoom(images[i], side / 8, order=1), 0, 1)[:side, :side]
        fg, bg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        out[k] = glyph[..., None] * fg + (1 - glyph[..., None]) * bg
    out += rng.normal(0, 0.03, out.shape).astype(np.float32)
    return np.clip(out, 0, 1), y[pick]


def bbc_chunks(n: int | None = None, seed: int = 0, sentences: int = 2):
    """Short texts (two sentences each) cut from the BBC News articles, and their
    categories; `n` of them in a seeded order (all when None)."""
    import re

    import pandas as pd

    if not BBC.exists():
        raise FileNotFoundError(f"{BBC} not found: the text benchmark reads the shared BBC News set")
    frame = pd.read_csv(BBC)
    texts, labels = [], []
    for text, category in zip(frame["text"], frame["category"]):
        parts = [p.strip() for p in re.split(r"(?<=[.!?])\s+", str(text)) if len(p.strip()) > 20]
        for start in range(0, len(parts) - sentences + 1, sentences):
            texts.append(" ".join(parts[start:start + sentences]))
            labels.append(category)
    order = np.random.default_rng(seed).permutation(len(texts))[:n]
    return [texts[i] for i in order], np.asarray(labels, dtype=object)[order]


def bbc_articles():
    import pandas as pd

    frame = pd.read_csv(BBC)
    return frame["text"].astype(str).tolist(), frame["category"].to_numpy(dtype=object)


def bbc_digests(n: int = 3000, seed: int = 0, test_share: float = 0.3, sentences: int = 3):
    """A multi-label text set built offline from the BBC News articles: each item is a news
    digest, the leads (first `sentences` sentences) of 1, 2 or 3 articles (chances 0.4, 0.4,
    0.2), and its label is the set of their categories. Test digests are made of other
    articles than the pool's: `(texts, label_sets, test_texts, test_label_sets)`, the test
    set a third of the pool's size."""
    import re

    import pandas as pd

    if not BBC.exists():
        raise FileNotFoundError(f"{BBC} not found: the text benchmark reads the shared BBC News set")
    frame = pd.read_csv(BBC)
    leads = [" ".join([p.strip() for p in re.split(r"(?<=[.!?])\s+", str(t)) if p.strip()][:sentences])
             for t in frame["text"]]
    categories = frame["category"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(leads))
    cut = int(len(order) * (1 - test_share))

    def digests(articles, count):
        texts, sets = [], []
        for _ in range(count):
            chosen = rng.choice(articles, rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]), replace=False)
            texts.append("\n\n".join(leads[i] for i in chosen))
            sets.append(sorted({categories[i] for i in chosen}))
        return texts, sets

    texts, sets = digests(order[:cut], n)
    test_texts, test_sets = digests(order[cut:], max(n // 3, 1))
    return texts, sets, test_texts, test_sets


def digit_pairs(n: int = 3000, seed: int = 0, test_share: float = 0.3):
    """A multi-label image set built from scikit-learn's bundled digits: each item is two
    8 x 8 digits side by side (8 x 16, values in [0, 1]) and its label is the set of the
    digits shown (one class when both are the same digit). Test pairs are made of other
    originals than the pool's: `(X, label_sets, X_test, test_label_sets)`, the test set a
    third of the pool's size."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.images))
    cut = int(len(order) * (1 - test_share))

    def pairs(originals, count):
        left, right = rng.choice(originals, count), rng.choice(originals, count)
        X = np.concatenate([digits.images[left], digits.images[right]], axis=2) / 16.0
        return X.astype(np.float32), [sorted({int(digits.target[a]), int(digits.target[b])})
                                      for a, b in zip(left, right)]

    X, sets = pairs(order[:cut], n)
    X_test, test_sets = pairs(order[cut:], max(n // 3, 1))
    return X, sets, X_test, test_sets
