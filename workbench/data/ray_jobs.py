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
a warning and this process).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence

from workbench.data.cluster_errors import ClusterJobFailed

__all__ = ["MAX_RETRIES", "RayCluster", "is_ray_address"]

MAX_RETRIES = 3  # runs of a task after its worker died (Ray's own default for tasks)
NO_WORKERS_S = 30.0  # a job waits this long for a CPU when the cluster has none, then fails

_LOCK = threading.Lock()
_OURS = {"address": None, "users": 0}  # the connection RayCluster objects made, and how many hold it


def is_ray_address(cluster) -> bool:
    """"ray" (this process's Ray, or a new local one) or a Ray Client address "ray://host:port"."""
    return isinstance(cluster, str) and (cluster.strip() == "ray" or cluster.strip().startswith("ray://"))


class RayCluster:
    """A connection to Ray that jobs run on: `cluster="ray"` uses the Ray this process has
    initialised, else `ray.init()` (which joins the cluster in RAY_ADDRESS, or starts one on
    this machine); "ray://host:port" connects through Ray Client (`pip install 'ray[client]'`).
    Ray holds one connection per process: RayCluster objects share the one they made, and the
    last to `close()` shuts it down; a Ray the user initialised is left running."""

    kind = "ray"

    def __init__(self, address: str = "ray"):
        try:
            import ray
        except ImportError as e:
            raise ImportError(f"cluster={address!r} needs Ray: pip install 'ray[client]>=2.40' (or "
                              "the workbench extra: pip install 'workbench[ray]')") from e
        self.address, self._holds = address.strip(), False
        with _LOCK:
            if ray.is_initialized():
                joined = _OURS["address"]
                if joined is None and self.address != "ray":
                    raise ValueError(f"this process already runs Ray (its own ray.init()), so it cannot "
                                     f"connect to {self.address} too; pass cluster='ray' to use that one")
                if joined is not None and self.address not in ("ray", joined):
                    raise ValueError(f"this process is connected to the Ray cluster at {joined}, so it "
                                     f"cannot connect to {self.address} too (Ray holds one connection "
                                     "per process): close the sessions on it first")
            else:
                try:
                    ray.init(address=None if self.address == "ray" else self.address,
                             log_to_driver=False, configure_logging=False)
                except (ConnectionError, OSError, TimeoutError, RuntimeError) as e:
                    raise ConnectionError(f"{type(e).__name__}: {e}") from e
                _OURS["address"] = self.address
            if _OURS["address"] is not None:
                _OURS["users"] += 1
                self._holds = True

    @property
    def status(self) -> str:
        import ray

        return "running" if ray.is_initialized() else "closed"

    def nthreads(self) -> dict:
        """CPUs by node, as a Dask Client's `nthreads()` gives threads by worker: how the
        pool is cut into parts (workbench.data.pool_encoding)."""
        import ray

        return {node["NodeID"]: int(node.get("Resources", {}).get("CPU", 0))
                for node in ray.nodes() if node.get("Alive")}

    def describe(self) -> str:
        import ray

        where = self.address
        if self.address == "ray" and ray.is_initialized():
            where = ray.get_runtime_context().gcs_address
        return f"the Ray cluster at {where}"

    def close(self) -> None:
        import ray

        with _LOCK:
            if not self._holds:
                return
            self._holds = False
            _OURS["users"] -= 1
            if _OURS["users"] == 0:
                _OURS["address"] = None
                if ray.is_initialized():
                    ray.shutdown()

    def map(self, fn: Callable, parts: Sequence, progress, what: str) -> list:
        """`[fn(part) for part in parts]` as Ray tasks, in part order (see `map_parts`)."""
        import ray
        from ray import exceptions as rex

        slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-") or "job"
        task = ray.remote(num_cpus=1, max_retries=MAX_RETRIES)(_run)
        refs = [task.options(name=f"workbench-{slug}-{i}").remote(fn, part) for i, part in enumerate(parts)]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list = [None] * len(parts)
        pending, finished, no_cpu_since = list(refs), 0, None
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
                if not done:  # nothing new for a second: can the cluster still finish it?
                    no_cpu_since = self._check(what, parts, index, pending, finished, no_cpu_since)
                    continue
                i = index[done[0]]
                try:
                    results[i] = ray.get(done[0])
                except rex.RayTaskError as e:  # the function's own error, as it would be here
                    cause = e.cause if isinstance(e.cause, BaseException) else e
                    if hasattr(cause, "add_note"):
                        cause.add_note(f"in {what}, {parts[i].describe()}, on {self.describe()}")
                    raise cause from None
                except rex.RayError as e:  # a worker or node died past the retries, an object lost
                    raise self.failed(what, parts[i], finished, len(parts),
                                      f"the workers running it died ({type(e).__name__}: {e})") from e
                finished += 1
                progress(finished / len(parts),
                         f"{what}: {finished} of {len(parts)} parts on {self.describe()}")
            return results
        finally:
            for ref in pending:  # failed or interrupted: the rest of the job stops taking the workers
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # the cluster may be gone; nothing left to stop then
                    pass

    def _check(self, what, parts, index, pending, finished, since):
        import ray

        first = parts[min(index[ref] for ref in pending)]
        if not ray.is_initialized():
            raise self.failed(what, first, finished, len(parts), "Ray was shut down")
        if ray.cluster_resources().get("CPU", 0) > 0:
            return None
        now = time.monotonic()
        if since is not None and now - since > NO_WORKERS_S:
            raise self.failed(what, first, finished, len(parts),
                              f"the cluster has had no CPU for {NO_WORKERS_S:.0f} s")
        return since if since is not None else now

    def failed(self, what, part, finished, total, why):
        return ClusterJobFailed(
            f"{what} failed on {self.describe()}: {part.describe()} could not finish: {why}. "
            f"{finished} of {total} parts had finished. A part is run again after each worker "
            f"death, up to {MAX_RETRIES} times. What to do: look at the workers' logs and memory "
            "(a part that kills every worker it runs on needs more memory per worker, or smaller "
            "parts), restart the workers, or work in this process (cluster=False). Nothing else "
            "was changed: labels and the store are untouched, and the job can simply be run again.",
            what=what, part=part.describe())


def _run(fn, part):
    return fn(part)


def unreachable_help(address: str) -> str:
    """What to do when the Ray cluster at `address` cannot be reached."""
    return (f"Start it (`ray start --head` on the head machine, `ray start --address=HEAD:6379` on "
            f"the others, or ray.init() in this process), fix the address (cluster={address!r})")
