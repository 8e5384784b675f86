"""What can go wrong with a cluster that jobs run on (Dask's, workbench.data.jobs; or Ray's,
workbench.data.ray_jobs): the same three, whichever engine runs the parts."""

from __future__ import annotations

__all__ = ["ClusterFallbackWarning", "ClusterJobFailed", "ClusterUnreachable"]


class ClusterUnreachable(ConnectionError):
    """The Dask scheduler or Ray cluster named for a session or a job cannot be reached."""


class ClusterJobFailed(RuntimeError):
    """A job on the cluster could not finish (its workers died, or the scheduler went away).
    `what`: the job; `part`: the part that failed (its `describe()`), or None."""

    def __init__(self, message: str, *, what: str, part: str | None = None):
        super().__init__(message)
        self.what, self.part = what, part

    def __reduce__(self):  # pickled back from a worker (a job inside a job) with its fields
        return _job_failed, (str(self), self.what, self.part)

    @classmethod
    def of_part(cls, what: str, part, where: str, finished: int, total: int, why: str,
                retries: str) -> ClusterJobFailed:
        """The job `what` failed on the cluster `where` ("the Dask cluster at tcp://..."):
        `part` could not finish, `why`; `retries` says how often a part is run again."""
        return cls(
            f"{what} failed on {where}: {part.describe()} could not finish: {why}. {finished} of "
            f"{total} parts had finished. A part is run again after each worker death, up to "
            f"{retries} times. What to do: look at the workers' logs and memory (a part that kills "
            "every worker it runs on needs more memory per worker, or smaller parts), restart the "
            "workers, or work in this process (cluster=False). Nothing else was changed: labels "
            "and the store are untouched, and the job can simply be run again.",
            what=what, part=part.describe())


def _job_failed(message: str, what: str, part: str | None) -> ClusterJobFailed:
    return ClusterJobFailed(message, what=what, part=part)


class ClusterFallbackWarning(UserWarning):
    """The cluster could not be reached, and the user asked to work in this process then."""
