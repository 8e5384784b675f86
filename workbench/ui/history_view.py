"""HistoryView: the label history of a session's store in the notebook.

The commit log on the left (newest first, with the uncommitted changes on top), and on the
right what the chosen commit changed, shown with the items themselves (thumbnail, text or
row) as before -> after, with who made each change. Python computes every row; the browser
only draws them (textContent only) and reports which commit was chosen.
"""

from __future__ import annotations

import logging
import threading

import anywidget
import pandas as pd
import traitlets

from workbench.ui.front_end import STATIC, front_end

log = logging.getLogger(__name__)
WORKING = "working"  # the `selected` value that means "the uncommitted changes"


class HistoryView(anywidget.AnyWidget):
    _esm = front_end("history.js")
    _css = STATIC / "history.css"

    branch = traitlets.Unicode("").tag(sync=True)
    commits = traitlets.List(traitlets.Dict()).tag(sync=True)
    uncommitted = traitlets.Int(0).tag(sync=True)
    selected = traitlets.Unicode(WORKING).tag(sync=True)
    diff = traitlets.List(traitlets.Dict()).tag(sync=True)
    diff_title = traitlets.Unicode("").tag(sync=True)
    limit = traitlets.Int(200, min=1).tag(sync=True)

    def __init__(self, session, *, limit: int = 200, **kwargs):
        super().__init__(limit=limit, **kwargs)
        self.session = session
        self._lock = threading.Lock()
        self.refresh()
        self._unsubscribe = session.subscribe(self._on_event)

    def refresh(self) -> None:
        """Read the log and the chosen commit's changes again."""
        store = self.session.store
        with self._lock:
            frame = store.log()
            self.branch = store.current_branch
            self.commits = [
                {"commit": r.commit, "time": pd.Timestamp(r.time).strftime("%Y-%m-%d %H:%M"),
                 "author": r.author, "message": r.message, "added": int(r.added),
                 "changed": int(r.changed), "removed": int(r.removed), "n_labels": int(r.n_labels)}
                for r in frame.itertuples()]
            self.uncommitted = store.status()["uncommitted"]
            self._show(self.selected)

    def show(self, ref: str = WORKING) -> pd.DataFrame:
        """Show what a commit changed (or, by default, the uncommitted changes); returns it."""
        with self._lock:
            self.selected = ref
            return self._show(ref)

    @traitlets.observe("selected")
    def _selected_changed(self, change) -> None:
        if hasattr(self, "session") and not self._lock.locked():
            with self._lock:
                try:
                    self._show(change["new"])
                except Exception as e:  # a bad ref from the browser: say so in the view
                    self.diff, self.diff_title = [], f"{type(e).__name__}: {e}"

    def _show(self, ref: str) -> pd.DataFrame:
        store = self.session.store
        if ref == WORKING:
            head = store.status()["head"]
            frame = store.diff(head) if head else _all_added(store)
            title = f"uncommitted changes on {store.current_branch} (against {head or 'nothing'})"
        else:
            commit = store.rev(ref)
            parent = commit.parents[0] if commit.parents else None
            frame = store._diff(store._commit_frontier(parent), commit.frontier)
            title = f"{commit.short} {commit.message} ({commit.author})"
        rows = []
        for r in frame.head(self.limit).itertuples():
            rows.append({"item_id": r.item_id, "before": _text(r.before), "after": _text(r.after),
                         "change": r.change, "annotator": _text(r.annotator),
                         "source": _text(r.source), "render": self._render(r.item_id)})
        more = len(frame) - len(rows)
        self.diff = rows
        self.diff_title = title + (f" · {len(frame)} changes, first {len(rows)} shown" if more else
                                   f" · {len(frame)} changes")
        return frame

    def _render(self, item_id: str) -> dict:
        pool = self.session.pool
        if item_id not in pool:
            return {"kind": "error", "reason": f"{item_id} is not in this session's pool"}
        try:
            return pool.render(item_id)
        except Exception as e:  # one broken item must not break the view
            return {"kind": "error", "reason": f"{type(e).__name__}: {e}"}

    def _on_event(self, event: str) -> None:
        if event != "labels_changed":
            return
        try:
            self.uncommitted = self.session.store.status()["uncommitted"]
        except Exception:  # never raise into the session's threads
            log.exception("history view could not update")

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        super().close()


def _all_added(store) -> pd.DataFrame:
    """The changes of a branch without commits: every label is new."""
    blame = store.blame().reset_index()
    return pd.DataFrame({"item_id": blame["item_id"], "before": None, "after": blame["label"],
                         "change": "added", "annotator": blame["annotator"],
                         "source": blame["source"]})


def _text(value) -> str | None:
    return None if value is None or (isinstance(value, float) and value != value) else str(value)
