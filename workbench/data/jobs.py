"""Jobs over a whole pool: one function mapped over the pool's parts, in this process or on a
Dask cluster, with the same results.

    results = map_parts(on_rows(encoder.transform), pool.parts(), cluster=client)

`cluster=None` runs the parts here, one after the other. A `dask.distributed.Client` (or a
scheduler's address, or `WORKBENCH_DASK_SCHEDULER` when a session is given none; see
`connect`) runs them as futures, `client.map(fn, parts)`: the function and each part are
pickled to the workers, where a part reads its own rows (a Parquet part opens its own file),
and the results come back in part order. Dask is imported only here, and only when a cluster
is used, so `import workbench` does not pay for it. `cluster="ray"` or "ray://host:port" runs
the same parts as Ray tasks instead (`workbench.data.ray_jobs`).

Faults. A worker that dies mid-job (killed, out of memory) loses its running parts; the
scheduler runs them again on the workers left (up to `distributed.scheduler.allowed-failures`
deaths per part, 3 by default), and a LocalCluster's nanny restarts the dead process. When a
part still cannot finish (it killed every worker it ran on, or no worker is left for
`NO_WORKERS_S` seconds, or the scheduler is gone), `ClusterJobFailed` names the job, the
part and what to do; an error raised by the function itself (bad rows in a file) comes back
as itself, exactly as in this process. A scheduler that cannot be reached raises
`ClusterUnreachable` naming its address, unless the user asked for `fallback="in-process"`
(or `WORKBENCH_DASK_FALLBACK=in-process`): then a `ClusterFallbackWarning` says the jobs run
here instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import time
import uuid
import warnings
from collections.abc import Callable, Sequence

from workbench.data.cluster_errors import ClusterFallbackWarning, ClusterJobFailed, ClusterUnreachable
from workbench.data.ray_connection import is_ray_address, normalised, unreachable_help

__all__ = ["ClusterFallbackWarning", "ClusterJobFailed", "ClusterUnreachable", "FALLBACK_ENV",
           "IN_PROCESS", "SCHEDULER_ENV", "connect", "connected", "describe", "map_parts", "on_rows"]

SCHEDULER_ENV = "WORKBENCH_DASK_SCHEDULER"   # a scheduler's address, used when no cluster is given
FALLBACK_ENV = "WORKBENCH_DASK_FALLBACK"     # "in-process": work here when it cannot be reached
IN_PROCESS = "in-process"
NO_WORKERS_S = 30.0  # a job waits this long for a worker when the cluster has none, then fails

JobProgress = Callable[[float, str], None]


# -- which cluster -------------------------------------------------------------------------
def connect(cluster=None, *, fallback: str | None = None):
    """The `dask.distributed.Client` that jobs run on, or None for this process.

    `cluster`: a Client (used as is), a cluster object (a `LocalCluster`: connected to), a
    scheduler's address ("tcp://host:8786"), False (this process, whatever the environment
    says), or None: the address in `WORKBENCH_DASK_SCHEDULER`, else this process. "ray" or
    "ray://host:port" gives a `RayCluster` instead (`workbench.data.ray_jobs`).
    `fallback="in-process"` (or `WORKBENCH_DASK_FALLBACK=in-process`): a scheduler that cannot
    be reached gives a `ClusterFallbackWarning` and None instead of `ClusterUnreachable`.
    How long to try is Dask's `distributed.comm.timeouts.connect` (30 s by default)."""
    fallback = fallback if fallback is not None else (os.environ.get(FALLBACK_ENV) or None)
    if fallback not in (None, IN_PROCESS):
        raise ValueError(f"fallback must be None or {IN_PROCESS!r} (here or in {FALLBACK_ENV}), "
                         f"got {fallback!r}")
    if cluster is False:
        return None
    if cluster is None:
        cluster = os.environ.get(SCHEDULER_ENV, "").strip() or None
        if cluster is None:
            return None
    if getattr(cluster, "kind", None) == "ray":
        return cluster
    if is_ray_address(cluster):
        from workbench.data.ray_jobs import RayCluster

        try:
            return RayCluster(cluster)
        except ConnectionError as e:
            return _unreachable(normalised(cluster), str(e), fallback)
    if _is_client(cluster):
        if cluster.status in ("running", "connecting"):
            return cluster
        return _unreachable(str(getattr(cluster.scheduler, "address", cluster)),
                            f"the client is {cluster.status}", fallback)
    address = getattr(cluster, "scheduler_address", cluster)  # a LocalCluster, SLURMCluster...
    if not isinstance(address, str):
        raise TypeError(f"cluster must be a dask.distributed.Client, a cluster object, a "
                        f"scheduler address or None, got {type(cluster).__name__}")
    from distributed import Client

    try:
        return Client(address, set_as_default=False)
    except (OSError, TimeoutError) as e:
        return _unreachable(address, f"{type(e).__name__}: {e}", fallback)


