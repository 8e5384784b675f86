"""The `workbench` command: `workbench lab` opens the quickstart, `workbench simulate`
runs the active-learning loop against the ground truth, `workbench log|diff|blame|...`
read and write label history (workbench.cli_history), and `workbench export|predict|models`
export, apply and share model bundles (workbench.cli_models)."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

# Building the parser imports nothing heavy (strategies need numpy alone): each verb imports
# what it needs when it runs, so `--help` and the history verbs never wait for torch,
# scikit-learn, onnx or Altair (tests/test_cli_imports.py keeps it so).
from workbench import cli_history, cli_models
from workbench.cli_data import load_data as load_data  # re-exported: imported from here too
from workbench.learn.strategies import STRATEGIES

TABLES = (".csv", ".tsv", ".txt", ".parquet", ".pq")  # files with columns, as loaders reads them


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="workbench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="simulate labeling with the ground truth as annotator")
    sim.add_argument("--data", default="digits", help="'digits' or a .npz/.csv/.parquet file or image folder")
    sim.add_argument("--label-column", default=None, help="ground-truth column of a CSV/Parquet file")
    sim.add_argument("--text-column", default=None,
                     help="column of texts to label in a CSV/Parquet file (a text pool)")
    sim.add_argument("--strategy", default="diverse_margin", choices=list(STRATEGIES))
    sim.add_argument("--learner", default="head", choices=["head", "torch", "logreg"],
                     help="head: the default (a light head on the pool's representation); torch: "
                          "TorchClassifier on the pool's features; logreg: logistic regression")
    sim.add_argument("--budget", type=int, default=200, help="labels to reach")
    sim.add_argument("--batch", type=int, default=10, help="labels per round")
    sim.add_argument("--initial", type=int, default=20, help="labels before the first model")
    sim.add_argument("--cold-start", choices=["queue", "random"], default="queue",
                     help="the first labels: the session's cold start (what the widget shows "
                          "first) or the same random items for every strategy")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--out", default=None,
                     help="CSV of n_labels,accuracy,macro_f1,balanced_accuracy,strategy,seed and "
                          "recall_<class> per class")

    lab = sub.add_parser("lab", help="open JupyterLab on the quickstart notebook")
    lab.add_argument("--dir", default=None,
                     help="where to put the notebooks (default: ./workbench-notebooks)")
    lab.add_argument("--no-browser", action="store_true")
    lab.add_argument("--port", type=int, default=None)
    cli_history.add_commands(sub)
    cli_models.add_commands(sub)

    args = parser.parse_args(argv)
    with warnings.catch_warnings():  # restores how warnings are shown when main returns
        warnings.showwarning = _showing_warnings(warnings.showwarning)
        return _run(args)


def _run(args) -> int:
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command in cli_history.VERBS:
            return cli_history.run(args)
        if args.command in cli_models.VERBS:
            return cli_models.run(args)
        return _lab(args)
    except (ValueError, KeyError, FileNotFoundError) as e:
        print(f"workbench: error: {e}", file=sys.stderr)
        return 2


def _showing_warnings(show):
    """`warnings.showwarning` that says the files a folder's loader skipped as the command's
    own warning, and shows other warnings as `show` does."""
    def showwarning(message, category, filename, lineno, file=None, line=None) -> None:
        from workbench.data.loaders import SkippedFilesWarning

        if issubclass(category, SkippedFilesWarning):
            print(f"workbench: warning: {message}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return showwarning


def _simulate(args) -> int:
    import pandas as pd

    from workbench.loop import pool_source

    source = pool_source.from_data_flag(args.data, args.label_column, args.text_column)
    if _has_no_labels(source):  # known from the file's header: no need to read it all first
        raise ValueError(f"simulation needs ground truth labels, and pool "
                         f"{Path(source['path']).stem!r} has none; {_where_labels_are(source)}")
    pool = pool_source.load(source)
    if not pool.has_ground_truth:
        raise ValueError(f"simulation needs ground truth labels, and pool {pool.name!r} has none; "
                         f"{_where_labels_are(source)}")
    from workbench.learn.learners import make_learner
    from workbench.loop.simulate import simulate

    curve = simulate(pool, strategy=args.strategy, learner=make_learner(args.learner, args.seed),
                     budget=args.budget, batch=args.batch, initial=args.initial, seed=args.seed,
                     cold_start=args.cold_start,
                     progress=lambda n, acc: print(f"n_labels={n} accuracy={acc:.4f}", flush=True))
    if args.out:
        recall = pd.DataFrame(list(curve["recall"])).add_prefix("recall_")
        curve.drop(columns="recall").join(recall).to_csv(args.out, index=False)
        print(f"wrote {args.out}")
    last = curve.iloc[-1]
    print(f"macro_f1@{int(last['n_labels'])}={last['macro_f1']:.4f} "
          f"balanced_accuracy@{int(last['n_labels'])}={last['balanced_accuracy']:.4f}")
    print(f"accuracy@{int(last['n_labels'])}={last['accuracy']:.4f}")
    return 0


def _where_labels_are(source: dict) -> str:
    """How to give `workbench simulate` the true labels of the data `source` names."""
    from workbench.data.loaders import first_few

    if source["kind"] == "folder":
        return ("--data needs one subfolder per class (cats/1.png, dogs/2.png), whose names "
                "are the true labels")
    if source["kind"] != "file":
        return "give --data with them"
    path = Path(source["path"])
    if path.suffix.lower() not in TABLES:
        return f"{path.name} needs an array 'y' of true labels beside 'X'"
    hint = "give the column that holds the true labels with --label-column NAME"
    try:
        columns = _columns(path)
    except Exception:  # noqa: BLE001 - the hint stands without the column list
        return hint
    columns = [c for c in columns if c != source.get("text_column")]
    if not columns:
        return hint
    return f"{hint} ({path.name} has columns {first_few([repr(c) for c in columns], shown=12)})"


def _has_no_labels(source: dict) -> bool:
    """Whether the CSV/Parquet file `source` names surely holds no ground truth: no
    --label-column, and no column 'y' (which a file's loader takes as the labels)."""
    if source["kind"] != "file" or source.get("label_column") is not None:
        return False
    path = Path(source["path"])
    if path.suffix.lower() not in TABLES:
        return False
    try:
        return "y" not in _columns(path)
    except Exception:  # noqa: BLE001 - an unreadable file: loading it says what is wrong
        return False


def _columns(path: Path) -> list[str]:
    """The column names of a CSV/TSV or Parquet file, read from its header alone."""
    import pandas as pd

    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        return [n for n in names if not n.startswith("__index_level_")]
    return [str(c) for c in pd.read_csv(path, nrows=0, sep="\t" if path.suffix.lower() == ".tsv"
                                        else ",").columns]


def _lab(args) -> int:
    from workbench.notebooks import open_lab

    return open_lab(args.dir, no_browser=args.no_browser, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
