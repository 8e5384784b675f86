"""Label history: commits, refs, log, diff, blame, revert, restore, branches and merge.

The dataset is a repository whose commits are states of the labels. Nothing is copied to
make one: events are immutable and each writer numbers its own, so a state is named exactly
by a *frontier*, for each writer the number of its events that count. A commit records its
frontier, its parents, who, when and why, and what it holds (`n_labels`, `labels_hash`);
labels "as of" a commit are the same fold as the current labels, over the events inside its
frontier (`views`).

A branch is a head commit plus the events written on that branch in this store since then;
what a handle on it sees is its *scope*. Everything that changes labels (revert, restore, the
changes a merge takes, the resolution of a conflict) is new events, so nothing is ever deleted
and every step can itself be taken back. A merge combines two frontiers; where a plain fold of
the union would not give the three-way result (both sides changed an item, or clocks disagree),
it writes "merge" events that do, and an item both sides changed to different labels is a
conflict the merge will not complete without.

Layout, beside the log (names starting with "_" are invisible to pandas and pyarrow):

    _history/commits/<id>.json        one immutable file per commit
    _history/refs/heads/<branch>      the branch's head commit id
    _history/refs/tags/<tag>          a tag's commit id
    _history/refs/remotes/<r>/<b>     where another store's branch was at the last pull
    _history/merging-<branch>.json    a merge in progress: the other side, its conflicts
    _history/pending-<branch>.json    a revert or restore's plan, until its commit is made
    _history/.lock                    flock held while a ref moves

`History` is the list of these verbs as a `LabelStore` (workbench.store.log) offers them; each
is a function of the handle in the module that does it: graph (commits and their ancestry),
refs (names of commits, and resolving them), committing, diffing (labels at a point and
between two), blame, fixes (the events that set labels), reverting (revert and restore),
merging and merge_state, and recovery (finishing what a killed process left). Those modules
import one another but none of the log's (reading, scope, writing): what they need of the log
and the view they reach through the handle (`store._view()`, `store._all_events()`,
`store.append_many(...)`), which keeps the imports one way, from the log to its history.
"""

from __future__ import annotations

from workbench.store import blame as blaming  # (`blame` is also the verb below)
from workbench.store import committing, diffing, graph, merge_state, merging, refs, reverting
from workbench.store.graph import HISTORY, Commit
from workbench.store.merging import MergeResult
from workbench.store.refs import HEX, MAIN, NAME, check_name
from workbench.store.schema import PROVENANCE

__all__ = ["HEX", "HISTORY", "MAIN", "NAME", "PROVENANCE", "Commit", "History", "MergeResult",
           "check_name"]


class History:
    """Commit, log, diff, blame, revert, restore, branches and merge (see the module doc).

    Each verb is a module-level function whose first argument is the store handle; binding it
    here makes it a method of `LabelStore` under its old name. The private names are those
    that sync.py, the command line, the ui and tests call on a handle.
    """

    # -- reading commits and refs (refs.py, graph.py) ---------------------------------------
    rev = refs.rev
    log = refs.log
    branches = refs.branches
    tags = refs.tags
    status = committing.status

    # -- labels at a point, and between two points (diffing.py) --------------------------------
    labels = diffing.labels
    current_labels_at = diffing.current_labels_at
    diff = diffing.diff

    # -- who labeled what (blame.py) -----------------------------------------------------------
    blame = blaming.blame
    blame_line = blaming.blame_line
    item_history = blaming.item_history

    # -- making history (committing.py, refs.py, reverting.py) ----------------------------------
    commit = committing.commit
    tag = refs.tag
    branch = refs.branch
    revert = reverting.revert
    restore = reverting.restore

    # -- merge (merging.py, merge_state.py) -----------------------------------------------------
    merge = merging.merge
    conflicts = merge_state.conflicts
    resolve = merging.resolve
    abort_merge = merging.abort_merge

    # -- internals that other modules call on a handle --------------------------------------------
    _hdir = graph.history_dir
    _commit = graph.load
    _commit_ids = graph.ids
    _commit_frontier = graph.frontier
    _ancestors = graph.ancestors
    _merge_base = graph.merge_base
    _head_id = refs.head_id
    _set_ref = refs.set_ref
    _lock_path = refs.lock_path
    _diff = diffing.diff_between
    _snapshot = committing.snapshot
