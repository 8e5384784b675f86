"""The pool's representation: features learned once from all of a pool's items, so that a
training round only fits a light head on them (see `workbench.learn.head`).

Labels are expensive and the unlabeled pool is free. Learning what the items look like
from all of them costs seconds, once per pool; after that a round costs milliseconds. A
`Representation` holds, for every pool item, a vector (`features`, N x D, float32) and
its nearest neighbours in that space (`neighbors`, `weights`: N x k), which label
propagation runs over; `transform` encodes held-out items (a test split) the same way.

What is learned depends on the kind of pool, and none of it needs a download:
- images: single-layer patch features (Coates & Ng 2011): a dictionary of k-means
  centroids of whitened image patches, applied as a convolution, rectified, pooled over
  the image's quadrants, then PCA with soft whitening. Images larger than 32 pixels are
  downscaled first, so the cost per image is bounded whatever the photo size.
- vectors and tables: the features standardised (PCA to 128 dimensions above that).
- texts: the pool's own text features (sentence embeddings when a local model made
  them, else TF-IDF + LSA; see `workbench.data.text`), L2-normalised.

A representation is keyed by a fingerprint of the pool's contents (features, item ids,
texts) and of the method, so a changed pool never gets a stale one. It is kept in memory
and, as a `.npz` of plain arrays (no pickle), in a cache folder (`WORKBENCH_CACHE_DIR`, else
`~/.cache/workbench/representations`), so reopening a notebook reuses it. `RepresentationJob`
builds one in a background thread and reports progress.

Knows nothing of labels.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

VERSION = 2            # bump when any method below changes what it computes
N_NEIGHBORS = 10       # neighbours per item in the graph
MAX_GRAPH_ITEMS = 50_000  # exact neighbour search costs N^2 * D: above this, no graph
MAX_SIDE = 32          # images are downscaled to at most this many pixels a side
Progress = Callable[[float, str], None]


# -- the result ---------------------------------------------------------------------------
@dataclass
class Representation:
    """Features of every pool item (row i = pool position i), its neighbour graph, and the
    fitted encoder that maps new items of the same kind into the same space."""

    features: np.ndarray              # (N, D) float32
    neighbors: np.ndarray | None      # (N, k) int32 pool positions, nearest first; None: no graph
    weights: np.ndarray | None        # (N, k) float32 similarities in (0, 1]
    encoder: Encoder
    fingerprint: str
    method: str
    build_seconds: float = 0.0
    from_cache: bool = False

    def __len__(self) -> int:
        return len(self.features)

    @property
    def has_graph(self) -> bool:
        return self.neighbors is not None

    def transform(self, X) -> np.ndarray:
        """Features of new items given in the pool's own feature space (e.g. a test split)."""
        return self.encoder.transform(np.asarray(X, dtype=np.float32))

    def save(self, path: Path) -> None:
        arrays = {f"encoder__{k}": v for k, v in self.encoder.arrays().items()}
        arrays.update(features=self.features, fingerprint=np.array(self.fingerprint),
                      method=np.array(self.method), build_seconds=np.array(self.build_seconds))
        if self.neighbors is not None:
            arrays.update(neighbors=self.neighbors, weights=self.weights)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a reader sees the whole file or none (two notebooks may race).
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> Representation:
        with np.load(path, allow_pickle=False) as data:
            method = str(data["method"])
            encoder = ENCODERS[method].from_arrays(
                {k[len("encoder__"):]: data[k] for k in data.files if k.startswith("encoder__")})
            has_graph = "neighbors" in data.files
            return cls(features=data["features"], neighbors=data["neighbors"] if has_graph else None,
                       weights=data["weights"] if has_graph else None, encoder=encoder,
                       fingerprint=str(data["fingerprint"]), method=method,
                       build_seconds=float(data["build_seconds"]), from_cache=True)


