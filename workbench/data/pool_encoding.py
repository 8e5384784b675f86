"""Encoding a whole pool: the encoder fitted on a sample, then every part encoded on its own,
in this process or on a Dask cluster (`workbench.data.jobs.map_parts`), with the same result.

A pool of at most `FIT_SAMPLE` items is fitted on all of them, as it always was: the base
features of every part (an image's pooled patch responses) are computed once, as a job, and
the top (the PCA) is fitted on them all and applied here. A larger pool is fitted on a seeded
sample of `FIT_SAMPLE` items (read as `pool.X[positions]`), and then every part is encoded,
as a job: 50,000 items pin the dictionary and the PCA down as well as a million would, and
the cost of fitting no longer grows with the pool.

A pretrained encoder (`workbench.data.pretrained`) is fitted already: `encode_pretrained`
maps it over the parts, each worker loading a spec's model ("timm:resnet18") once, from its
own machine's cache (the weights never travel; a worker without them fails with the message
that says how to fetch them), while a torch module or function given as an object travels
with the job.
"""

from __future__ import annotations

import functools

import numpy as np

from workbench.data.encoders import Encoder, Progress
from workbench.data.jobs import connected, map_parts, on_rows
from workbench.data.parts import ROWS_PER_PART, ItemsPart, array_parts_of

__all__ = ["FIT_SAMPLE", "encode_pool", "encode_pretrained", "fit_positions"]

FIT_SAMPLE = 50_000     # items an encoder is fitted on: all of a pool up to this size
ROWS_IN_PROCESS = 8192  # rows per part in this process: progress every second or two of 28 x 28s
PARTS_PER_THREAD = 4    # on a cluster: parts enough that no worker idles while the last one runs
MIN_ROWS = 512          # a part smaller than this costs more to send than to encode


def fit_positions(n: int, fit_sample: int = FIT_SAMPLE, seed: int = 0) -> np.ndarray | None:
    """The (sorted) pool positions an encoder is fitted on; None: all of them."""
    if n <= fit_sample:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, fit_sample, replace=False))


def rows_per_part(n: int, client) -> int:
    """In this process: ROWS_IN_PROCESS; on a cluster: about PARTS_PER_THREAD parts per
    worker thread, between MIN_ROWS and ROWS_PER_PART rows each."""
    if client is None:
        return ROWS_IN_PROCESS
    threads = max(1, sum(client.nthreads().values()))
    return int(min(ROWS_PER_PART, max(MIN_ROWS, -(-n // (threads * PARTS_PER_THREAD)))))


def encode_pool(pool, encoder: Encoder, *, fit: bool, cluster=None, progress: Progress | None = None,
                seed: int = 0, fit_sample: int = FIT_SAMPLE) -> np.ndarray:
    """The features of every pool item (N x D float32), row i for pool position i; `fit`:
    fit `encoder` first (on a sample, see the module notes), else it is fitted already.
    `cluster`: None (this process) or anything `workbench.data.jobs.connect` takes."""
    progress = progress or (lambda fraction, message: None)
    with connected(cluster) as client:  # one connection for the job's steps, closed if made here
        return _encode_pool(pool, encoder, fit, client, progress, seed, fit_sample)


def _encode_pool(pool, encoder, fit, client, progress, seed, fit_sample) -> np.ndarray:
    n = len(pool)
    rows = rows_per_part(n, client)
    parts = pool.parts(rows)
    if not fit:
        return _stack(map_parts(on_rows(encoder.transform), parts, cluster=client,
                                progress=_scaled(progress, 0.05, 0.9), what=f"encoding {n} items"))
    positions = fit_positions(n, fit_sample, seed)
    sample = pool.X if positions is None else np.asarray(pool.X[positions])
    encoder.fit_base(sample, progress)
    fit_parts = parts if positions is None else array_parts_of(sample, rows)
    what = f"encoding {len(sample)} items" + ("" if positions is None else " (the fit sample)")
    base = _stack(map_parts(on_rows(encoder.encode_base), fit_parts, cluster=client, what=what,
                            progress=_scaled(progress, 0.15, 0.85 if positions is None else 0.4)))
    encoder.fit_top(base, progress)
    if positions is None:  # every item's base features are here: only the top is left to apply
        return np.ascontiguousarray(encoder.encode_top(base), dtype=np.float32)
    del base
    return _stack(map_parts(on_rows(encoder.transform), parts, cluster=client,
                            progress=_scaled(progress, 0.45, 0.9), what=f"encoding {n} items"))


def encode_pretrained(pool, encoder, *, cluster=None, progress: Progress | None = None) -> np.ndarray:
    """A pretrained encoder's vectors of every pool item (its texts, or its X): in this
    process, or part by part on a Dask cluster (see the module notes), the same either way."""
    progress = progress or (lambda fraction, message: None)
    inputs = getattr(encoder, "inputs_of", lambda pool: pool.X)(pool)
    if cluster is None:
        return encoder.encode(inputs, progress)
    with connected(cluster) as client:
        return _encode_pretrained_on(client, pool, encoder, inputs, progress)


def _encode_pretrained_on(client, pool, encoder, inputs, progress) -> np.ndarray:
    n, rows = len(pool), rows_per_part(len(pool), client)
    if isinstance(inputs, list):  # texts: they travel with their part
        parts = [ItemsPart(s, min(s + rows, n), inputs[s:s + rows]) for s in range(0, n, rows)]
    else:  # images or rows: each part reads its own (a Parquet dataset's, from its file)
        parts = pool.parts(rows)
    # pickled, a spec's encoder leaves its model behind (PretrainedEncoder.__getstate__)
    fn = functools.partial(_encode_part, encoder)
    features = _stack(map_parts(fn, parts, cluster=client, progress=progress,
                                what=f"encoding {n} items with {encoder.spec}"))
    encoder.dims = features.shape[1] if features.ndim == 2 else encoder.dims
    return features


_LOADED: dict = {}  # on a worker: the spec encoders it has loaded, by (spec, digest)


def _encode_part(encoder, part) -> np.ndarray:
    """One part's vectors, on a worker; a spec's model is loaded from this machine's cache
    once per worker, not once per part."""
    if not encoder.spec.startswith(("module:", "callable:")):
        # keyed by every setting, not the spec alone: two encoders of one model may prepare
        # images differently (size, mean, std, channels) or run elsewhere (device)
        settings = encoder.arrays()
        key = (encoder.device, *(np.asarray(settings[k]).tobytes() for k in sorted(settings)))
        encoder = _LOADED.setdefault(key, encoder)
    return encoder.encode(part.read())


def _stack(results: list) -> np.ndarray:
    return np.ascontiguousarray(np.concatenate(results), dtype=np.float32)


def _scaled(progress: Progress, low: float, high: float):
    return lambda fraction, message: progress(low + (high - low) * fraction, message)
