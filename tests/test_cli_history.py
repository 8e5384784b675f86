"""`workbench log|diff|blame|show|commit|tag|branch|merge|revert|restore|clone|push|pull`."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pandas as pd
import pytest

from workbench import cli
from workbench.store import LabelStore, StoreError


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_history_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "store"
    store = LabelStore.open(path, annotator="ann")
    for i in range(3):
        store.append(f"i{i}", "cat")
    assert run(capsys, "commit", path, "-m", "three cats")[0] == 0
    store.append("i0", "dog", action="relabel")
    code, out, _ = run(capsys, "commit", path, "-m", "a dog", "--author", "bob")
    assert code == 0 and "a dog (3 labels, bob" in out
    code, out, _ = run(capsys, "log", path)
    lines = out.splitlines()
    assert len(lines) == 2 and "a dog (+0 ~1 -0, 3 labels)" in lines[0] and "three cats" in lines[1]
    assert run(capsys, "diff", path, "HEAD~1", "HEAD")[1].strip() == "~ i0: cat -> dog  (ann, human)"
    code, out, _ = run(capsys, "diff", path, "HEAD~1", "--format", "json")
    assert json.loads(out)[0]["item_id"] == "i0"
    code, out, _ = run(capsys, "blame", path, "i0", "--format", "csv")
    assert out.splitlines()[1].startswith("i0,dog,ann,")
    code, out, _ = run(capsys, "show", path)
    assert out.startswith("commit ") and "~ i0: cat -> dog" in out
    assert run(capsys, "tag", path, "v1")[0] == 0
    assert "v1" in run(capsys, "tag", path)[1]
    assert run(capsys, "branch", path, "fix")[0] == 0
    assert run(capsys, "revert", path, "HEAD")[0] == 0
    assert LabelStore.open(path).labels()["i0"] == "cat"
    assert run(capsys, "restore", path, "v1")[0] == 0
    assert LabelStore.open(path).labels()["i0"] == "dog"
    code, _, err = run(capsys, "diff", path, "nope")
    assert code == 2 and "unknown ref 'nope'" in err and "tags: v1" in err
    code, _, err = run(capsys, "commit", path, "-m", "again")
    assert code == 2 and "nothing to commit" in err


def test_merge_clone_push_pull_on_the_command_line(tmp_path, capsys):
    shared = tmp_path / "shared"
    store = LabelStore.open(shared, annotator="ann")
    store.append("a", "x")
    store.append("b", "x")
    store.commit("base")
    assert run(capsys, "clone", shared, tmp_path / "laptop")[0] == 0
    laptop = LabelStore.open(tmp_path / "laptop", annotator="bob")
    laptop.append("a", "y", action="relabel")
    laptop.commit("bob")
    store.append("a", "z", action="relabel")
    store.commit("ann")
    assert run(capsys, "pull", tmp_path / "laptop")[0] == 0
    code, out, _ = run(capsys, "merge", tmp_path / "laptop", "origin/main")
    assert code == 1 and out.startswith("1 conflict;") and "a" in out
    LabelStore.open(tmp_path / "laptop").resolve("a", "z")
    assert run(capsys, "commit", tmp_path / "laptop", "-m", "merged")[0] == 0
    assert run(capsys, "push", tmp_path / "laptop")[0] == 0
    assert LabelStore.open(shared).labels().to_dict() == {"a": "z", "b": "x"}
    assert pd.read_parquet(shared)["event_id"].is_unique


# -- a path with no store is refused, never created (issue 17, item 11) -------------------------
def test_every_verb_refuses_a_path_that_holds_no_store_and_creates_nothing(tmp_path, capsys):
    typo = tmp_path / "stroe"
    empty = tmp_path / "empty"
    empty.mkdir()
    verbs = [["log"], ["status"], ["diff"], ["blame"], ["show"], ["commit", "-m", "x"], ["tag"],
             ["branch"], ["merge", "main"], ["merge", "--abort"], ["revert", "HEAD"],
             ["restore", "HEAD"], ["push"], ["pull"], ["agreement"], ["resolve", "a", "x"],
             ["export", "--out", tmp_path / "bundle"]]
    for path in (typo, empty):
        for verb, *rest in verbs:
            code, out, err = run(capsys, verb, path, *rest)
            assert code != 0 and f"not a label store: {path}" in err, (verb, out, err)
            assert "workbench init" in err  # and what to do instead
    assert not typo.exists() and list(empty.iterdir()) == []
    assert not (tmp_path / "bundle").exists()


def test_init_makes_an_empty_store_and_log_then_says_no_commits_yet(tmp_path, capsys):
    path = tmp_path / "new" / "store"
    code, out, _ = run(capsys, "init", path)
    assert code == 0 and out.strip() == f"initialised an empty label store in {path}"
    assert run(capsys, "log", path)[1].strip() == "no commits yet"
    code, out, _ = run(capsys, "init", path)  # again: says so, changes nothing
    assert code == 0 and out.strip() == f"{path} is a label store already"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("not a store")
    code, _, err = run(capsys, "init", tmp_path / "notes")
    assert code == 2 and "holds something else (todo.txt)" in err


# -- conflicts on the command line (issue 17, item 12) --------------------------------------------
def conflicted(path):
    """A store whose main and branch `bob` both changed items a, b and c since `base`."""
    store = LabelStore.open(path, annotator="ann")
    for item in "abc":
        store.append(item, "x")
    store.commit("base")
    store.branch("bob")
    bob = LabelStore.open(path, annotator="bob", branch="bob")
    for item in "abc":
        bob.append(item, "y", action="relabel")
    bob.commit("bob's labels")
    for item in "abc":
        store.append(item, "z", action="relabel")
    store.commit("ann's labels")
    return store


def test_conflicts_are_listed_resolved_and_committed_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "store"
    conflicted(path)
    code, out, _ = run(capsys, "merge", path, "bob")
    assert code == 1 and out.startswith("3 conflicts")
    assert f"workbench resolve {path} ITEM LABEL" in out and "--abort" in out

    code, out, _ = run(capsys, "status", path)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("On branch main at ") and "merging " in lines[1]
    assert "3 conflicts to resolve" in lines[1]
    assert lines[2].split() == ["item_id", "base", "ours", "theirs"]
    assert [line.split() for line in lines[3:6]] == [["a", "x", "z", "y"], ["b", "x", "z", "y"],
                                                    ["c", "x", "z", "y"]]
    assert f"workbench resolve {path} ITEM LABEL" in out and "--remove" in out
    assert f"workbench merge {path} --abort" in out
    status = json.loads(run(capsys, "status", path, "--format", "json")[1])
    assert status["branch"] == "main" and status["merging"] is not None
    assert status["conflicts"][0] == {"item_id": "a", "base": "x", "ours": "z", "theirs": "y"}

    code, out, _ = run(capsys, "resolve", path, "a", "y")
    assert code == 0 and out.strip() == "resolved a: y (2 conflicts left)"
    code, out, _ = run(capsys, "resolve", path, "b", "--remove")
    assert code == 0 and out.strip() == "resolved b: no label (1 conflict left)"
    code, _, err = run(capsys, "resolve", path, "zz", "x")
    assert code == 2 and "'zz' is not in conflict" in err
    code, _, err = run(capsys, "resolve", path, "c")
    assert code == 2 and "give the label" in err and "--remove" in err
    code, _, err = run(capsys, "resolve", path, "c", "x", "--remove")
    assert code == 2 and "not both" in err
    code, out, _ = run(capsys, "resolve", path, "c", "z")
    assert code == 0 and "no conflicts left" in out and f"workbench commit {path} -m" in out
    code, out, _ = run(capsys, "status", path)
    assert "all conflicts resolved" in out and f"workbench commit {path} -m" in out
    assert run(capsys, "commit", path, "-m", "merged bob")[0] == 0
    assert LabelStore.open(path).labels().to_dict() == {"a": "y", "c": "z"}
    code, out, _ = run(capsys, "status", path)
    assert "merging" not in out and "nothing to commit" in out


def test_a_merge_is_aborted_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "store"
    conflicted(path)
    assert run(capsys, "merge", path, "bob")[0] == 1
    assert run(capsys, "resolve", path, "a", "y")[0] == 0
    code, out, _ = run(capsys, "merge", path, "--abort")
    assert code == 0 and out.strip() == "merge aborted; the labels are as they were"
    assert LabelStore.open(path).labels().to_dict() == {"a": "z", "b": "z", "c": "z"}
    code, out, _ = run(capsys, "status", path)
    assert "merging" not in out and "nothing to commit" in out
    code, _, err = run(capsys, "merge", path, "--abort")
    assert code == 2 and "no merge is in progress" in err
    code, _, err = run(capsys, "merge", path)
    assert code == 2 and "name the branch or commit to merge" in err
    code, _, err = run(capsys, "merge", path, "bob", "--abort")
    assert code == 2 and "not both" in err


def test_resolve_refuses_a_label_outside_the_stores_classes(tmp_path, capsys):
    path = tmp_path / "store"
    conflicted(path).bind(classes=["x", "y", "z"], items_hash="0" * 16, n_items=3)
    assert run(capsys, "merge", path, "bob")[0] == 1
    code, _, err = run(capsys, "resolve", path, "a", "w")
    assert code == 2 and "label 'w' is not one of the store's classes ['x', 'y', 'z']" in err


# -- diff with no ref, and Commit objects as refs (issue 17, item 14) -----------------------------
def test_diff_without_a_ref_compares_the_working_labels_with_head(tmp_path, capsys):
    path = tmp_path / "store"
    store = LabelStore.open(path, annotator="ann")
    store.append("a", "cat")
    store.commit("a cat")
    assert run(capsys, "diff", path)[1].strip() == "no differences"
    store.append("a", "dog", action="relabel")
    store.append("b", "cat")
    code, out, _ = run(capsys, "diff", path)
    assert code == 0 and out.splitlines() == ["~ a: cat -> dog  (ann, human)",
                                              "+ b: (none) -> cat  (ann, human)"]


def two_commits(path):
    store = LabelStore.open(path, annotator="ann")
    store.append("a", "cat")
    first = store.commit("a cat")
    store.append("a", "dog", action="relabel")
    second = store.commit("a dog")
    return store, first, second


def test_diff_takes_commit_objects(tmp_path):
    store, first, second = two_commits(tmp_path / "store")
    assert store.diff(first, second)[["item_id", "before", "after"]].values.tolist() == [
        ["a", "cat", "dog"]]
    assert store.diff(first)["after"].tolist() == ["dog"]


def test_labels_at_takes_a_commit_object(tmp_path):
    store, first, second = two_commits(tmp_path / "store")
    assert store.labels(at=first).to_dict() == {"a": "cat"}
    assert store.current_labels_at(second)["label"].to_dict() == {"a": "dog"}


def test_revert_takes_a_commit_object(tmp_path):
    store, _, second = two_commits(tmp_path / "store")
    store.revert(second)
    assert store.labels().to_dict() == {"a": "cat"}


def test_restore_takes_a_commit_object(tmp_path):
    store, first, _ = two_commits(tmp_path / "store")
    store.restore(first)
    assert store.labels().to_dict() == {"a": "cat"}


def test_merge_takes_a_commit_object(tmp_path):
    store, first, _ = two_commits(tmp_path / "store")
    store.branch("side", at=first)
    side = LabelStore.open(tmp_path / "store", branch="side")
    side.append("b", "cat")
    theirs = side.commit("b cat")
    result = store.merge(theirs)
    assert result.commit is not None and store.labels().to_dict() == {"a": "dog", "b": "cat"}


def test_session_at_takes_a_commit_object(tmp_path):
    from workbench.data.pool import Pool
    from workbench.learn.learners import logistic_regression
    from workbench.loop.session import Session

    X = np.arange(40, dtype=float).reshape(20, 2)
    pool = Pool.from_arrays(X, np.repeat(["cat", "dog"], 10))
    store = LabelStore.open(tmp_path / "store", annotator="ann")
    store.append(pool.item_ids[0], "cat")
    first = store.commit("one label")
    store.append(pool.item_ids[1], "dog")
    store.commit("two labels")
    session = Session(pool, store.path, at=first, learner=logistic_regression(), watch=False)
    try:
        assert session.at == first.id and session.labels == {pool.item_ids[0]: "cat"}
    finally:
        session.close()


# -- errors suggest the command in the user's language (issue 18, item 6) -------------------------
def _no_commits(path):
    LabelStore.open(path).append("a", "x")
    return LabelStore.open(path)


def _on_bob_merging_main(path):
    """Branch bob with a merge of main in progress, its conflicts unresolved."""
    conflicted(path)
    bob = LabelStore.open(path, annotator="bob", branch="bob")
    assert bob.merge("main").commit is None
    return bob


def _changed_again(path):
    store = LabelStore.open(path)
    for label, action in (("x", "label"), ("y", "relabel"), ("z", "relabel")):
        store.append("a", label, action=action)
        store.commit(f"a is {label}")
    return store


def _behind_origin(path):
    """A clone whose origin got a commit it lacks, with a commit of its own: push is refused."""
    from workbench.store.sync import clone

    origin = LabelStore.open(path.parent / "origin", annotator="ann")
    origin.append("a", "x")
    origin.commit("a")
    store = clone(origin.path, path)
    origin.append("b", "y")
    origin.commit("b")
    store.append("c", "z")
    store.commit("c")
    return store


def _push(store):
    from workbench.store.sync import push

    return push(store)


# (what is set up, the Python call, the command's words after the store path,
#  the hints Python gives, the hints the command line gives: {} is the store path as typed)
HINTED = {
    "no commits yet": (_no_commits, lambda s: s.rev("HEAD"), ["diff"],
                       ["make one with store.commit(message)"],
                       ["make one with `workbench commit {} -m MESSAGE`"]),
    "unresolved conflicts": (_on_bob_merging_main, lambda s: s.commit("done"),
                             ["commit", "-m", "done", "--branch", "bob"],
                             ["resolve each with store.resolve(item_id, label), or "
                              "store.abort_merge()"],
                             ["resolve each with `workbench resolve {} ITEM LABEL --branch bob`, or "
                              "`workbench merge {} --abort --branch bob`"]),
    "a merge in progress": (_on_bob_merging_main, lambda s: s.merge("main"),
                            ["merge", "main", "--branch", "bob"],
                            ["resolve its conflicts (store.conflicts()) and commit, or "
                             "store.abort_merge()"],
                            ["resolve its conflicts (`workbench status {} --branch bob` lists them) "
                             "and commit, or `workbench merge {} --abort --branch bob`"]),
    "revert of items changed again": (_changed_again, lambda s: s.revert("HEAD~1"),
                                      ["revert", "HEAD~1"],
                                      ["use store.restore(ref) to make the labels equal"],
                                      ["use `workbench restore {} REF` to make the labels equal"]),
    "push behind": (_behind_origin, lambda s: _push(s), ["push"],
                    ["pull, merge (store.merge('origin/main')), then push"],
                    ["pull, merge (`workbench merge {} origin/main`), then push"]),
    "no such branch": (_no_commits, lambda s: LabelStore.open(s.path, branch="nope"),
                       ["log", "--branch", "nope"], ["(make one with store.branch('nope'))"],
                       ["(make one with `workbench branch {} nope`)"]),
}


@pytest.mark.parametrize("case", list(HINTED))
def test_store_errors_suggest_python_in_python_and_commands_on_the_command_line(tmp_path, capsys,
                                                                                  case):
    setup, call, words, python, command = HINTED[case]
    path = tmp_path / "my labels"  # a path the shell needs quoted
    store = setup(path)
    with pytest.raises(StoreError) as python_error:
        call(store)
    assert all(hint in str(python_error.value) for hint in python), str(python_error.value)
    assert "workbench " not in str(python_error.value)
    code, _, err = run(capsys, words[0], path, *words[1:])
    quoted = shlex.quote(str(path))
    assert code == 2 and all(hint.format(quoted, quoted) in err for hint in command), err
    assert "store." not in err.replace(str(path), "") and err.count("\n") == 1
    # the same message otherwise, word for word
    hints = python_error.value.hints
    assert hints and err.strip() == "workbench: error: " + python_error.value.for_cli(
        quoted, " --branch bob" if "bob" in words else "")