# -- encoders: fit on the pool, transform any items of the same kind ------------------------
class Encoder:
    """Maps items in the pool's feature space to representation vectors; saved as arrays."""

    name = "encoder"

    def fit_transform(self, X: np.ndarray, progress: Progress) -> np.ndarray:
        raise NotImplementedError

    def transform(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in vars(self).items()}

    @classmethod
    def from_arrays(cls, arrays: dict) -> Encoder:
        encoder = cls.__new__(cls)
        for k, v in arrays.items():
            setattr(encoder, k, v if v.ndim else v.item())
        return encoder


class _Projection:
    """Standardise, then PCA with soft whitening: component i is scaled by
    1/sqrt(var_i + mean var), so the strong directions (brightness, stroke width) no longer
    dominate distances, while the weakest, mostly noise, are not blown up either (full
    whitening made neighbours worse on small pools)."""

    @staticmethod
    def fit(Z: np.ndarray, dims: int, *, whiten: bool, seed: int) -> dict:
        from sklearn.decomposition import PCA

        mean = Z.mean(axis=0)
        scale = Z.std(axis=0) + 1e-6
        Zs = (Z - mean) / scale
        k = min(dims, Zs.shape[1], max(1, len(Zs) - 1))
        if k >= Zs.shape[1] and not whiten:
            components = np.eye(Zs.shape[1], dtype=np.float32)
            variance = Zs.var(axis=0)
        else:
            pca = PCA(k, random_state=seed).fit(Zs)
            components, variance = pca.components_, pca.explained_variance_
        gain = 1 / np.sqrt(variance + variance.mean()) if whiten else np.ones(len(components))
        return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
                "components": np.ascontiguousarray(components.T * gain, dtype=np.float32)}

    @staticmethod
    def apply(p: dict, Z: np.ndarray) -> np.ndarray:
        return ((Z - p["mean"]) / p["scale"]) @ p["components"]


