"""`workbench log|diff|blame|show|commit|tag|branch|merge|revert|restore|clone|push|pull STORE`:
label history on the command line, git-like text by default, `--format csv|json` for scripts."""

from __future__ import annotations

import json
import sys

import pandas as pd

VERBS = ("log", "diff", "blame", "show", "commit", "tag", "branch", "merge", "revert", "restore",
         "clone", "push", "pull", "agreement")


def add_commands(sub) -> None:
    def verb(name, help_, *, store=True):
        p = sub.add_parser(name, help=help_)
        if store:
            p.add_argument("store", help="the label store folder")
            p.add_argument("--branch", default="main", help="the branch to work on (default main)")
        p.add_argument("--format", default="text", choices=["text", "csv", "json"])
        return p

    verb("log", "the commits of a branch, newest first").add_argument("ref", nargs="?", default="HEAD")
    p = verb("diff", "how labels differ between two commits (or a commit and now)")
    p.add_argument("a")
    p.add_argument("b", nargs="?", default=None)
    verb("blame", "who gave each label, when, why, in which commit").add_argument(
        "items", nargs="*", help="item ids (default: every labeled item)")
    verb("show", "one commit and what it changed").add_argument("ref", nargs="?", default="HEAD")
    p = verb("commit", "record the current labels as a commit")
    p.add_argument("-m", "--message", required=True)
    p.add_argument("--author", default=None)
    p = verb("tag", "name a commit (or list tags)")
    p.add_argument("name", nargs="?")
    p.add_argument("ref", nargs="?", default="HEAD")
    p = verb("branch", "start a branch (or list branches)")
    p.add_argument("name", nargs="?")
    p.add_argument("--at", default="HEAD")
    p = verb("merge", "bring another branch's changes in")
    p.add_argument("ref")
    p.add_argument("-m", "--message", default=None)
    verb("revert", "take back one commit's changes").add_argument("ref")
    verb("restore", "make the labels equal to a commit's").add_argument("ref")
    p = verb("clone", "copy a store into a new folder", store=False)
    p.add_argument("source")
    p.add_argument("target")
    verb("push", "send commits to another store folder").add_argument("remote", nargs="?",
                                                                       default="origin")
    verb("pull", "fetch another store folder's commits").add_argument("remote", nargs="?",
                                                                       default="origin")
    verb("agreement", "agreement between the store's annotators")


def run(args) -> int:
    from workbench.store import LabelStore, sync

    fmt = args.format
    if args.command == "clone":
        store = sync.clone(args.source, args.target)
        return _say(f"cloned {args.source} into {args.target} ({store.labels().size} labels)", fmt)
    store = LabelStore.open(args.store, branch=args.branch)
    if args.command == "log":
        frame = store.log(args.ref)
        if fmt == "text":
            lines = [f"{c.commit} {c.time:%Y-%m-%d %H:%M} {c.author:<10} {c.message} "
                     f"(+{c.added} ~{c.changed} -{c.removed}, {c.n_labels} labels)"
                     for c in frame.itertuples()]
            return _lines(lines or ["no commits yet"])
        return _table(frame, fmt)
    if args.command == "diff":
        frame = store.diff(args.a, args.b)
        if fmt == "text":
            return _lines([f"{_sign(r.change)} {r.item_id}: {_txt(r.before)} -> {_txt(r.after)}"
                           f"  ({r.annotator}, {r.source})" for r in frame.itertuples()]
                          or ["no differences"])
        return _table(frame, fmt)
    if args.command == "blame":
        frame = store.blame(args.items or None).reset_index()
        if fmt == "text":
            return _lines([f"{r.commit or 'uncommitted':<11} {r.item_id}: {r.label}  "
                           f"{r.annotator}, {pd.Timestamp(r.time):%Y-%m-%d %H:%M}, {r.source}, "
                           f"shown as {r.query}" for r in frame.itertuples()])
        return _table(frame, fmt)
    if args.command == "show":
        commit = store.rev(args.ref)
        parent = commit.parents[0] if commit.parents else None
        frame = store._diff(store._commit_frontier(parent), commit.frontier)
        if fmt == "text":
            head = [f"commit {commit.id}", f"Author: {commit.author}", f"Date:   {commit.time}",
                    f"Parents: {' '.join(commit.parents) or '-'}", "", f"    {commit.message}", "",
                    f"{commit.n_labels} labels, labels_hash {commit.labels_hash}"]
            return _lines(head + [f"{_sign(r.change)} {r.item_id}: {_txt(r.before)} -> "
                                  f"{_txt(r.after)}" for r in frame.itertuples()])
        return _table(frame, fmt)
    if args.command == "commit":
        return _say(str(store.commit(args.message, args.author)), fmt)
    if args.command == "tag":
        if args.name is None:
            return _table(store.tags(), fmt)
        return _say(f"tagged {store.tag(args.name, args.ref).short} as {args.name}", fmt)
    if args.command == "branch":
        if args.name is None:
            return _table(store.branches(), fmt)
        return _say(f"branch {args.name} at {store.branch(args.name, args.at).short}", fmt)
    if args.command == "merge":
        result = store.merge(args.ref, args.message)
        if result.commit is None:
            print(f"{len(result.conflicts)} conflicts; resolve each (store.resolve(item_id, label) "
                  f"in Python), then commit:")
            _table(result.conflicts, "text" if fmt == "text" else fmt)
            return 1
        return _say(f"merged: {result}", fmt)
    if args.command in ("revert", "restore"):
        return _say(str(getattr(store, args.command)(args.ref)), fmt)
    if args.command in ("push", "pull"):
        return _say(json.dumps(getattr(sync, args.command)(store, args.remote)), fmt)
    if args.command == "agreement":
        from workbench.loop.agreement import agreement

        figures = agreement(store.events())
        if fmt == "text":
            print(figures)
            return _table(figures.pairs, "text")
        return _table(figures.pairs, fmt)
    raise ValueError(f"unknown command {args.command!r}")


def _sign(change: str) -> str:
    return {"added": "+", "removed": "-", "changed": "~"}[change]


def _txt(value) -> str:
    return "(none)" if value is None or (isinstance(value, float) and value != value) else str(value)


def _say(text: str, fmt: str) -> int:
    print(json.dumps({"result": text}) if fmt == "json" else text)
    return 0


def _lines(lines: list[str]) -> int:
    print("\n".join(lines))
    return 0


def _table(frame: pd.DataFrame, fmt: str) -> int:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", date_format="iso", default_handler=str))
    else:
        print(frame.to_string(index=False) if len(frame) else "(nothing)")
    return 0

