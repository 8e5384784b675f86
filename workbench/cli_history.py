"""`workbench init|log|status|diff|blame|show|commit|tag|branch|merge|resolve|revert|restore|
clone|push|pull STORE`: label history on the command line, git-like text by default,
`--format csv|json` for scripts.

Every verb but `init` and `clone` works on a store that exists: `LabelStore.open` creates
one wherever it is pointed, so a mistyped path would otherwise become an empty store and
`log` would cheerfully say "no commits yet". pandas and the store are imported inside the
verbs, so `workbench --help` loads neither.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

VERBS = ("init", "log", "status", "diff", "blame", "show", "commit", "tag", "branch", "merge",
         "resolve", "revert", "restore", "clone", "push", "pull", "agreement")
STORE_META = "_workbench.json"  # the file that makes a folder a label store (store/log.py)


def add_commands(sub) -> None:
    def verb(name, help_, *, store=True):
        p = sub.add_parser(name, help=help_)
        if store:
            p.add_argument("store", help="the label store folder")
            p.add_argument("--branch", default="main", help="the branch to work on (default main)")
        p.add_argument("--format", default="text", choices=["text", "csv", "json"])
        return p

    verb("init", "make an empty label store in a new or empty folder", store=False).add_argument(
        "store", help="the folder to make the store in")
    verb("log", "the commits of a branch, newest first").add_argument("ref", nargs="?", default="HEAD")
    verb("status", "the branch, uncommitted changes, and the conflicts of a merge in progress")
    p = verb("diff", "how labels differ: HEAD and now (no refs), a commit and now, or two commits")
    p.add_argument("a", nargs="?", default="HEAD")
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
    p = verb("merge", "bring another branch's changes in (or --abort the merge in progress)")
    p.add_argument("ref", nargs="?", default=None)
    p.add_argument("-m", "--message", default=None)
    p.add_argument("--abort", action="store_true",
                   help="drop the merge in progress: the labels go back to what they were")
    p = verb("resolve", "settle a conflict of the merge in progress")
    p.add_argument("item", help="the item id in conflict")
    p.add_argument("label", nargs="?", default=None, help="the label it gets")
    p.add_argument("--remove", action="store_true", help="leave the item with no label")
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


def is_store(path) -> bool:
    return (Path(path) / STORE_META).is_file()


def require_store(path) -> Path:
    """`path`, when it holds a label store; else a ValueError saying so (nothing is created)."""
    path = Path(path)
    if not is_store(path):
        raise ValueError(f"not a label store: {path} (make one with `workbench init "
                         f"{_quote(path)}`, or copy one with `workbench clone SOURCE {_quote(path)}`)")
    return path


def run(args) -> int:
    """Run a verb; a store error that suggests what to do next says it as a `workbench`
    command on this store (and branch), not as the Python call `str()` of it gives."""
    from workbench.store import StoreError

    try:
        return _run(args)
    except StoreError as e:
        if not e.hints or getattr(args, "store", None) is None:
            raise
        branch = getattr(args, "branch", "main")
        raise type(e)(e.for_cli(_quote(args.store), "" if branch == "main" else
                                f" --branch {_quote(branch)}")) from e


def _run(args) -> int:
    from workbench.store import LabelStore, sync

    fmt = args.format
    if args.command == "clone":
        store = sync.clone(args.source, args.target)
        return _say(f"cloned {args.source} into {args.target} ({store.labels().size} labels)", fmt)
    if args.command == "init":
        if is_store(args.store):
            return _say(f"{args.store} is a label store already", fmt)
        LabelStore.open(args.store)
        return _say(f"initialised an empty label store in {args.store}", fmt)
    store = LabelStore.open(require_store(args.store), branch=args.branch)
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
                           f"{_inside(r)}  ({r.annotator}, {r.source})" for r in frame.itertuples()]
                          or ["no differences"])
        return _table(frame, fmt)
    if args.command == "status":
        return _status(store, args.store, fmt)
    if args.command == "blame":
        import pandas as pd

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
                                  f"{_txt(r.after)}{_inside(r)}" for r in frame.itertuples()])
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
        if args.abort == (args.ref is not None):
            raise ValueError("give the branch or commit to merge, or --abort, not both" if args.abort
                             else "name the branch or commit to merge (or --abort to drop the "
                                  "merge in progress)")
        if args.abort:
            # abort_merge looks for the merge's events only among those this handle has read,
            # and a fresh handle has read none: without this it drops the merge state but
            # keeps its resolutions (a store-side fix belongs in History.abort_merge).
            store.sync()
            store.abort_merge()
            return _say("merge aborted; the labels are as they were", fmt)
        result = store.merge(args.ref, args.message)
        if result.commit is None:
            print(f"{_count(len(result.conflicts), 'conflict')}; "
                  f"{_next_steps(args.store, result.conflicts)}:")
            _table(_conflict_table(result.conflicts, fmt), fmt)
            return 1
        return _say(f"merged: {result}", fmt)
    if args.command == "resolve":
        return _resolve(store, args, fmt)
    if args.command in ("revert", "restore"):
        return _say(str(getattr(store, args.command)(args.ref)), fmt)
    if args.command in ("push", "pull"):
        return _say(json.dumps(getattr(sync, args.command)(store, args.remote)), fmt)
    if args.command == "agreement":
        from workbench.loop.agreement import agreement
        from workbench.store.meta import read_meta

        figures = agreement(store.events(), task=read_meta(store.path).get("task") or "single")
        if fmt == "text":
            print(figures)
            return _table(figures.pairs, "text")
        return _table(figures.pairs, fmt)
    raise ValueError(f"unknown command {args.command!r}")


def _status(store, path, fmt: str) -> int:
    """Where the branch stands and, during a merge, what is left to do, as `git status` says."""
    state = store.status()
    conflicts = store.conflicts()
    if fmt == "json":
        print(json.dumps({**state, "conflicts": conflicts.to_dict(orient="records")}))
        return 0
    if fmt == "csv":
        return _table(conflicts, fmt)
    head = f"at {state['head']}" if state["head"] else "with no commits yet"
    print(f"On branch {state['branch']} {head}")
    if state["merging"] is not None:
        if len(conflicts):
            print(f"merging {state['merging']}: {_count(len(conflicts), 'conflict')} to resolve")
            _table(_conflict_table(conflicts, fmt), fmt)
        else:
            print(f"merging {state['merging']}: all conflicts resolved")
        return _lines([f"  {step}" for step in _next_steps(path, conflicts).split("; ")])
    if state["uncommitted"]:
        return _lines([f"{_count(state['uncommitted'], 'uncommitted change')} "
                       f"(`workbench diff {_quote(path)}` shows them; "
                       f"`workbench commit {_quote(path)} -m MESSAGE` records them)"])
    return _lines(["nothing to commit"])


def _resolve(store, args, fmt: str) -> int:
    from workbench.store.log import read_meta

    if args.remove == (args.label is not None):
        raise ValueError(f"give the label for {args.item!r} or --remove, not both" if args.remove
                         else f"give the label for {args.item!r}, or --remove to leave it with "
                              "no label")
    meta = read_meta(store.path)
    classes = meta.get("classes")
    single = meta.get("task", "single") == "single"  # a set or a span list: the store checks it
    if single and args.label is not None and classes and args.label not in classes:
        raise ValueError(f"label {args.label!r} is not one of the store's classes {classes}")
    store.resolve(args.item, args.label)
    left = len(store.conflicts())
    what = "no label" if args.label is None else args.label
    if left:
        return _say(f"resolved {args.item}: {what} ({_count(left, 'conflict')} left)", fmt)
    return _say(f"resolved {args.item}: {what} (no conflicts left; commit the merge with "
                f"`workbench commit {_quote(args.store)} -m MESSAGE`)", fmt)


def _next_steps(path, conflicts) -> str:
    """What to run next during a merge, with the store's path filled in (copy and paste)."""
    store = _quote(path)
    commit = f"`workbench commit {store} -m MESSAGE`"
    steps = ([f"settle each with `workbench resolve {store} ITEM LABEL` (or --remove for no "
              f"label)", f"then {commit}"] if len(conflicts) else [f"commit the merge with {commit}"])
    return "; ".join([*steps, f"`workbench merge {store} --abort` drops the merge"])


