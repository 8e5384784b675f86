"""Jobs on a Ray cluster: the same map over a pool's parts as on Dask (`workbench.data.jobs`),
for teams whose cluster runs Ray.

    Session(pool, store, cluster="ray")                 # the Ray this process runs, else ray.init()
    Session(pool, store, cluster="ray://head:10001")    # a remote cluster, through Ray Client
    workbench predict MODEL DATA --scheduler ray://head:10001

Each part is one Ray task: the function and the part are pickled to a worker, where a part
reads its own rows (a Parquet part opens its own file), and the results come back in part
order, equal to this process's. Ray is imported only here, and only when asked for.

Faults. A worker that dies mid-task (killed, out of memory) has its task run again on a
worker left, up to MAX_RETRIES times (Ray's `max_retries`). When a part still cannot finish,
or the cluster has had no CPU for NO_WORKERS_S seconds, `ClusterJobFailed` names the job, the
part and what to do, as on Dask; an error raised by the function itself comes back as itself.
A cluster that cannot be reached is `ClusterUnreachable` (or, with `fallback="in-process"`,
a warning and this process). Which Ray this process is connected to, and when it is shut
down, is `workbench.data.ray_connection`'s: closing a session stops its jobs within a second
(its parts already submitted finish on the workers; nothing is cancelled, see `map`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

from workbench.data import ray_connection
from workbench.data.cluster_errors import ClusterJobFailed

__all__ = ["MAX_RETRIES", "RayCluster"]

MAX_RETRIES = 3  # runs of a task after its worker died (Ray's own default for tasks)
NO_WORKERS_S = 30.0  # a job waits this long for a CPU when the cluster has none, then fails


class RayCluster:
    """A connection to Ray that jobs run on: `cluster="ray"` uses the Ray this process has
    initialised, else `ray.init()` (which joins the cluster in RAY_ADDRESS, or starts one on
    this machine); "ray://host:port" connects through Ray Client (`pip install 'ray[client]'`).
    The connection is shared and shut down as `workbench.data.ray_connection` says."""

    kind = "ray"

    def __init__(self, address: str = "ray"):
        try:
            import ray  # noqa: F401
        except ImportError as e:
            raise ImportError(f"cluster={address!r} needs Ray: pip install 'ray[client]>=2.40' (or "
                              "the workbench extra: pip install 'workbench[ray]')") from e
        self.address, self._closed = ray_connection.normalised(address), False
        self._generation = ray_connection.join(self.address)  # None: the user's own Ray
        self._where = self._runtime_address()  # kept for messages after Ray is gone

    @property
    def status(self) -> str:
        import ray

        return "running" if ray.is_initialized() and not self._closed else "closed"

    def nthreads(self) -> dict:
        """CPUs by node, as a Dask Client's `nthreads()` gives threads by worker: how the
        pool is cut into parts (workbench.data.pool_encoding)."""
        import ray

        return {node["NodeID"]: int(node.get("Resources", {}).get("CPU", 0))
                for node in ray.nodes() if node.get("Alive")}

    def describe(self) -> str:
        return f"the Ray cluster at {self._where}"

    def _runtime_address(self) -> str:
        import ray

        if self.address != "ray":
            return self.address
        try:
            context = ray_connection.without_auto_init(ray.get_runtime_context)()
            return getattr(context, "gcs_address", None) or "this process's Ray"
        except Exception:  # a Ray Client connection may not say
            return "this process's Ray"

    def close(self) -> None:
        """Let go of the connection: a job still running for this object stops within a
        second (ClusterJobFailed), and the last holder out shuts down a Ray made here."""
        if self._closed:
            return
        self._closed = True
        ray_connection.leave(self._generation)

    def map(self, fn: Callable, parts: Sequence, progress, what: str) -> list:
        """`[fn(part) for part in parts]` as Ray tasks, in part order (see `map_parts`)."""
        import ray

        if not parts:
            return []
        if self._closed:
            raise self.stopped(what, 0, len(parts))
        if not ray_connection.job_started(self._generation):
            raise self.failed(what, parts[0], 0, len(parts), "Ray is not running (was it shut down?)")
        slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-") or "job"
        pending: list = []
        try:
            task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_run)
            for i, part in enumerate(parts):  # pending as they go: a part that fails to pickle
                if not ray.is_initialized():  # submitting would start a Ray of its own
                    raise self.failed(what, part, 0, len(parts), "Ray was shut down")
                pending.append(task.options(name=f"workbench-{slug}-{i}").remote(fn, part))
            return self._collect(pending, parts, progress, what)
        finally:
            # A job that failed or was stopped leaves its other parts to finish on the workers
            # (their results dropped), unless the Ray made for it is shut down. They are not
            # cancelled: in Ray 2.58 a cancel that meets a task's completion can abort the
            # whole process (the notebook's kernel) on a failed internal check, "it !=
            # submissible_tasks_.end()", seen in this project's tests after a part raised.
            ray_connection.job_ended(self._generation)

    def _collect(self, pending: list, parts, progress, what) -> list:
        """The parts' results as they finish, `pending` emptied as they do."""
        import ray
        from ray import exceptions as rex

        wait, get = (ray_connection.without_auto_init(api) for api in (ray.wait, ray.get))
        index = {ref: i for i, ref in enumerate(pending)}
        results: list = [None] * len(parts)
        finished, no_cpu_since = 0, None
        while pending:
            first = parts[min(index[ref] for ref in pending)]
            if self._closed:
                raise self.stopped(what, finished, len(parts))
            if not ray.is_initialized():  # never wait on a Ray that is gone: it would start a new one
                raise self.failed(what, first, finished, len(parts), "Ray was shut down")
            try:
                done, rest = wait(pending, num_returns=1, timeout=1.0)
            except (SystemExit, rex.RayError) as e:  # SystemExit: Ray was shut down under it
                raise self.failed(what, first, finished, len(parts), "Ray was shut down"
                                  if _shut_down(e) else f"{type(e).__name__}: {e}") from None
            if not done:  # nothing new for a second: can the cluster still finish it?
                no_cpu_since = self._check(what, first, finished, len(parts), no_cpu_since)
                continue
            part = parts[index[done[0]]]
            try:
                value = get(done[0])
            except rex.RayTaskError as e:  # the function's own error, as it would be here
                cause = e.cause if isinstance(e.cause, BaseException) else e
                if hasattr(cause, "add_note"):
                    cause.add_note(f"in {what}, {part.describe()}, on {self.describe()}")
                raise cause from None
            except rex.UnserializableException as e:  # its own error, which cannot travel back
                raise RuntimeError(f"{what}: {part.describe()} raised an error that could not be "
                                   f"sent back from the worker; there it was:\n{e}") from None
            except (SystemExit, ValueError, rex.RayError) as e:
                if _shut_down(e):  # between the wait and the get (ValueError: "owner is unknown")
                    raise self.failed(what, part, finished, len(parts), "Ray was shut down") from None
                if isinstance(e, rex.RayError):  # a worker or node died past the retries, an object lost
                    raise self.failed(what, part, finished, len(parts),
                                      f"the workers running it died ({type(e).__name__}: {e})") from e
                raise
            pending[:] = rest
            results[index[done[0]]] = value
            finished += 1
            progress(finished / len(parts),
                     f"{what}: {finished} of {len(parts)} parts on {self.describe()}")
        return results

    def _check(self, what, first, finished, total, since):
        import ray

        try:
            cpus = ray.cluster_resources().get("CPU", 0)
        except Exception as e:
            if _shut_down(e):
                raise self.failed(what, first, finished, total, "Ray was shut down") from None
            raise
        if cpus > 0:
            return None
        now = time.monotonic()
        if since is not None and now - since > NO_WORKERS_S:
            raise self.failed(what, first, finished, total,
                              f"the cluster has had no CPU for {NO_WORKERS_S:.0f} s")
        return since if since is not None else now

    def stopped(self, what, finished, total):
        return ClusterJobFailed(f"{what} on {self.describe()} stopped after {finished} of {total} parts: "
                                "the session it ran for (or its RayCluster) was closed. Nothing else "
                                "was changed: labels and the store are untouched.", what=what)

    def failed(self, what, part, finished, total, why):
        return ClusterJobFailed.of_part(what, part, self.describe(), finished, total, why, str(MAX_RETRIES))


def _run(fn, part):
    return fn(part)


def _shut_down(error: BaseException) -> bool:
    import ray

    return isinstance(error, SystemExit) or not ray.is_initialized()