def _is_client(obj) -> bool:
    return type(obj).__name__ == "Client" and hasattr(obj, "map") and hasattr(obj, "submit")


def _unreachable(address: str, why: str, fallback):
    what = "Ray cluster" if is_ray_address(address) else "Dask scheduler"
    if fallback == IN_PROCESS:
        warnings.warn(f"the {what} at {address} cannot be reached ({why}); working in "
                      f"this process instead, as asked (fallback={IN_PROCESS!r})",
                      ClusterFallbackWarning, stacklevel=3)
        return None
    if is_ray_address(address):
        raise ClusterUnreachable(f"cannot reach the Ray cluster at {address} ({why}). "
                                 f"{unreachable_help(address)}, or pass fallback={IN_PROCESS!r} to "
                                 "work in this process when it is down")
    raise ClusterUnreachable(
        f"cannot reach the Dask scheduler at {address} ({why}). Start it (`dask scheduler`, "
        f"then `dask worker {address}` on each machine), fix the address (cluster=... or "
        f"{SCHEDULER_ENV}), or pass fallback={IN_PROCESS!r} (or set {FALLBACK_ENV}={IN_PROCESS}) "
        "to work in this process when it is down")


def describe(client) -> str:
    """Where jobs run, in words: "this process" or "the Dask cluster at tcp://..."."""
    if client is None:
        return "this process"
    if getattr(client, "kind", None) == "ray":
        return client.describe()
    return f"the Dask cluster at {client.scheduler.address}"


# -- mapping -------------------------------------------------------------------------------
def on_rows(fn: Callable) -> Callable:
    """A function of a part that applies `fn` to the part's rows (`part.read()`), where the
    part is: picklable whenever `fn` is (a bound method of a fitted encoder is)."""
    return functools.partial(_apply_to_rows, fn)


def _apply_to_rows(fn, part):
    return fn(part.read())


def map_parts(fn: Callable, parts: Sequence, *, cluster=None, progress: JobProgress | None = None,
              what: str = "job") -> list:
    """`[fn(part) for part in parts]`, in this process (`cluster=None`) or on a Dask or Ray
    cluster (a Client, or anything `connect` takes), in part order either way;
    `progress(fraction, message)` as parts finish; `what` names the job in messages and in
    the dashboard. A connection made here from an address is closed when the job ends."""
    parts = list(parts)
    progress = progress or (lambda fraction, message: None)
    with connected(cluster) as client:
        if client is None:
            results = []
            for i, part in enumerate(parts):
                results.append(fn(part))
                progress((i + 1) / len(parts), f"{what}: {i + 1} of {len(parts)} parts")
            return results
        if getattr(client, "kind", None) == "ray":
            return client.map(fn, parts, progress, what)
        return _on_cluster(client, fn, parts, progress, what)