class PatchEncoder(Encoder):
    """Single-layer patch features for images (Coates & Ng 2011), then soft-whitened PCA.

    Per image (after downscaling to <= 32 px a side): every p x p patch is brightness- and
    contrast-normalised, whitened, and compared with K dictionary atoms (k-means centroids of
    such patches from the pool), one convolution; the responses are soft-thresholded into
    positive and negative parts and averaged over the image's four quadrants (4 * 2K values),
    then projected to 128 dimensions. At 28 x 28 with p = 6 and K = 256 that is about
    5 M multiply-adds per image; the dictionary is learned from <= 50,000 patches.
    """

    name = "patches"

    def __init__(self, n_atoms: int = 256, dims: int = 128, seed: int = 0, device: str = "auto"):
        self.n_atoms, self.dims, self.seed, self.device = n_atoms, dims, seed, device

    def fit_transform(self, X, progress):
        import torch
        import torch.nn.functional as F
        from sklearn.cluster import MiniBatchKMeans

        rng = np.random.default_rng(self.seed)
        x = self._prepare(X)
        c, h, w = x.shape[1:]
        self.patch = int(np.clip(round(min(h, w) / 5), 3, 6))
        progress(0.02, "sampling image patches")
        sample = x[torch.from_numpy(rng.choice(len(x), min(len(x), 2000), replace=False))]
        cols = F.unfold(sample, self.patch)  # (n, c*p*p, positions)
        patches = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        keep = rng.choice(len(patches), min(len(patches), 50_000), replace=False)
        patches = self._normalise(patches[torch.from_numpy(keep)]).double()
        mean = patches.mean(0)
        eigval, eigvec = torch.linalg.eigh(torch.cov((patches - mean).T))
        zca = eigvec @ torch.diag(1 / torch.sqrt(eigval.clamp_min(0) + 0.1)) @ eigvec.T
        progress(0.06, f"learning {self.n_atoms} patch atoms (k-means)")
        white = ((patches - mean) @ zca).float().numpy()
        atoms = MiniBatchKMeans(min(self.n_atoms, len(white)), n_init=1, batch_size=4096,
                                max_iter=30, random_state=self.seed).fit(white).cluster_centers_
        atoms = torch.from_numpy(atoms).double()
        atoms = atoms / (atoms.norm(dim=1, keepdim=True) + 1e-12)
        # whiten-then-project, folded into one filter bank and a bias per atom
        # contiguous, as they are when read back from a cache or a bundle: a strided filter
        # bank takes another convolution path, whose sums differ in the last bits
        self.filters = np.ascontiguousarray(
            (zca @ atoms.T).T.reshape(len(atoms), c, self.patch, self.patch).float().numpy())
        self.bias = np.ascontiguousarray((mean @ zca @ atoms.T).float().numpy())
        pooled = self._encode(x, lambda f: progress(0.15 + 0.7 * f, f"encoding {len(x)} images"))
        progress(0.86, "projecting (PCA)")
        self.projection = _Projection.fit(pooled, self.dims, whiten=True, seed=self.seed)
        return self._finish(pooled)

    def transform(self, X):
        return self._finish(self._encode(self._prepare(X), lambda f: None))

    def _finish(self, pooled):
        return _unit(_Projection.apply(self.projection, pooled))

    def _prepare(self, X):
        """Images as a float tensor N x C x H x W, downscaled to <= MAX_SIDE a side."""
        import torch
        import torch.nn.functional as F

        X = np.asarray(X, dtype=np.float32)
        X = X[:, None] if X.ndim == 3 else X.transpose(0, 3, 1, 2)
        x = torch.from_numpy(np.ascontiguousarray(X))
        h, w = x.shape[2:]
        if max(h, w) > MAX_SIDE:
            f = MAX_SIDE / max(h, w)
            x = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="area")
        return x

    def _normalise(self, patches):
        import torch

        mean = patches.mean(1, keepdim=True)
        return (patches - mean) / torch.sqrt(patches.var(1, keepdim=True) + 0.01)

    def _encode(self, x, progress, batch: int | None = None):
        import torch
        import torch.nn.functional as F

        device = _device(self.device)
        p = self.patch
        n_values = x.shape[1] * p * p
        filters = torch.from_numpy(self.filters).to(device)
        # conv(x, f) - (patch mean) * sum(f) is conv(x, f - mean(f)): one convolution
        # normalises every patch's brightness, no second map to subtract
        centred = filters - filters.mean((1, 2, 3), keepdim=True)
        bias = torch.from_numpy(self.bias).to(device)[None, :, None, None]
        # The response maps (batch x atoms x positions) are the big tensors, and the passes
        # over them are most of the time: a batch whose maps fit in the CPU's cache (about
        # 8 MB) runs 4x faster than one of 256 28 x 28 images (140 MB).
        positions = (x.shape[2] - p + 1) * (x.shape[3] - p + 1)
        batch = batch or max(1, (2 << 20) // max(1, len(filters) * positions))
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                xb = x[start:start + batch].to(device)
                # each patch's mean and standard deviation, as pooled maps
                mean = F.avg_pool2d(xb, p, stride=1).mean(1, keepdim=True)
                square = F.avg_pool2d(xb * xb, p, stride=1).mean(1, keepdim=True)
                std = torch.sqrt((square - mean * mean).clamp_min(0) * n_values / (n_values - 1) + 0.01)
                z = F.conv2d(xb, centred).div_(std).sub_(bias)
                # relu(z - a) and relu(-z - a), pooled, without materialising both:
                # their difference is softshrink(z), their sum |softshrink(z)|
                shrunk = F.softshrink(z, 0.25)
                shrink = F.adaptive_avg_pool2d(shrunk, 2)
                magnitude = F.adaptive_avg_pool2d(shrunk.abs_(), 2)
                out.append(torch.cat([magnitude + shrink, magnitude - shrink], 1).flatten(1).cpu() / 2)
                progress(min(1.0, (start + batch) / len(x)))
        return torch.cat(out).numpy() if out else np.empty((0, 8 * len(self.filters)), np.float32)

    def arrays(self):
        return {"patch": np.asarray(self.patch), "filters": self.filters, "bias": self.bias,
                "device": np.asarray("auto"),
                **{f"projection__{k}": v for k, v in self.projection.items()}}

    @classmethod
    def from_arrays(cls, arrays):
        encoder = cls.__new__(cls)
        encoder.patch = int(arrays["patch"])
        encoder.filters, encoder.bias = arrays["filters"], arrays["bias"]
        encoder.device = "auto"
        encoder.projection = {k[len("projection__"):]: v for k, v in arrays.items()
                              if k.startswith("projection__")}
        return encoder


class VectorEncoder(Encoder):
    """Vectors and table rows: standardised (columns come in different units), and reduced
    by PCA to `dims` when there are more."""

    name = "standardised"

    def __init__(self, dims: int = 128, seed: int = 0):
        self.dims, self.seed = dims, seed

    def fit_transform(self, X, progress):
        progress(0.05, "standardising features")
        flat = X.reshape(len(X), -1)
        if flat.shape[1] > self.dims:
            self.projection = _Projection.fit(flat, self.dims, whiten=False, seed=self.seed)
        else:
            mean, scale = flat.mean(axis=0), flat.std(axis=0) + 1e-6
            self.projection = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
                               "components": np.empty((0, 0), np.float32)}
        return self.transform(X)

    def transform(self, X):
        flat = X.reshape(len(X), -1)
        p = self.projection
        if p["components"].size:
            return _Projection.apply(p, flat).astype(np.float32)
        return ((flat - p["mean"]) / p["scale"]).astype(np.float32)

    def arrays(self):
        return {f"projection__{k}": v for k, v in self.projection.items()}

    @classmethod
    def from_arrays(cls, arrays):
        encoder = cls.__new__(cls)
        encoder.projection = {k[len("projection__"):]: v for k, v in arrays.items()}
        return encoder


