"""The map's projection: a pool's features put in 2-D, fitted once and cached.

The map is a 2-D projection of `session.inputs.features()`, what the learner is trained on
(the pool's representation for the default learner, the pool's own features for any other),
so clusters on it are what the model can tell apart. Methods:
- "umap": umap-learn, when it is installed (it is optional, never downloaded);
- "tsne": scikit-learn's Barnes-Hut t-SNE, 500 iterations (on the digits, a 5-nearest-neighbour
  classifier on the map scores 98.4% at 500 and 98.2% at 1,000, at half the time), on one
  thread (two threads on two busy cores took 4x longer);
- "pca": the first two principal components (0.1 s for 10,000 items);
- "auto": UMAP if installed; else t-SNE up to `TSNE_AUTO_MAX` (2,500) items to fit and PCA
  above. Timed on two shared cores, 128-d features, one thread: t-SNE 1.6 s of CPU for 1,000
  items, 3.5 s for the 1,797 digits, 6.7 s for 3,000, 13 s for 5,000; PCA 0.1 s for 1,797 and
  for 10,000. A map should come back in seconds, so larger pools get PCA unless asked.

t-SNE and UMAP are fitted on at most `sample` items: the whole pool when it is that small,
else a fixed random sample of it (seeded, independent of the labels, so the map stays put as
labels come in); labeled items outside that sample are placed at the distance-weighted mean
position of their 5 nearest fitted items. PCA is fitted on (up to 50,000 of) the items and
places all of them. Projections are cached by a fingerprint of the features (the
representation's fingerprint, or one of the pool's features) and the method, so a second
map of the same session, coloured differently or after more labels, is drawn instantly, and
so is a map of a new Session on the same pool (a notebook cell run again).

Each projection has a `tag` that names it in the chart's fields (`x_<tag>`, `y_<tag>`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from workbench.data.representation import fingerprint as pool_fingerprint

MAX_POINTS = 5_000      # points drawn by default, and fitted by t-SNE and UMAP at most
TSNE_AUTO_MAX = 2_500   # "auto" fits t-SNE on at most this many items, PCA above
TSNE_ITERATIONS = 500
PCA_FIT_MAX = 50_000
PLACE_NEIGHBORS = 5
METHODS = ("auto", "umap", "tsne", "pca")
METHOD_NAMES = {"umap": "UMAP", "tsne": "t-SNE", "pca": "PCA"}


@dataclass
class Projection:
    """2-D coordinates of a pool's items (row i: pool position i), NaN where not placed yet."""

    method: str                 # "umap", "tsne" or "pca"
    features_key: str           # fingerprint of the features it was computed from
    tag: str                    # names it in the chart's fields (x_<tag>, y_<tag>)
    coords: np.ndarray          # (N, 2) float32
    fitted: np.ndarray          # positions it was fitted on (sorted)
    seconds: float              # how long fitting took
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def at(self, features: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Coordinates of these items, placing the ones not fitted (t-SNE, UMAP) among
        their nearest fitted neighbours, once."""
        with self._lock:
            missing = positions[np.isnan(self.coords[positions, 0])]
            if len(missing):
                self.coords[missing] = _place(features, self.fitted, self.coords[self.fitted],
                                              missing)
            return self.coords[positions]


_LOCK = threading.Lock()
_PROJECTIONS: OrderedDict[tuple, Projection] = OrderedDict()   # (features, method, fit) -> it
_FEATURE_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # session -> key


def projection_of(session, method: str = "auto", *, sample: int = MAX_POINTS) -> Projection:
    """The session's pool projected to 2-D with `method` (cached; see the module doc)."""
    n = len(session.pool)
    method = resolve_method(method, min(n, sample))
    fit_n = n if method == "pca" else min(n, sample)
    key = features_key(session)
    cache_key = (key, method, fit_n)
    with _LOCK:
        cached = _PROJECTIONS.get(cache_key)
        if cached is not None:
            _PROJECTIONS.move_to_end(cache_key)
            return cached
    features = flat(session.inputs.features())
    fitted = np.sort(fixed_order(n)[:fit_n])
    started = time.perf_counter()
    coords = np.full((n, 2), np.nan, dtype=np.float32)
    if method == "pca":
        coords[:] = _pca(features)
    else:
        coords[fitted] = (_tsne if method == "tsne" else _umap)(features[fitted])
    tag = hashlib.blake2b(f"{key}|{method}|{fit_n}".encode(), digest_size=4).hexdigest()
    projection = Projection(method, key, tag, coords, fitted, round(time.perf_counter() - started, 3))
    with _LOCK:
        remember(_PROJECTIONS, cache_key, projection, keep=8)
    return projection


def resolve_method(method: str, n_fit: int) -> str:
    """The method "auto" stands for when `n_fit` items are to be fitted; checks the others."""
    has_umap = importlib.util.find_spec("umap") is not None
    if method == "auto":
        return "umap" if has_umap else "tsne" if n_fit <= TSNE_AUTO_MAX else "pca"
    if method == "umap" and not has_umap:
        raise ValueError("method='umap' needs umap-learn, which is not installed here "
                         "(pip install umap-learn); use method='tsne' or 'pca'")
    if method not in METHOD_NAMES:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def features_key(session) -> str:
    """A fingerprint of what the learner sees: the representation's, or the pool's own."""
    with _LOCK:
        key = _FEATURE_KEYS.get(session)
    if key is None:
        rep = session.inputs.representation()
        key = rep.fingerprint if rep is not None else pool_fingerprint(session.pool, "raw")
        with _LOCK:
            _FEATURE_KEYS[session] = key
    return key


def remember(cache: OrderedDict, key, value, *, keep: int) -> None:
    """Put `value` in a cache that keeps the `keep` most recent."""
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > keep:
        cache.popitem(last=False)


def flat(X) -> np.ndarray:
    """Features as a float32 matrix, one row per item."""
    X = np.asarray(X, dtype=np.float32)
    return X.reshape(len(X), -1)


def fixed_order(n: int) -> np.ndarray:
    """A seeded permutation of the pool: its head is the sample fitted and drawn."""
    return np.random.default_rng(0).permutation(n)


def _pca(F: np.ndarray) -> np.ndarray:
    from sklearn.decomposition import PCA

    out = np.zeros((len(F), 2), dtype=np.float32)
    k = min(2, F.shape[1], len(F) - 1)
    if k < 1:
        return out
    fit = F if len(F) <= PCA_FIT_MAX else F[np.sort(fixed_order(len(F))[:PCA_FIT_MAX])]
    out[:, :k] = PCA(k, random_state=0).fit(fit).transform(F)
    return out


def _threads() -> int:
    """Half the cores: t-SNE's threads spin, and the kernel's trainer and watcher need one."""
    return max(1, (os.cpu_count() or 1) // 2)


def _tsne(F: np.ndarray) -> np.ndarray:
    from sklearn.manifold import TSNE

    from workbench.learn.threads import limit_threads

    if len(F) < 5:  # too few for a perplexity: the principal components say as much
        return _pca(F)
    with limit_threads(_threads()):
        return TSNE(2, perplexity=min(30.0, (len(F) - 1) / 3), init="pca", random_state=0,
                    max_iter=TSNE_ITERATIONS, n_jobs=_threads()).fit_transform(F).astype(np.float32)


def _umap(F: np.ndarray) -> np.ndarray:  # pragma: no cover - umap-learn is optional
    import umap

    if len(F) < 5:
        return _pca(F)
    return umap.UMAP(n_components=2, n_neighbors=min(15, len(F) - 1),
                     random_state=0).fit_transform(F).astype(np.float32)


def _place(features, fitted, fitted_xy, positions) -> np.ndarray:
    """Positions of items the projection was not fitted on: the distance-weighted mean of
    their nearest fitted items' positions."""
    from sklearn.neighbors import NearestNeighbors

    k = min(PLACE_NEIGHBORS, len(fitted))
    dist, index = NearestNeighbors(n_neighbors=k).fit(features[fitted]).kneighbors(features[positions])
    weights = 1 / (dist + 1e-6)
    return (np.einsum("ik,ikj->ij", weights, fitted_xy[index]) / weights.sum(1, keepdims=True)
            ).astype(np.float32)


def method_of(tag: str) -> str:
    """The method of the cached projection `tag` ("" when it is no longer cached)."""
    with _LOCK:
        return next((p.method for p in _PROJECTIONS.values() if p.tag == tag), "")
