"""Label history over the event log: commits, refs, log, diff, blame, revert, restore,
branches and merge. Views are checked against a brute-force replay of the log."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from workbench.store import LabelStore, StoreError
from workbench.store.history import Commit
from workbench.store.views import labels_hash


def replay(events: pd.DataFrame) -> dict:
    """item -> label, applying events one at a time in log order (the slow, obvious way)."""
    events = events.sort_values(["clock", "writer", "seq"])
    undone = set(events.loc[events["action"] == "undo", "target"])
    state = {}
    for e in events.itertuples():
        if e.action in ("label", "relabel") and e.event_id not in undone:
            state[e.item_id] = e.label
        elif e.action in ("skip", "remove") and e.event_id not in undone:
            state.pop(e.item_id, None)
    return state


def inside(events: pd.DataFrame, commit: Commit) -> pd.DataFrame:
    return events[[seq < commit.frontier.get(w, 0) for w, seq in zip(events["writer"], events["seq"])]]


@pytest.fixture
def store(tmp_path):
    return LabelStore.open(tmp_path / "s", annotator="ann")


def test_commit_records_the_state_without_copying_labels(store, tmp_path):
    for i in range(5):
        store.append(f"i{i}", "cat")
    before = {p.name for p in (tmp_path / "s").glob("*.parquet")}
    first = store.commit("five cats")
    assert {p.name for p in (tmp_path / "s").glob("*.parquet")} == before  # no copy
    assert (first.n_labels, first.added, first.changed, first.removed) == (5, 5, 0, 0)
    assert first.labels_hash == labels_hash([f"i{i}" for i in range(5)], ["cat"] * 5)
    assert len(first.id) == 40 and first.parents == () and first.author == "ann"
    with pytest.raises(StoreError, match="nothing to commit on branch 'main'"):
        store.commit("again")
    with pytest.raises(StoreError, match="needs a message"):
        store.commit("  ")
    store.append("i0", "dog", action="relabel")
    store.append("i9", "cow")
    skip = store.append("i1", action="skip")
    second = store.commit("a dog, a cow", author="bob")
    assert (second.added, second.changed, second.removed, second.n_labels) == (1, 1, 1, 5)
    assert second.parents == (first.id,) and second.author == "bob"
    assert store.rev("HEAD") == second and store.rev("HEAD~1") == first
    assert store.rev(first.id[:6]) == first
    assert LabelStore.open(tmp_path / "s").rev("HEAD").id == second.id
    log = store.log()
    assert log["commit"].tolist() == [second.short, first.short]
    assert log[["added", "changed", "removed"]].values.tolist() == [[1, 1, 1], [5, 0, 0]]
    store.undo(skip.event_id)  # undoing is a change too
    assert store.commit("i1 back").added == 1


def test_two_stores_with_the_same_labels_agree_on_their_hash(tmp_path):
    a = LabelStore.open(tmp_path / "a")
    b = LabelStore.open(tmp_path / "b")
    for i in range(20):
        a.append(f"i{i}", str(i % 3))
    for i in reversed(range(20)):  # another order, a slip, an undo: the same labels in the end
        b.append(f"i{i}", "x")
        b.append(f"i{i}", str(i % 3), action="relabel")
    slip = b.append("extra", "y")
    b.undo(slip.event_id)
    assert a.commit("one").labels_hash == b.commit("two").labels_hash
    b.append("i0", "z", action="relabel")
    assert b.commit("three").labels_hash != a.rev("HEAD").labels_hash


def test_refs_and_their_errors(store):
    store.append("a", "x")
    first = store.commit("first")
    store.append("b", "y")
    second = store.commit("second")
    assert store.tag("v1", "HEAD~1") == first and store.rev("v1") == first
    with pytest.raises(StoreError, match="tag 'v1' exists already"):
        store.tag("v1")
    with pytest.raises(StoreError, match="tag name 'bad name' is not allowed"):
        store.tag("bad name")
    with pytest.raises(StoreError, match="unknown ref 'nope'.*branches: main; tags: v1"):
        store.rev("nope")
    with pytest.raises(StoreError, match="goes back past the first commit"):
        store.rev("HEAD~5")
    folder = store.path / "_history" / "commits"
    for twin in ("abcd" + "1" * 36, "abcd" + "2" * 36):  # two ids with one 4-digit prefix
        data = json.loads((folder / f"{first.id}.json").read_text())
        (folder / f"{twin}.json").write_text(json.dumps({**data, "id": twin}))
    with pytest.raises(StoreError, match="ref 'abcd' is ambiguous: it starts abcd11111111, abcd2"):
        store.rev("abcd")
    assert store.rev("abcd1").id == "abcd" + "1" * 36
    assert store.tags().values.tolist() == [["v1", first.short]] and second.parents == (first.id,)


def test_labels_at_a_commit_and_diff_equal_a_replay(tmp_path):
    rng = random.Random(1)
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    other = LabelStore.open(tmp_path / "s", annotator="bob")  # a second writer on main
    commits, written = [], []
    for step in range(200):
        handle = rng.choice([store, other])
        item = f"i{rng.randrange(25)}"
        roll = rng.random()
        if roll < 0.1 and written:
            handle.undo(written.pop(rng.randrange(len(written))))
        elif roll < 0.2:
            written.append(handle.append(item, action="skip").event_id)
        elif roll < 0.25:
            written.append(handle.append(item, action="remove").event_id)
        else:
            written.append(handle.append(item, rng.choice("xyz")).event_id)
        if step % 25 == 24:
            try:
                commits.append(store.commit(f"step {step}"))
            except StoreError:
                pass  # nothing changed since the last one
    events = store.events()
    assert len(commits) >= 5
    for commit in commits:
        expected = replay(inside(events, commit))
        assert store.labels(at=commit.id).to_dict() == expected
        assert commit.labels_hash == labels_hash(list(expected), list(expected.values()))
    assert store.labels().to_dict() == replay(events)
    a, b = commits[1], commits[-1]
    diff = store.diff(a.id, b.id).set_index("item_id")
    before, after = replay(inside(events, a)), replay(inside(events, b))
    changed = {i for i in set(before) | set(after) if before.get(i) != after.get(i)}
    assert set(diff.index) == changed
    for item, row in diff.iterrows():
        assert (row["before"], row["after"]) == (before.get(item), after.get(item))
    now = store.diff(b.id).set_index("item_id")  # against the uncommitted state
    assert set(now.index) == {i for i in set(after) | set(replay(events))
                              if after.get(i) != replay(events).get(i)}


def test_blame_names_who_when_why_and_the_commit(store):
    store.append("a", "cat", query="margin")
    first = store.commit("first")
    store.append("b", "dog", annotator="bob", source="suggestion", query="audit")
    blame = store.blame()
    assert blame.loc["a", ["label", "annotator", "query", "commit"]].tolist() == [
        "cat", "ann", "margin", first.short]
    assert blame.loc["b", ["annotator", "source", "query"]].tolist() == ["bob", "suggestion", "audit"]
    assert blame.loc["b", "commit"] is None  # not committed yet
    history = store.item_history("a")
    assert history["action"].tolist() == ["label"] and history["in_scope"].all()


def test_revert_and_restore_append_events_and_can_be_taken_back(store):
    store.append("a", "cat")
    store.append("b", "dog")
    first = store.commit("first")
    store.append("a", "cow", action="relabel")
    store.append("c", "hen")
    slip = store.commit("the slip")
    revert = store.revert(slip.short)
    assert store.labels().to_dict() == {"a": "cat", "b": "dog"} == store.labels(at=first.id).to_dict()
    assert revert.message.startswith(f"Revert {slip.short}") and revert.labels_hash == first.labels_hash
    store.revert("HEAD")  # a revert is itself a commit that can be reverted
    assert store.labels().to_dict() == {"a": "cow", "b": "dog", "c": "hen"}
    store.append("b", "pig", action="relabel")
    with pytest.raises(StoreError, match="uncommitted changes"):
        store.restore(first.id)
    store.commit("pig")
    with pytest.raises(StoreError, match=r"2 of its items changed again since \(a, b\)"):
        store.revert(first.id)  # a and b changed since first was made
    store.restore(first.id)
    assert store.labels().to_dict() == {"a": "cat", "b": "dog"}
    events = store.events()
    assert len(events) == events["event_id"].nunique() and "revert" in set(events["source"])
    blame = store.blame()
    assert blame.loc["a", "annotator"] == "ann" and blame.loc["a", "source"] == "human"


def test_branches_keep_their_labels_apart_until_merged(tmp_path):
    main = LabelStore.open(tmp_path / "s", annotator="ann")
    for i in range(4):
        main.append(f"i{i}", "x")
    base = main.commit("base")
    main.branch("bob-fixes")
    with pytest.raises(StoreError, match="branch 'bob-fixes' exists already"):
        main.branch("bob-fixes")
    with pytest.raises(StoreError, match="no branch 'nope'"):
        LabelStore.open(tmp_path / "s", branch="nope")
    bob = LabelStore.open(tmp_path / "s", annotator="bob", branch="bob-fixes")
    assert bob.labels().to_dict() == main.labels().to_dict()
    bob.append("i0", "y", action="relabel")   # only bob changes i0
    bob.append("i1", "z", action="relabel")   # both change i1, differently: a conflict
    bob.append("i2", "w", action="relabel")   # both change i2, the same way
    bob.commit("bob's fixes")
    main.append("i1", "q", action="relabel")
    main.append("i2", "w", action="relabel")
    main.append("i3", "v", action="relabel")  # only main changes i3
    assert main.labels()["i0"] == "x"  # bob's labels stay on his branch
    with pytest.raises(StoreError, match="uncommitted changes"):
        main.merge("bob-fixes")
    main.commit("main's work")
    result = main.merge("bob-fixes")
    assert result.commit is None and result.conflicts.values.tolist() == [["i1", "x", "q", "z"]]
    assert main.labels().to_dict() == {"i0": "y", "i1": "q", "i2": "w", "i3": "v"}
    with pytest.raises(StoreError, match="1 unresolved conflicts"):
        main.commit("merge")
    with pytest.raises(StoreError, match="item 'i0' is not in conflict"):
        main.resolve("i0", "x")
    main.resolve("i1", "z")
    merged = main.commit("merge bob")
    assert len(merged.parents) == 2 and main.conflicts().empty
    assert main.labels().to_dict() == {"i0": "y", "i1": "z", "i2": "w", "i3": "v"}
    assert main.blame().loc["i0", "annotator"] == "bob"  # traced through the merge
    assert main.rev("HEAD~2") == base
    with pytest.raises(StoreError, match="already up to date"):
        main.merge("bob-fixes")
    with pytest.raises(StoreError, match="into itself"):
        main.merge("main")
    bob.merge("main")  # bob catches up: a fast-forward, nothing of his is left out
    assert bob.labels().to_dict() == main.labels().to_dict()


def test_abort_merge_takes_back_what_it_wrote(tmp_path):
    main = LabelStore.open(tmp_path / "s", annotator="ann")
    main.append("a", "x")
    main.append("b", "x")
    main.commit("base")
    main.branch("other")
    other = LabelStore.open(tmp_path / "s", branch="other")
    other.append("a", "y", action="relabel")
    other.append("b", "y", action="relabel")
    other.commit("other")
    main.append("a", "z", action="relabel")
    main.commit("ours")
    assert main.merge("other").conflicts["item_id"].tolist() == ["a"]
    assert main.labels().to_dict() == {"a": "z", "b": "y"}
    main.abort_merge()
    assert main.labels().to_dict() == {"a": "z", "b": "x"} and main.conflicts().empty
    with pytest.raises(StoreError, match="no merge is in progress"):
        main.resolve("a", "x")


def test_a_version_one_store_reads_as_main(tmp_path):
    """A store written before branches existed: its events have no branch or home."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "old"
    path.mkdir()
    (path / "_workbench.json").write_text(json.dumps({"format": "workbench-labelstore",
                                                      "schema_version": 1}))
    rows = [{"event_id": f"{k:032x}", "item_id": f"i{k}", "label": "x", "action": "label",
             "annotator": "ann", "time": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(k, "s"),
             "source": "human", "target": None, "query": "margin", "writer": "w1", "seq": k,
             "schema_version": 1} for k in range(3)]
    pq.write_table(pa.Table.from_pylist(rows), path / "part-w1-000000000000.parquet")
    store = LabelStore.open(path)
    assert store.labels().to_dict() == {"i0": "x", "i1": "x", "i2": "x"}
    assert json.loads((path / "_workbench.json").read_text())["schema_version"] == 3
    assert store.commit("first").n_labels == 3