class UnitEncoder(Encoder):
    """Text features (embeddings or LSA) compare by angle: L2-normalised, nothing learned."""

    name = "normalised"

    def fit_transform(self, X, progress):
        return self.transform(X)

    def transform(self, X):
        return _unit(X.reshape(len(X), -1))

    def arrays(self):
        return {}


ENCODERS: dict[str, type[Encoder]] = {e.name: e for e in (PatchEncoder, VectorEncoder, UnitEncoder)}


def encoder_for(pool, *, seed: int = 0) -> Encoder:
    if pool.kind == "image" and pool.X.ndim >= 3:
        return PatchEncoder(seed=seed)
    if pool.kind == "text":
        return UnitEncoder()
    return VectorEncoder(seed=seed)


# -- building ------------------------------------------------------------------------------
def method_of(encoder: Encoder | None, pool=None) -> str:
    """What a representation is keyed by: the method a pool would learn, or a given fitted
    encoder's name and a digest of its arrays."""
    if encoder is None:
        return encoder_for(pool).name
    h = hashlib.blake2b(digest_size=12)
    for key, value in sorted(encoder.arrays().items()):
        h.update(key.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return f"{encoder.name}:given:{h.hexdigest()}"


def fingerprint(pool, method: str, seed: int = 0) -> str:
    """A digest of everything the representation is computed from: the features (values,
    shape, type), the item ids and their order, the texts of a text pool, and the method and
    its version. Hashing 10,000 28 x 28 images takes about 30 ms."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"v{VERSION}|{method}|seed{seed}|{pool.kind}|{pool.X.shape}|{pool.X.dtype}|"
             f"k{N_NEIGHBORS}".encode())
    h.update(np.ascontiguousarray(pool.X).data)
    h.update("\x1f".join(pool.item_ids).encode())
    if pool.kind == "text" and "text" in pool.items:
        h.update("\x1f".join(pool.items["text"].astype(str)).encode())
    return h.hexdigest()


def build(pool, *, progress: Progress | None = None, seed: int = 0,
          max_graph_items: int = MAX_GRAPH_ITEMS, encoder: Encoder | None = None) -> Representation:
    """Learn the representation of `pool` now (seconds; see the module notes), or, given a
    fitted `encoder` (a model bundle's), encode the pool with it: a session that starts
    from a bundle then trains in the very space the bundle's model reads."""
    progress = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    if encoder is None:
        encoder = encoder_for(pool, seed=seed)
        key = fingerprint(pool, encoder.name, seed)
        features = encoder.fit_transform(pool.X, progress)
    else:
        key = fingerprint(pool, method_of(encoder), seed)
        progress(0.05, f"encoding {len(pool)} items with the bundle's {encoder.name} encoder")
        features = encoder.transform(pool.X)
    features = np.ascontiguousarray(features, dtype=np.float32)
    neighbors = weights = None
    if 2 <= len(features) <= max_graph_items:
        progress(0.9, f"finding each item's {N_NEIGHBORS} nearest neighbours")
        neighbors, weights = nearest_neighbors(features)
    progress(1.0, "ready")
    return Representation(features, neighbors, weights, encoder, key, encoder.name,
                          build_seconds=round(time.perf_counter() - started, 3))


def nearest_neighbors(features: np.ndarray, k: int = N_NEIGHBORS) -> tuple[np.ndarray, np.ndarray]:
    """Each item's k nearest other items (exact, Euclidean) and a Gaussian similarity whose
    width is the median distance to the k-th neighbour."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k, len(features) - 1)
    distances, index = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features)
    distances, index = _drop_self(distances, index)
    width = float(np.median(distances[:, -1])) or 1.0
    return index.astype(np.int32), np.exp(-(distances / width) ** 2).astype(np.float32)


def _drop_self(distances, index):
    """Remove each row's own position (usually first; duplicates may put it later)."""
    rows = np.arange(len(index))[:, None]
    is_self = index == rows
    no_self = ~is_self.any(axis=1)
    is_self[no_self, -1] = True  # drop the farthest where the item itself was not returned
    keep = ~is_self
    k = index.shape[1] - 1
    return distances[keep].reshape(-1, k), index[keep].reshape(-1, k)


# -- caching --------------------------------------------------------------------------------
def default_cache_dir() -> Path:
    root = os.environ.get("WORKBENCH_CACHE_DIR")
    if root:
        return Path(root).expanduser() / "representations"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "workbench" / "representations"


class RepresentationCache:
    """Representations by fingerprint: the last few in memory, all on disk (`folder`;
    None keeps them in memory only)."""

    def __init__(self, folder: str | Path | None = None, *, in_memory: int = 4):
        self.folder = None if folder is None else Path(folder)
        self._memory: OrderedDict[str, Representation] = OrderedDict()
        self._in_memory = in_memory
        self._lock = threading.Lock()

    def get(self, key: str) -> Representation | None:
        with self._lock:
            if key in self._memory:
                self._memory.move_to_end(key)
                return self._memory[key]
        path = self._path(key)
        if path is None or not path.exists():
            return None
        try:
            rep = Representation.load(path)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            # a truncated or foreign file: rebuild
            log.warning("ignoring unreadable cached representation %s (%s)", path, e)
            return None
        if rep.fingerprint != key:
            return None
        self._remember(rep)
        return rep

    def put(self, rep: Representation) -> None:
        self._remember(rep)
        path = self._path(rep.fingerprint)
        if path is not None:
            try:
                rep.save(path)
            except OSError as e:  # a read-only home (some hosted notebooks): memory only
                log.warning("could not cache the representation in %s (%s)", path, e)

    def _remember(self, rep):
        with self._lock:
            self._memory[rep.fingerprint] = rep
            self._memory.move_to_end(rep.fingerprint)
            while len(self._memory) > self._in_memory:
                self._memory.popitem(last=False)

    def _path(self, key: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{key}.npz"


_CACHES: dict[str, RepresentationCache] = {}


def cache_at(folder: str | Path | None | bool = None) -> RepresentationCache:
    """The process-wide cache for a folder (None: the default folder; False: memory only)."""
    key = "" if folder is False else str(default_cache_dir() if folder is None else Path(folder))
    if key not in _CACHES:
        _CACHES[key] = RepresentationCache(None if folder is False else key)
    return _CACHES[key]


# -- in the background -----------------------------------------------------------------------
@dataclass
class RepresentationJob:
    """A representation being fetched from the cache or learned in a background thread.

    `result()` waits for it; `state()` says how far it is ({"status": "building" | "ready" |
    "failed", "progress": 0..1, "message": ...}); `on_progress` is called from the worker
    thread (throttled to about 10 times a second) and once when it ends. A pool already being
    learned in this process (a notebook cell run again) joins that job instead of a second
    build."""

    pool: object
    cache: RepresentationCache
    on_progress: Callable[[dict], None] | None = None
    _future: Future = field(default_factory=Future)
    _state: dict = field(default_factory=lambda: {"status": "building", "progress": 0.0,
                                                 "message": "starting"})
    _last_report: float = 0.0
    _listeners: list = field(default_factory=list)

    encoder: Encoder | None = None

    @classmethod
    def start(cls, pool, *, cache: RepresentationCache | None = None, on_progress=None,
              background: bool = True, encoder: Encoder | None = None) -> RepresentationJob:
        """Fetch the pool's representation from `cache`, else learn it (in a thread when
        `background`), or encode the pool with a given fitted `encoder`. A representation
        is a property of the pool: always seed 0."""
        cache = cache or cache_at(None)
        key = fingerprint(pool, method_of(encoder, pool))
        with _BUILDING_LOCK:
            running = _BUILDING.get((id(cache), key))
            if running is not None:
                if on_progress is not None:
                    running._listeners.append(on_progress)
                return running
            job = cls(pool, cache, on_progress, encoder=encoder)
            cached = cache.get(key)
            if cached is None:
                _BUILDING[(id(cache), key)] = job
        if cached is not None:
            job._done(cached)
        elif background:
            threading.Thread(target=job._run, args=(key,), name="workbench-representation",
                             daemon=True).start()
        else:
            job._run(key)
        return job

    def result(self, timeout: float | None = None) -> Representation:
        return self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    def state(self) -> dict:
        return dict(self._state)

    def _run(self, key: str) -> None:
        try:
            rep = build(self.pool, progress=self._report, encoder=self.encoder)
            self.cache.put(rep)
        except BaseException as e:  # reported through state() and result(); the thread ends
            self._state = {"status": "failed", "progress": self._state["progress"],
                           "message": f"{type(e).__name__}: {e}"}
            with _BUILDING_LOCK:
                _BUILDING.pop((id(self.cache), key), None)
            self._future.set_exception(e)
            self._notify()
            return
        with _BUILDING_LOCK:
            _BUILDING.pop((id(self.cache), key), None)
        self._done(rep)

    def _done(self, rep: Representation) -> None:
        how = "from the cache" if rep.from_cache else f"learned in {rep.build_seconds:.1f} s"
        self._state = {"status": "ready", "progress": 1.0, "message": how}
        self._future.set_result(rep)
        self._notify()

    def _report(self, fraction: float, message: str) -> None:
        self._state = {"status": "building", "progress": round(float(fraction), 3), "message": message}
        now = time.monotonic()
        if now - self._last_report >= 0.1:
            self._last_report = now
            self._notify()

    def _notify(self) -> None:
        for listener in [self.on_progress, *self._listeners]:
            if listener is None:
                continue
            try:
                listener(self.state())
            except Exception:  # a listener's error must not stop the build
                log.exception("representation progress listener failed")


_BUILDING: dict[tuple[int, str], RepresentationJob] = {}  # (cache, fingerprint) -> running job
_BUILDING_LOCK = threading.Lock()


def _unit(Z: np.ndarray) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float32)
    return Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-12)


def _device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
