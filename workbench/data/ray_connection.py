"""The one Ray connection a process has, shared by the workbench's RayCluster objects.

Ray holds one connection per process (`ray.init`). When the workbench makes it (a session
given `cluster="ray"` with no Ray running, or "ray://host:port"), the sessions that use it
share it, and it is shut down once the last of them is closed and no job runs on it: shutting
Ray down under a running job crashes the process or makes Ray start a new one for it. A Ray
the user initialised is used as it is and never shut down here, nor is one the user started
after shutting ours down: each connection made here is remembered by its runtime (the GCS
address and job id), and each holder by the generation it joined.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["is_ray_address", "join", "job_ended", "job_started", "leave", "normalised", "unreachable_help",
           "without_auto_init"]

_LOCK = threading.Lock()
# the connection made here: what it was asked for, its runtime, a generation number bumped
# each time one is made or forgotten, how many RayCluster objects hold it, how many jobs run
_OURS = {"address": None, "runtime": None, "generation": 0, "users": 0, "jobs": 0}


def is_ray_address(cluster) -> bool:
    """"ray" (this process's Ray, or a new local one) or a Ray Client address "ray://host:port",
    in any case and with spaces around."""
    if not isinstance(cluster, str):
        return False
    text = cluster.strip().lower()
    return text == "ray" or text.startswith("ray://")


def normalised(address: str) -> str:
    text = address.strip()
    return "ray" if text.lower() == "ray" else "ray://" + text[len("ray://"):]


def join(address: str) -> int | None:
    """Connect to Ray for `address` (normalised) or share the connection made here already:
    the generation this holder joined, or None when it uses the user's own Ray (never shut
    down here). ConnectionError when it cannot be reached; ValueError when this process is
    connected to another cluster already."""
    import ray

    with _LOCK:
        if ray.is_initialized():
            ours = _OURS["runtime"] is not None and _runtime() == _OURS["runtime"]
            if not ours:
                _forget()  # what was made here is gone: the user shut it down, this is theirs
                if address != "ray":
                    raise ValueError(f"this process already runs Ray (its own ray.init()), so it cannot "
                                     f"connect to {address} too; pass cluster='ray' to use that one")
                return None
            if address not in ("ray", _OURS["address"]):
                where = "the Ray it started (cluster='ray')" if _OURS["address"] == "ray" \
                    else f"the Ray cluster at {_OURS['address']}"
                raise ValueError(f"this process is connected to {where}, so it cannot connect to "
                                 f"{address} too (Ray holds one connection per process): close the "
                                 "sessions on it first")
        else:
            _forget()
            try:
                ray.init(address=None if address == "ray" else address, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, OSError, TimeoutError, RuntimeError) as e:
                raise ConnectionError(f"{type(e).__name__}: {e}") from e
            _OURS.update(address=address, runtime=_runtime())
        _OURS["users"] += 1
        return _OURS["generation"]


def leave(generation: int | None) -> None:
    """A holder lets go; the last one out (with no job running) shuts Ray down."""
    with _LOCK:
        if generation is not None and generation == _OURS["generation"]:
            _OURS["users"] -= 1
            _release()


def job_started(generation: int | None) -> bool:
    """Under the lock: False when Ray is not running (a task now would make Ray start a new
    one); else the job is counted, so that Ray is not shut down under it."""
    import ray

    with _LOCK:
        if not ray.is_initialized():
            return False
        if generation is not None and generation == _OURS["generation"]:
            _OURS["jobs"] += 1
        return True


def job_ended(generation: int | None) -> None:
    with _LOCK:
        if generation is not None and generation == _OURS["generation"]:
            _OURS["jobs"] -= 1
            _release()


def _release() -> None:
    """Under _LOCK: shut down the Ray made here once nobody holds it and no job runs on it."""
    if _OURS["users"] > 0 or _OURS["jobs"] > 0 or _OURS["runtime"] is None:
        return
    import ray

    if ray.is_initialized() and _runtime() == _OURS["runtime"]:
        ray.shutdown()
    _forget()


def _forget() -> None:
    _OURS.update(address=None, runtime=None, generation=_OURS["generation"] + 1, users=0, jobs=0)


def _runtime():
    """Which Ray runtime this process is connected to (None: it cannot say)."""
    import ray

    try:
        context = without_auto_init(ray.get_runtime_context)()
        return getattr(context, "gcs_address", None), context.get_job_id()
    except Exception:  # a Ray Client connection may not offer every field
        return None


def without_auto_init(api: Callable) -> Callable:
    """`ray.get`, `ray.wait`, `ray.cancel` and others start a new Ray when none is running (Ray's
    auto-init). A job whose Ray the user shuts down from another thread between two calls
    must fail, not start a Ray behind their back: the functions under that wrapper (kept by
    functools.wraps) raise RaySystemError instead."""
    return getattr(api, "__wrapped__", api)


def unreachable_help(address: str) -> str:
    """What to do when the Ray cluster at `address` cannot be reached."""
    return (f"Start it (`ray start --head` on the head machine, `ray start --address=HEAD:6379` on "
            f"the others, or ray.init() in this process), fix the address (cluster={address!r})")