@contextlib.contextmanager
def connected(cluster, *, fallback: str | None = None):
    """`connect(cluster)` for the length of a job: a connection made here (from an address,
    "ray" or a cluster object) is closed after it; a Client or RayCluster given is left open,
    and None stays None (this process: the environment's scheduler is a session's to read)."""
    if cluster is None:
        yield None
        return
    client = connect(cluster, fallback=fallback)
    try:
        yield client
    finally:
        if client is not None and client is not cluster:
            client.close()


def _on_cluster(client, fn, parts, progress, what) -> list:
    from distributed import CancelledError, KilledWorker, as_completed

    address = client.scheduler.address
    slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-") or "job"
    keys = [f"workbench-{slug}-{uuid.uuid4().hex[:8]}-{i}" for i in range(len(parts))]
    with warnings.catch_warnings():
        # An in-memory part carries its rows in the task, on purpose: data scattered to a
        # worker dies with it, while a task's arguments stay with the scheduler, so a killed
        # worker's parts can run again elsewhere. Dask warns about such a large graph.
        warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
        futures = client.map(fn, parts, key=keys, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    results: list = [None] * len(parts)
    pending, finished, no_workers_since = set(futures), 0, None
    # the futures' own client's loop: the user's client need not be Dask's default one
    arrived = as_completed(futures, loop=client.loop)
    checked = time.monotonic()
    try:
        while pending:
            done = arrived.next_batch(block=False)
            if not done:  # nothing new: every second, see that the cluster can still finish it
                time.sleep(0.02)
                if time.monotonic() - checked >= 1.0:
                    no_workers_since = _check_cluster(client, address, what, parts, futures, index,
                                                      pending, no_workers_since)
                    checked = time.monotonic()
                continue
            pending.difference_update(done)
            for future in sorted(done, key=lambda f: index[f.key]):
                i = index[future.key]
                try:
                    results[i] = future.result()
                except KilledWorker as e:
                    raise _failed(what, parts[i], address, finished, len(parts),
                                  f"the workers running it died ({e})") from e
                except CancelledError as e:
                    raise _failed(what, parts[i], address, finished, len(parts),
                                  "the scheduler cancelled it (did the scheduler stop or restart?)") from e
                except Exception as e:  # the function's own error, as it would be here
                    if hasattr(e, "add_note"):
                        e.add_note(f"in {what}, {parts[i].describe()}, on {describe(client)}")
                    raise
                finished += 1
                progress(finished / len(parts), f"{what}: {finished} of {len(parts)} parts "
                                                f"on {describe(client)}")
        return results
    finally:
        if pending:  # failed or interrupted: the rest of the job stops taking the workers
            try:
                client.cancel(list(pending))
            except Exception:  # the scheduler may be gone; nothing left to stop then
                pass


def _check_cluster(client, address, what, parts, futures, index, pending, since):
    """While parts are waiting: fail when the scheduler is gone or no worker has been there
    for NO_WORKERS_S seconds (Dask would wait for one forever)."""
    first = parts[min(index[f.key] for f in pending)]
    if client.status not in ("running", "connecting"):
        raise _failed(what, first, address, len(futures) - len(pending), len(parts),
                      f"the connection to the scheduler was lost (client {client.status})")
    try:
        workers = len(client.nthreads())
    except (OSError, TimeoutError) as e:
        raise _failed(what, first, address, len(futures) - len(pending), len(parts),
                      f"the scheduler does not answer ({type(e).__name__}: {e})") from e
    if workers:
        return None
    now = time.monotonic()
    if since is not None and now - since > NO_WORKERS_S:
        raise _failed(what, first, address, len(futures) - len(pending), len(parts),
                      f"the cluster has had no worker for {NO_WORKERS_S:.0f} s")
    return since if since is not None else now


def _failed(what, part, address, finished, total, why) -> ClusterJobFailed:
    from dask import config

    allowed = config.get("distributed.scheduler.allowed-failures")
    return ClusterJobFailed.of_part(what, part, f"the Dask cluster at {address}", finished, total, why,
                                    f"distributed.scheduler.allowed-failures = {allowed}")
