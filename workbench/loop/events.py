"""What a session tells the views that draw it: labels changed, a queue changed, a round
started, finished or failed, the representation's progress. Callbacks may run on a
background thread (the trainer, the watcher); one that raises is logged and never undoes or
hides the action that notified it."""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)
EVENTS = ("labels_changed", "queue_changed", "focus_changed", "retrain_started",
          "retrain_finished", "retrain_failed", "representation_progress")


class Events:
    """The subscribers of one session."""

    def __init__(self):
        self.subscribers: list = []

    def subscribe(self, callback):
        """Call `callback(event)` on "labels_changed", "queue_changed" (a review, an
        adjudication, a focus), "retrain_started", "retrain_finished", "retrain_failed" and
        "representation_progress" (possibly from a background thread). A callback that raises is
        logged and never undoes or hides the action that notified it. Returns a function that
        unsubscribes it."""
        self.subscribers.append(callback)
        return lambda: self.subscribers.remove(callback) if callback in self.subscribers else None

    def emit(self, event: str) -> None:
        """Tell the subscribers."""
        for callback in list(self.subscribers):
            try:
                callback(event)
            except Exception:  # the action already happened (a label is durable): report only
                log.exception("a workbench subscriber failed on %r", event)
