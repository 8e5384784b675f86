"""`workbench log|diff|blame|show|commit|tag|branch|merge|revert|restore|clone|push|pull`."""

from __future__ import annotations

import json

import pandas as pd

from workbench import cli
from workbench.store import LabelStore


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
    assert code == 1 and "1 conflicts" in out and "a" in out
    LabelStore.open(tmp_path / "laptop").resolve("a", "z")
    assert run(capsys, "commit", tmp_path / "laptop", "-m", "merged")[0] == 0
    assert run(capsys, "push", tmp_path / "laptop")[0] == 0
    assert LabelStore.open(shared).labels().to_dict() == {"a": "z", "b": "x"}
    assert pd.read_parquet(shared)["event_id"].is_unique
