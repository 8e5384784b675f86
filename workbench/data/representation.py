"""The pool's representation: features learned once from all of a pool's items, so that a
training round only fits a light head on them (see `workbench.learn.head`).

Labels are expensive and the unlabeled pool is free. Learning what the items look like
from all of them costs seconds, once per pool; after that a round costs milliseconds. A
`Representation` holds, for every pool item, a vector (`features`, N x D, float32) and
its nearest neighbours in that space (`neighbors`, `weights`: N x k), which label
propagation runs over; `transform` encodes held-out items (a test split) the same way.

What is learned depends on the kind of pool, and none of it needs a download (see
`workbench.data.encoders`): patch features for images, standardised features for vectors
and tables, and for texts the pool's own text features (sentence embeddings when a local
model made them, else TF-IDF + LSA; see `workbench.data.text`), L2-normalised.

A representation is keyed by a fingerprint of the pool's contents (features, item ids,
texts) and of the method, so a changed pool never gets a stale one. It is kept in memory
and, as a `.npz` of plain arrays (no pickle), in a cache folder (`WORKBENCH_CACHE_DIR`, else
`~/.cache/workbench/representations`), so reopening a notebook reuses it. `RepresentationJob`
builds one in a background thread and reports progress.

Knows nothing of labels.

Where each part lives: `encoders.py` (what items are turned into), `neighbors.py` (the
graph), `feature_space.py` (`Representation`, as arrays), `representation_cache.py` (memory
and files). This module keys, builds and fetches them, in the background.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# `name as name`: a name re-exported, importable from here as before the parts had modules
from workbench.data.encoders import ENCODERS as ENCODERS
from workbench.data.encoders import MAX_SIDE as MAX_SIDE
from workbench.data.encoders import Encoder, Progress, encoder_for
from workbench.data.encoders import PatchEncoder as PatchEncoder
from workbench.data.encoders import UnitEncoder as UnitEncoder
from workbench.data.encoders import VectorEncoder as VectorEncoder
from workbench.data.feature_space import Representation
from workbench.data.memory import available_bytes, release_freed_memory
from workbench.data.neighbors import nearest_neighbors, neighbours_for
from workbench.data.pool_encoding import FIT_SAMPLE as FIT_SAMPLE
from workbench.data.pool_encoding import encode_pool, encode_pretrained
from workbench.data.representation_cache import RepresentationCache, default_cache_dir

log = logging.getLogger(__name__)

VERSION = 2            # bump when an encoder, the graph or a method here changes what it computes
# a cache file up to this size is read as a session opens (a pool of 50,000 images: about
# 40 MB); a larger one by the job, in the background (1 GB at 1,000,000 items: 2.7 s)
READ_AT_ONCE_BYTES = 256 * 2**20
# the process's growth while a graph and its spreading matrix are built, per edge (item x
# neighbour): 70 bytes measured over a session at 1,000,000 items x 30 (benchmarks/at_scale.py,
# 2.6 GB at the peak with the features' 0.5 GB); the graph alone 50.5 at 1,000,000 and 56.2 at
# 3,000,000 (benchmarks/graph_memory.py); 10,000,000 x 30 would need 24 GB
GRAPH_BYTES_PER_EDGE = 80


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
    its version. Hashing 10,000 28 x 28 images takes about 30 ms. Features left on disk (a
    Parquet dataset's, `PartitionedFeatures`) give their own `content_digest()`, from the
    files' footers, so keying a pool of millions reads none of its features."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"v{VERSION}|{method}|seed{seed}|{pool.kind}|{pool.X.shape}|{pool.X.dtype}|"
             f"k{neighbours_for(len(pool))}".encode())
    digest = getattr(pool.X, "content_digest", None)
    h.update(digest().encode() if digest is not None else np.ascontiguousarray(pool.X).data)
    # joined from an object array: iterating pandas' Arrow-backed text yields one Python
    # object at a time (5 s for 2,000,000 ids), the same bytes
    h.update("\x1f".join(pool.item_ids.to_numpy(dtype=object)).encode())
    if pool.kind == "text" and "text" in pool.items:
        h.update("\x1f".join(pool.items["text"].astype(str)).encode())
    return h.hexdigest()


def build(pool, *, progress: Progress | None = None, seed: int = 0,
          max_graph_items: int | None = None, encoder: Encoder | None = None,
          cluster=None) -> Representation:
    """Learn the representation of `pool` now (seconds; see the module notes), or, given a
    fitted `encoder` (a model bundle's), encode the pool with it: a session that starts
    from a bundle then trains in the very space the bundle's model reads.

    The encoder is fitted on a sample (every item up to FIT_SAMPLE) and each part of the
    pool encoded on its own (`workbench.data.pool_encoding`): in this process, or on a Dask
    cluster when `cluster` is a `dask.distributed.Client` or a scheduler's address, with the
    same features to float noise (1e-6)."""
    progress = progress or (lambda fraction, message: None)
    started = time.perf_counter()
    if encoder is None:
        encoder = encoder_for(pool, seed=seed)
        key = fingerprint(pool, encoder.name, seed)
        features = encode_pool(pool, encoder, fit=True, cluster=cluster, progress=progress, seed=seed)
    else:
        key = fingerprint(pool, method_of(encoder), seed)
        if getattr(encoder, "encode", None) is None:
            progress(0.05, f"encoding {len(pool)} items with the bundle's {encoder.name} encoder")
            features = encode_pool(pool, encoder, fit=False, cluster=cluster, progress=progress)
        else:  # a pretrained encoder: what it reads of the pool (its texts, else X), batched
            progress(0.02, f"encoding {len(pool)} items with {encoder.describe()}")
            features = encode_pretrained(pool, encoder, cluster=cluster,
                                         progress=lambda f, m: progress(0.02 + 0.86 * f, m))
    features = np.ascontiguousarray(features, dtype=np.float32)
    release_freed_memory()  # the parts and batches just freed, before the graph's index
    neighbors = weights = None
    # a graph at any size (exact search up to neighbors.EXACT_MAX_ITEMS, approximate above);
    # `max_graph_items` asks for none above that many items, and none is built that would not
    # fit in memory (the kernel would be killed after the search, minutes or hours in)
    wanted = len(features) >= 2 and (max_graph_items is None or len(features) <= max_graph_items)
    fits = wanted and graph_fits(len(features), progress)
    if fits:
        progress(0.9, f"finding each item's {neighbours_for(len(features))} nearest neighbours")
        neighbors, weights = nearest_neighbors(features, progress=lambda f, m: progress(0.9 + 0.09 * f, m))
        release_freed_memory()
    rep = Representation(features, neighbors, weights, encoder, key, encoder.name)
    if rep.ordered_graph:  # seconds at a million items: here, not in the first round
        progress(0.995, "ordering the graph for label spreading")
        rep.graph_matrix()
        release_freed_memory()
    rep.build_seconds = round(time.perf_counter() - started, 3)
    progress(1.0, "ready, without a neighbour graph: not enough memory free" if wanted and not fits
             else "ready")
    return rep


def graph_fits(n_items: int, progress: Progress | None = None) -> bool:
    """Whether the neighbour graph of `n_items` items, and the matrix label spreading
    multiplies by, fit in the memory left now; if not, says so (a warning, and `progress`)."""
    k = neighbours_for(n_items)
    need, left = n_items * k * GRAPH_BYTES_PER_EDGE, available_bytes()
    if left is None or need <= left:
        return True
    message = (f"no neighbour graph: {n_items:,} items x {k} neighbours need about {need / 2**30:.1f} GB "
               f"while it is built and {left / 2**30:.1f} GB are free, so label spreading is off for "
               "this pool (rounds train the head on labels alone); with more memory free, build the "
               "representation again")
    log.warning(message)
    if progress is not None:
        progress(0.9, message)
    return False


# -- one cache per folder ------------------------------------------------------------------
_CACHES: dict[str, RepresentationCache] = {}


def cache_at(folder: str | Path | None | bool = None) -> RepresentationCache:
    """The process-wide cache for a folder (None: the default folder; False: memory only)."""
    key = "" if folder is False else str(default_cache_dir() if folder is None else Path(folder))
    if key not in _CACHES:
        _CACHES[key] = RepresentationCache(None if folder is False else key)
    return _CACHES[key]


# -- in the background ---------------------------------------------------------------------
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
    cluster: object = None  # a dask.distributed.Client to encode the pool's parts on, or None

    @classmethod
    def start(cls, pool, *, cache: RepresentationCache | None = None, on_progress=None,
              background: bool = True, encoder: Encoder | None = None,
              cluster=None) -> RepresentationJob:
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
            job = cls(pool, cache, on_progress, encoder=encoder, cluster=cluster)
            # a small cache file is read at once, a large one by the job (READ_AT_ONCE_BYTES)
            cached = cache.in_memory(key)
            read_at_once = cached is None and cache.file_size(key) <= READ_AT_ONCE_BYTES
            if read_at_once:
                cached = cache.get(key)
            if cached is None:
                _BUILDING[(id(cache), key)] = job
        if cached is not None:
            job._done(job._with_encoder(cached))
        elif background:  # a file read at once above and found unreadable is not read again
            threading.Thread(target=job._run, args=(key, not read_at_once), name="workbench-representation",
                             daemon=True).start()
        else:
            job._run(key, not read_at_once)
        return job

    def result(self, timeout: float | None = None) -> Representation:
        return self._future.result(timeout)

    def done(self) -> bool:
        return self._future.done()

    def state(self) -> dict:
        return dict(self._state)

    def _with_encoder(self, cached: Representation) -> Representation:
        # a given encoder is the cached one's equal (its digest is in the key)
        return cached if self.encoder is None else cached.with_encoder(self.encoder)

    def _run(self, key: str, read_cache: bool = True) -> None:
        try:
            rep = None
            if read_cache and (size := self.cache.file_size(key)):
                self._report(0.0, "reading the pool's representation from its cache file "
                                  f"({size / 1e6:,.0f} MB)")
                rep = self.cache.get(key)
            if rep is not None:
                rep = self._with_encoder(rep)
            else:
                rep = build(self.pool, progress=self._report, encoder=self.encoder, cluster=self.cluster)
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
        self._state = {"status": "ready", "progress": 1.0, "message": how,
                       "has_graph": rep.has_graph or len(rep) < 2}  # False: built without (graph_fits)
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
