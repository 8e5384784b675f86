"""A branch's scope and view: which events a handle on a branch sees, and each item's state.

The scope is the branch's head commit (during a merge, the other side's commit too) as a
frontier, plus the events written on the branch in this store since. The view
(`views.Latest`) is folded from the events in scope once, then forward with each new event,
and built again when the head moves in a way this handle did not make itself (a teammate's
merge, a pull). The current labels, confirmations, skips and states are read from it, and
sync() reports what arrived, or moved in or out of the scope, since it was last called.
"""

from __future__ import annotations

import pandas as pd

from workbench.store import graph, merge_state, reading, refs, schema, views


def sync(store, *, quick: bool = False) -> list[dict]:
    """The events that arrived since the last sync(), as dicts of their columns: written
    by other handles (other notebooks, processes), which are read first, and through this
    one (a merge, a restore). Cheap when nothing changed: one directory listing; with
    `quick`, no listing when the log stamp says no writer published since the last one
    (reading.refresh). The first call only starts the count (it returns nothing: read the
    current state after it). Meant for one consumer per handle, the session that owns it.

    When the branch's head moved (a merge, pull, revert, restore or reset, by any handle),
    the events that came into the branch's scope or left it count as arrived too, so a
    session sees a teammate's merged labels like any new label."""
    with store._lock:
        reading.refresh(store, quick=quick)
        new, store._unsynced = store._unsynced or [], []
        rows = [row for batch in new
                for row in (batch.to_dict("records") if isinstance(batch, pd.DataFrame) else batch)]
        key, frontier = read_scope(store)
        if store._synced_scope is not None and key != store._synced_scope[0]:
            rows += _moved_between(store, store._synced_scope[1], frontier)
        store._synced_scope = (key, frontier)
        return rows


def _moved_between(store, before: dict, after: dict) -> list[dict]:
    """The events inside one of two frontiers and not the other (as dicts)."""
    log = reading.log_frame(store)
    moved = views.frontier_mask(log, before) != views.frontier_mask(log, after)
    return [schema.plain(r) for r in log[moved].to_dict("records")]


def current_labels(store) -> pd.DataFrame:
    """Per item_id, the latest label/relabel that no undo retracts and no skip follows.

    Rows come in the order they were labeled: by (time, writer, seq).
    """
    with store._lock:
        return views.labels(branch_view(store).frame())


def confirmations(store) -> pd.DataFrame:
    """Per item_id, the latest confirm (a review that kept the label) that no undo takes
    back and that still stands: it confirms the item's current label and comes after the
    event that gave it. Columns: label, annotator, time, event_id."""
    columns = ["label", "annotator", "time", "event_id"]
    with store._lock:
        view = branch_view(store)
        log = reading.log_frame(store)
        confirms = log[(log["action"] == views.CONFIRM).to_numpy()]  # few: scope them alone
        confirms = confirms[views.frontier_mask(confirms, store._frontier)
                            | schema.local_mask(confirms, store.current_branch, store.store_id)]
        confirms = confirms[~views.isin(confirms["event_id"], store._retracted)]
        if confirms.empty:
            return pd.DataFrame(columns=columns, index=pd.Index([], name="item_id"))
        last = views.in_order(confirms).drop_duplicates("item_id", keep="last").set_index("item_id")
        frame = view.frame()
        current = frame[views.isin(frame["action"], views.LABELING)].reindex(last.index)
        stands = (current["label"] == last["label"]).to_numpy() & (  # after the label it keeps
            pd.to_datetime(current["clock"], utc=True) <= pd.to_datetime(last["clock"], utc=True)
        ).to_numpy()
        return last.loc[stands, columns]


