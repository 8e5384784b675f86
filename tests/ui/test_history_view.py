"""HistoryView without a browser: the log and a commit's changes, as the traits it syncs."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from workbench import Session, datasets
from workbench.ui.history_view import HistoryView


def test_the_log_and_a_commits_changes_with_the_items(tmp_path):
    pool = datasets.digits().subset(np.arange(100))
    session = Session(pool, tmp_path / "s", learner=LogisticRegression(), annotator="ann")
    for item in session.peek(5):
        session.label(item, pool.true_label(item.item_id))
    first = session.store.commit("five digits")
    head = session.peek(1)[0]
    session.label(head, 3)
    fixed = next(iter(session.labels))
    session.label(fixed, 7)  # a relabel
    view = HistoryView(session)
    assert view.uncommitted == 2 and view.selected == "working"
    assert {(r["item_id"], r["change"]) for r in view.diff} == {(head.item_id, "added"),
                                                               (fixed, "changed")}
    assert all(r["render"]["kind"] == "image" for r in view.diff)
    second = session.store.commit("a 3 and a fix")
    session.sync()
    view.refresh()
    assert [c["commit"] for c in view.commits] == [second.short, first.short]
    assert view.commits[0]["changed"] == 1 and view.commits[0]["added"] == 1
    view.selected = first.short  # a click in the browser
    assert len(view.diff) == 5 and view.diff_title.startswith(f"{first.short} five digits")
    assert {r["after"] for r in view.diff} == {str(pool.true_label(r["item_id"])) for r in view.diff}
    view.selected = "nope"
    assert view.diff == [] and "unknown ref 'nope'" in view.diff_title
    assert session.blame_text(fixed).startswith(f"labeled 7 by ann, just now, in {second.short}")
    assert session.blame_text(session.peek(1)[0].item_id) is None
    view.close()
    session.close()