def _run(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_kill_9_during_commits_and_merges_loses_nothing(tmp_path):
    path = tmp_path / "s"
    store = LabelStore.open(path)
    store.append("seed", "x")
    store.commit("seed")
    store.branch("side")
    from workbench.store.sync import clone

    clone(path, tmp_path / "copy")
    code = """
        import sys
        from workbench.store import LabelStore
        from workbench.store.sync import pull, push
        main = LabelStore.open(sys.argv[1], annotator="main")
        side = LabelStore.open(sys.argv[1], annotator="side", branch="side")
        copy = LabelStore.open(sys.argv[2], annotator="copy")
        for store in (main, copy):
            if (store.path / "_history" / "merging-main.json").exists():
                store.abort_merge()
        k = 0
        while True:
            print(main.append(f"m{k}", "x").event_id, flush=True)
            print(side.append(f"s{k}", "y").event_id, flush=True)
            main.commit(f"main {k}")
            side.commit(f"side {k}")
            main.merge("side")
            main.revert("HEAD")
            main.revert("HEAD")
            push(main, sys.argv[2])
            pull(copy)
            k += 1
    """
    for round_ in range(4):
        proc = _run(code, path, tmp_path / "copy")
        time.sleep(0.5 + round_ * 0.37)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate()
        acknowledged = out.split()
        reopened = LabelStore.open(path)
        assert set(acknowledged) <= set(reopened.events()["event_id"])
        assert set(acknowledged) <= set(pd.read_parquet(path)["event_id"])
        head = reopened.rev("HEAD")  # every commit a ref names is whole
        assert reopened.labels(at=head.id).size == head.n_labels
        copy = LabelStore.open(tmp_path / "copy")  # a push moves the ref last: every event its
        events = copy.events()                     # head commit names is there
        for writer, count in copy.rev("HEAD").frontier.items():
            assert set(range(count)) <= set(events.loc[events["writer"] == writer, "seq"])
        assert copy.labels(at="HEAD").size == copy.rev("HEAD").n_labels
        assert len(pd.read_parquet(tmp_path / "copy")) >= len(events)


@pytest.mark.slow
def test_two_processes_committing_at_once_never_lose_a_commit(tmp_path):
    path = tmp_path / "s"
    LabelStore.open(path).append("seed", "x")
    code = """
        import sys
        from workbench.store import LabelStore, StoreError
        store = LabelStore.open(sys.argv[1], annotator=sys.argv[2])
        made = []
        for k in range(15):
            store.append(f"{sys.argv[2]}-{k}", "x")
            try:
                made.append(store.commit(f"{sys.argv[2]} {k}").id)
            except StoreError:
                pass  # the other process committed our label already: nothing left to commit
        print(" ".join(made))
    """
    procs = [_run(code, path, who) for who in ("p1", "p2")]
    made = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        made += out.split()
    store = LabelStore.open(path)
    chain = store.log()["id"].tolist()
    assert set(made) <= set(chain)  # every commit is on the branch: none was overwritten
    assert len(chain) == len(set(chain)) == len(made)
    commits = [store.rev(c) for c in chain]
    assert all(len(c.parents) == 1 for c in commits[:-1]) and commits[-1].parents == ()
    assert store.labels().size == 31 and store.rev("HEAD").n_labels == 31


# -- sharing between folders ---------------------------------------------------------------------
def test_clone_push_pull_between_folders(tmp_path):
    from workbench.store.sync import clone, pull, push

    shared = LabelStore.open(tmp_path / "shared", annotator="ann")
    for i in range(6):
        shared.append(f"i{i}", "x")
    shared.commit("start")
    shared.append("i6", "y")  # uncommitted: the clone still starts from what ann sees
    laptop = clone(tmp_path / "shared", tmp_path / "laptop", annotator="bob")
    assert laptop.labels().to_dict() == shared.labels().to_dict()
    assert laptop.store_id != shared.store_id
    laptop.append("i0", "z", action="relabel")  # offline work
    laptop.append("b7", "y")
    with pytest.raises(StoreError, match="uncommitted changes; a push sends commits"):
        push(laptop)
    laptop.commit("bob's offline labels")
    shared.append("i8", "w")
    shared.commit("ann meanwhile")
    with pytest.raises(StoreError, match="has commits on 'main' that this store lacks"):
        push(laptop)
    result = pull(laptop)
    assert result["fast_forward"] is None  # diverged: merge
    laptop.merge("origin/main")
    summary = push(laptop)
    assert summary["files"] > 0
    again = LabelStore.open(tmp_path / "shared")
    assert again.labels().to_dict() == laptop.labels().to_dict()
    assert again.labels()["i0"] == "z" and again.labels()["i8"] == "w"
    assert push(laptop)["files"] == 0  # nothing new: nothing copied
    assert pull(LabelStore.open(tmp_path / "laptop"))["files"] == 0


def test_stores_of_other_classes_do_not_share(tmp_path):
    from workbench.store.sync import push

    a = LabelStore.open(tmp_path / "a")
    b = LabelStore.open(tmp_path / "b")
    a.bind(classes=["cat", "dog"], items_hash="1" * 32, n_items=2)
    b.bind(classes=["0", "1"], items_hash="1" * 32, n_items=2)
    a.append("x", "cat")
    a.commit("one")
    with pytest.raises(StoreError, match="different class sets"):
        push(a, tmp_path / "b")
    with pytest.raises(StoreError, match="is neither a remote of this store"):
        push(a, tmp_path / "nowhere")


# -- errors that suggest a command carry it for Python and for the command line (issue 18) ----
def test_a_hinted_error_reads_as_python_and_renders_for_the_command_line():
    import pickle

    from workbench.store.errors import RESTORE, make_branch

    error = StoreError("cannot revert: use ", RESTORE, " to make the labels equal to a commit")
    assert str(error) == "cannot revert: use store.restore(ref) to make the labels equal to a commit"
    assert error.hints == [RESTORE]
    assert (error.for_cli("'my labels'", " --branch fix") == "cannot revert: use `workbench "
            "restore 'my labels' REF --branch fix` to make the labels equal to a commit")
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == str(error) and again.hints == [RESTORE]
    plain = StoreError("no event 'x' in s")
    assert str(plain) == "no event 'x' in s" and plain.hints == [] and plain.for_cli("s") == str(plain)
    assert str(make_branch("fix")) == "store.branch('fix')"
    assert make_branch("fix").cli.replace("{store}", "s") == "`workbench branch s fix`"


# Python calls a store error may still name: no `workbench` verb does what they suggest
PYTHON_ONLY = {("writing.py", "store.events()"): "an undo target: there is no `workbench undo`"}


def test_no_store_error_names_a_python_call_in_its_plain_text():
    """Every suggested call is a Hint (str() shows it as Python, the CLI as a command); a call
    written into the message's text would reach command-line users as Python."""
    import ast
    import re
    from pathlib import Path

    import workbench.store

    found = []
    for source in sorted(Path(workbench.store.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                    "StoreError", "SchemaVersionError"):
                for text in (n.value for arg in node.args for n in ast.walk(arg)
                             if isinstance(n, ast.Constant) and isinstance(n.value, str)):
                    for call in re.findall(r"store\.\w+\(\)?", text):
                        if (source.name, call) not in PYTHON_ONLY:
                            found.append(f"{source.name}:{node.lineno}: {call}")
    assert not found