def _conflict_table(conflicts, fmt: str):
    """Conflicts as printed: a missing label reads "(none)" in text, as in `diff`."""
    return conflicts if fmt != "text" else conflicts.map(_txt)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _quote(path) -> str:
    return shlex.quote(str(path))


def _sign(change: str) -> str:
    return {"added": "+", "removed": "-", "changed": "~"}[change]


def _inside(row) -> str:
    """A multi-label item's change within its set, "  [+odd -even]", a document's within its
    span list, "  [span 12-19 PER -> ORG, +span 0-5 PER]", or ""."""
    from workbench.store import schema
    from workbench.store.diffing import inside

    what = inside(*(None if schema.missing(v) else v for v in (row.before, row.after)))
    return f"  [{what}]" if what else ""


def _txt(value) -> str:
    return "(none)" if value is None or (isinstance(value, float) and value != value) else str(value)


def _say(text: str, fmt: str) -> int:
    print(json.dumps({"result": text}) if fmt == "json" else text)
    return 0


def _lines(lines: list[str]) -> int:
    print("\n".join(lines))
    return 0


def _table(frame, fmt: str) -> int:
    if fmt == "csv":
        frame.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        print(frame.to_json(orient="records", date_format="iso", default_handler=str))
    else:
        print(frame.to_string(index=False) if len(frame) else "(nothing)")
    return 0

