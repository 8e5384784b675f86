"""The `workbench` command: `workbench lab` opens the quickstart, `workbench simulate`
runs the active-learning loop against the ground truth, `workbench log|diff|blame|...`
read and write label history (workbench.cli_history), and `workbench export|predict|models`
export, apply and share model bundles (workbench.cli_models)."""

from __future__ import annotations

import argparse
import sys

# Building the parser imports nothing heavy (strategies need numpy alone): each verb imports
# what it needs when it runs, so `--help` and the history verbs never wait for torch,
# scikit-learn, onnx or Altair (tests/test_cli_imports.py keeps it so).
from workbench import cli_history, cli_models
from workbench.learn.strategies import STRATEGIES


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


def load_data(data: str, label_column: str | None = None, text_column: str | None = None):
    """The pool that `--data` (with `--label-column`, `--text-column`) names; it remembers
    where it came from, so a session opened on it records that in its store."""
    from workbench.loop import pool_source

    return pool_source.load(pool_source.from_data_flag(data, label_column, text_column))


def _simulate(args) -> int:
    import pandas as pd

    from workbench.learn.learners import make_learner
    from workbench.loop.simulate import simulate

    pool = load_data(args.data, args.label_column, args.text_column)
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


def _lab(args) -> int:
    from workbench.notebooks import open_lab

    return open_lab(args.dir, no_browser=args.no_browser, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