def began_in(store, role: str, items=None, at: str | None = None) -> set[str]:
    """Items whose label began in `role`: since the item was last skipped or removed, its first
    label (undone ones left out) was given in that role. Relabels carry their own role (a fix
    made in review), so that a label that began in an audit slot stays an audit label however
    it is corrected. Only the items ever labeled in `role` (of `items`, when given) are read;
    an item without a label now may be among them (the caller intersects). `at`: as of that
    commit rather than on this branch now."""
    with store._lock:
        if at is None:
            branch_view(store)  # brings the frontier and the retractions up to date
        log = reading.log_frame(store) if at is None else store._all_events()
        ever = log["item_id"][(log["query"] == role).to_numpy()].unique()
        if items is not None:
            wanted = set(items)
            ever = [i for i in ever if i in wanted]
        if not len(ever):
            return set()
        rows = log[views.isin(log["item_id"], ever) & views.isin(log["action"], views.EFFECTIVE)]
        if at is None:
            rows = rows[views.frontier_mask(rows, store._frontier)
                        | schema.local_mask(rows, store.current_branch, store.store_id)]
            retracted = store._retracted
        else:  # the commit's events, less those its own undos take back
            from workbench.store.diffing import _undone

            frontier = refs.rev(store, at).frontier
            rows = rows[views.frontier_mask(rows, frontier)]
            retracted = _undone(log, views.frontier_mask(log, frontier))
        rows = views.in_order(rows[~views.isin(rows["event_id"], retracted)])
        ended = pd.Series(~views.isin(rows["action"], views.LABELING), index=rows.index)
        since = ended.groupby(rows["item_id"].to_numpy()).cumsum()  # labels since the last skip/remove
        last = since.groupby(rows["item_id"].to_numpy()).transform("max")
        current = rows[(since == last).to_numpy() & ~ended.to_numpy()]
        first = current.drop_duplicates("item_id", keep="first")
        return set(first["item_id"][(first["query"] == role).to_numpy()])


def skipped(store) -> set[str]:
    """Items whose latest effective event is a skip."""
    with store._lock:
        return views.skipped(branch_view(store).frame())


def states(store, item_ids, *, quick: bool = False) -> dict[str, dict]:
    """For the given items, the event that decides each one's state (label, relabel or
    skip), as a dict of its columns; items with none (never labeled, all undone) are absent.
    Cheap for a few items, however big the store; `quick` as for sync() (for a caller that
    has just synced: the folder is listed again only if a writer stamped the log since)."""
    with store._lock:
        view = branch_view(store, quick=quick)
        tops = ((item, view.top(item)) for item in dict.fromkeys(item_ids))
        return {item: top for item, top in tops if top is not None}


def branch_view(store, *, quick: bool = False) -> views.Latest:
    """The state of every item on this branch: built from the events in scope once, then
    folded forward; built again when the branch's head moves in a way this handle did not
    make itself (a teammate's merge, a pull). `quick`: see reading.refresh."""
    reading.refresh(store, quick=quick)
    key, frontier = read_scope(store)
    rows, store._unfolded = store._unfolded, []
    # Events the scope's commits already hold may arrive after the view was built (a
    # teammate's commit read before its events, a pull): they are not changes since the
    # commit, so the view is built again rather than folding them in as new.
    late = any(row["seq"] < frontier.get(row["writer"], 0) for row in rows)
    if store._current is None or key != store._scope_key or len(rows) > 1000 or late:
        _build_view(store, key, frontier)
    elif rows:
        rows = [row for row in rows if in_scope(store, row)]
        store._retracted.update(r["target"] for r in rows if r["action"] == "undo")
        store._current.fold(rows, store._scope_log, store._retracted)
    return store._current


def _build_view(store, key: tuple, frontier: dict[str, int]) -> None:
    store._scope_key, store._frontier = key, frontier
    scope = scope_log(store)
    store._retracted = views.retracted_ids(scope)
    # What changed since the branch's last commit (a handle opened with uncommitted labels
    # must still count them in the next commit): the items the uncommitted events touch,
    # and their labels at the commit.
    head = graph.frontier(store, key[0])
    touched = scope.loc[~views.frontier_mask(scope, head), "item_id"].dropna().unique()
    at_head = views.as_of(scope[views.isin(scope["item_id"], touched)], head)
    before = views.labels(views.latest(at_head))["label"].to_dict()
    store._current = views.Latest(scope, store._retracted,
                                  marked={item: before.get(item) for item in touched})


def scope_log(store) -> pd.DataFrame:
    """The events this branch sees: those in its scope frontier (the head commit's, and
    during a merge the other side's too), and those written on this branch in this store."""
    log = reading.log_frame(store)
    mask = views.frontier_mask(log, store._frontier) | schema.local_mask(log, store.current_branch,
                                                                         store.store_id)
    return log[mask]


def in_scope(store, row: dict) -> bool:
    """Whether this branch sees an event (a dict): `scope_log` for one row."""
    return row["seq"] < store._frontier.get(row["writer"], 0) or schema.is_local(
        row, store.current_branch, store.store_id)


def read_scope(store) -> tuple[tuple, dict]:
    """(head commit, merging commit) and the frontier of the events they hold."""
    head = refs.head_id(store)
    merging = merge_state.read(store)
    frontier = dict(graph.frontier(store, head))
    if merging is not None:
        for writer, count in graph.load(store, merging["theirs"]).frontier.items():
            frontier[writer] = max(frontier.get(writer, 0), count)
    return (head, None if merging is None else merging["theirs"]), frontier
