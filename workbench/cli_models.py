"""`workbench export|predict|models`: a labeled store's model as a bundle, predictions
from a bundle on new data, and the folder model registry, on the command line.

`export` reopens the store the way a notebook would (same pool, learner and seed), so the
model it writes is the one the session last trained, retrained first when labels came
after it (see `workbench.loop.export`). The pool is the one the store records (see
`workbench.loop.pool_source`) unless `--data` names it. `predict` needs no store and no
pool: the bundle alone says what one item is (`config.json`'s input signature), and the
data are read by that kind. Building a Pool instead would be wrong for text, which would
fit a new vectoriser to the new texts rather than use the one the model learned with; the
exception is predicting over the pool the model learned on (no DATA, or a store as DATA),
whose features are the ones it was trained with.

numpy, pandas and the learners are imported inside the verbs: `workbench --help` and the
history verbs build this parser too.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from workbench.cli_data import read_items
from workbench.learn.strategies import MULTI_LABEL_STRATEGIES, STRATEGIES

VERBS = ("export", "predict", "models")
DATA_FLAG = ("pass --data (a .npz/.csv/.parquet file, an image folder or 'digits'), with "
             "--label-column/--text-column as the session read it")


def add_commands(sub) -> None:
    exp = sub.add_parser("export", help="write a store's latest model as a bundle (folder or zip)")
    exp.add_argument("store", help="the label store folder")
    exp.add_argument("--out", required=True, help="the bundle folder (or .zip file, with --zip)")
    exp.add_argument("--data", default=None,
                     help="the pool the store labels: 'digits' or a .npz/.csv/.parquet file or "
                          "image folder, as given to the session (default: where the store "
                          "records its pool came from)")
    exp.add_argument("--label-column", default=None, help="ground-truth column of a CSV/Parquet file")
    exp.add_argument("--text-column", default=None, help="column of texts in a CSV/Parquet file")
    exp.add_argument("--learner", default="head", choices=["head", "torch", "logreg"],
                     help="the learner the session used (default head: the light head for one class "
                          "per item, MultiLabelHead for a multi-label store)")
    exp.add_argument("--strategy", default=None, choices=sorted({*STRATEGIES, *MULTI_LABEL_STRATEGIES}),
                     help="the session's strategy (default: diverse_margin, or diverse_uncertainty "
                          "for a multi-label store)")
    exp.add_argument("--seed", type=int, default=0, help="the session's seed (default 0)")
    exp.add_argument("--start-from", default=None,
                     help="the bundle (path or name@version) the session started from, if it did")
    exp.add_argument("--name", default=None, help="the model's name in its card (default: --out's stem)")
    exp.add_argument("--zip", action="store_true", help="write one .zip file instead of a folder")
    exp.add_argument("--overwrite", action="store_true", help="replace what is at --out")

    pred = sub.add_parser("predict", help="predict with a bundle: a parquet of classes and probabilities "
                                          "(a multi-label model: a list of classes per row; a boxes "
                                          "model: one row per box, item_id, x, y, w, h, label, score)")
    pred.add_argument("bundle", help="a bundle folder or zip, or name@version in the registry")
    pred.add_argument("data", nargs="?", default=None,
                      help="omitted: the pool of the store the bundle was exported from; a label "
                           "store folder: the pool that store labels; "
                           "image models: a folder of images; text models: a CSV/Parquet "
                           "file with a text column; table models: a CSV/Parquet file "
                           "with the feature columns; vector models: a CSV/Parquet file "
                           "whose numeric columns (but item_id and y) are the features; "
                           "any model: a .npz with the features as X (image models: or "
                           "raw pixel values). Item ids: the item_id column or item_ids "
                           "array, else row numbers; image paths within the folder")
    pred.add_argument("--out", default="predictions.parquet",
                      help="the parquet to write (default predictions.parquet)")
    pred.add_argument("--text-column", default="text", help="the column of texts (default text)")
    pred.add_argument("--batch", type=int, default=1024, help="items per batch (default 1024)")
    pred.add_argument("--scheduler", default=None,
                      help="a Dask scheduler's address (tcp://host:8786, default "
                           "$WORKBENCH_DASK_SCHEDULER), or ray / ray://host:10001 for a Ray cluster: "
                           "predict the items in parts on its workers (a store's pool: each worker "
                           "reads its own rows); else in this process")
    pred.add_argument("--registry", default=None,
                      help="the model registry folder (default $WORKBENCH_MODELS or "
                           "~/.cache/workbench/models)")

    models = sub.add_parser("models", help="the model registry: push, list, show, pull")
    verbs = models.add_subparsers(dest="models_command", required=True)

    def verb(name, help_):
        p = verbs.add_parser(name, help=help_)
        p.add_argument("--registry", default=None,
                       help="the registry folder (default $WORKBENCH_MODELS or "
                            "~/.cache/workbench/models)")
        return p

    p = verb("push", "add a bundle as the next version of a model; prints name@version")
    p.add_argument("bundle", help="a bundle folder or zip")
    p.add_argument("name")
    verb("list", "every model version in the registry")
    verb("show", "a model version's card").add_argument("ref", help="name@version")
    p = verb("pull", "copy a model version out of the registry")
    p.add_argument("ref", help="name@version")
    p.add_argument("--out", required=True, help="the folder to create")


def run(args) -> int:
    if args.command == "export":
        return _export(args)
    if args.command == "predict":
        from workbench.data.jobs import ClusterJobFailed, ClusterUnreachable

        try:
            return _predict(args)
        except (ClusterUnreachable, ClusterJobFailed) as e:  # they say what to do: no traceback
            print(f"workbench: error: {e}", file=sys.stderr)
            return 2
    return _models(args)


# -- export -------------------------------------------------------------------------------------
def _export(args) -> int:
    from workbench.cli_data import load_data
    from workbench.cli_history import require_store
    from workbench.learn.bundle import read_bundle
    from workbench.loop import pool_source
    from workbench.loop.session import Session

    store = require_store(args.store)  # first: Session would create a store at a mistyped path
    if args.data is not None:
        pool = load_data(args.data, args.label_column, args.text_column)
    elif args.label_column is not None or args.text_column is not None:
        raise ValueError("--label-column and --text-column say how to read --data; give --data too")
    else:
        pool = pool_source.rebuild(store, otherwise=DATA_FLAG)
    # "head": the session's default for its task (and what a bundle started from leads to)
    learner = None if args.learner == "head" else args.learner
    session = Session(pool, store, learner=learner, classes=pool_source.classes_for(store, pool),
                      strategy=args.strategy, seed=args.seed, watch=False,
                      start_from=args.start_from)
    try:
        labels = session.labels
        classes = {str(v) for v in labels.values()}
        if session.model is None and len(classes) < 2:
            raise ValueError(f"the store {str(store)!r} has {len(labels)} labels of "
                             f"{len(classes)} class(es) and no trained model; a model needs "
                             "labels of at least 2 classes")
        path = session.export(args.out, name=args.name, as_zip=args.zip or None, overwrite=args.overwrite)
    finally:
        session.close()
    training = read_bundle(path, keep_files=False).config["training"]
    commit = training.get("commit") or "none"
    print(f"exported {'zip' if args.zip else 'bundle'} to {path} ({_size(path)})")
    print(f"trained on commit {commit[:7]} of {training.get('branch')}: "
          f"{training.get('n_labels')} training labels, round {training.get('round')}, "
          f"{training.get('learner')}")
    name, score = {"boxes": ("mAP@0.5", "map50"), "spans": ("span F1", "span_f1")}.get(
        training.get("task"), ("accuracy", "accuracy"))
    print(f"{name} {training[score]:.4f} on the {training.get('eval_on')}" if training.get(score) is not None
          else f"{name} not measured: {training.get('eval_on')}")
    return 0


def _size(path: Path) -> str:
    size = path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.iterdir())
    if size < 1024:
        return f"{size} bytes"
    return f"{size / 1024:.1f} KB" if size < 1 << 20 else f"{size / (1 << 20):.1f} MB"


# -- predict ------------------------------------------------------------------------------------
def _predict(args) -> int:
    from tqdm import tqdm

    from workbench.cli_history import is_store
    from workbench.learn.bundle import load_model

    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, got {args.batch}")
    model = load_model(args.bundle, registry=args.registry)
    # a boxes or spans model: one row per box or span of each item (its `table`), on this machine
    per_part = getattr(model, "task", None) in PART_ROWS
    client = None if per_part else _scheduler(args.scheduler)
    if client is not None:
        try:
            return _predict_on_cluster(args, model, client)
        finally:  # made from the address: a Ray started for it is shut down
            client.close()
    ids, items = (_store_pool(model, args.data) if args.data is None or is_store(args.data)
                  else read_items(model.signature, Path(args.data), text_column=args.text_column))
    started = time.perf_counter()
    if per_part:
        return _predict_parts(args, model, ids, items, started)
    parts = []
    # Batches bound the memory: image files are read, and texts vectorised, a batch at a time.
    with tqdm(total=len(ids), unit="item", file=sys.stderr, disable=None) as bar:
        for start in range(0, len(ids), args.batch):
            batch = items[start:start + args.batch]
            parts.append(model.predict_proba(batch))
            bar.update(len(batch))
    return _write_predictions(args, model, ids, _stack(parts, model), time.perf_counter() - started)


PART_ROWS = {"boxes": ("box", "image"), "spans": ("span", "text")}  # what a row is, of what item


def _predict_parts(args, model, ids, items, started: float) -> int:
    """A boxes or spans model's parquet: one row per box (item_id, x, y, w, h, label, score) or
    span (item_id, start, end, label, text, confidence) it finds; an item with none has no row.
    Items are read a batch at a time, on this machine."""
    from tqdm import tqdm

    part, item = PART_ROWS[model.task]
    if args.scheduler is not None:
        raise ValueError(f"--scheduler: a {model.task} model predicts on this machine in this version; "
                         "drop it")
    with tqdm(total=len(ids), unit=item, file=sys.stderr, disable=None) as bar:
        frame = model.table(ids, items, batch=args.batch, progress=bar.update)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(args.out, index=False)
    print(f"found {len(frame)} {part}{'es' if part == 'box' else 's'} in {len(ids)} {item}s in "
          f"{time.perf_counter() - started:.2f} s; wrote {args.out}")
    return 0


def _write_predictions(args, model, ids, proba, seconds: float) -> int:
    import numpy as np
    import pandas as pd

    names = [str(c) for c in model.classes]
    if getattr(model, "task", "single") == "multi_label":
        # a list of class names per row (those at the threshold, in class order); confidence:
        # how sure the least sure of its yes/no decisions is
        chosen = proba >= model.threshold
        predicted = [[names[j] for j in np.flatnonzero(row)] for row in chosen]
        confidence = np.maximum(proba, 1 - proba).min(axis=1) if len(names) else np.ones(len(proba))
    else:
        predicted = np.asarray(names, dtype=object)[proba.argmax(axis=1)]
        confidence = proba.max(axis=1)
    frame = pd.DataFrame({"item_id": ids, "predicted": pd.Series(predicted, dtype=object),
                          "confidence": confidence})
    frame = frame.join(pd.DataFrame(proba, columns=[f"p_{c}" for c in names]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(out, index=False)
    print(f"predicted {len(ids)} items in {seconds:.2f} s "
          f"({len(ids) / max(seconds, 1e-9):.0f} items/s); wrote {out}")
    return 0


def _scheduler(address):
    """The Dask client (or Ray cluster) `--scheduler` (or $WORKBENCH_DASK_SCHEDULER) names, or None."""
    from workbench.data.jobs import connect

    return connect(address)


def _predict_on_cluster(args, model, client) -> int:
    """The predictions as a job over parts on the cluster: a store's pool in its own parts
    (each worker reads its rows), other data in parts of the items read here (image paths:
    the workers open the files, so they must see the same paths, a shared file system). The
    model (about 1 MB pickled) travels with each part."""
    import functools

    from workbench.cli_history import is_store
    from workbench.data.jobs import describe, map_parts, on_rows
    from workbench.data.parts import ItemsPart
    from workbench.data.pool_encoding import rows_per_part

    if args.data is None or is_store(args.data):
        pool = _store_source(model, args.data)
        ids, parts = pool.item_ids.tolist(), pool.parts(rows_per_part(len(pool), client))
        fn = on_rows(functools.partial(_checked_proba, model))
    else:
        ids, items = read_items(model.signature, Path(args.data), text_column=args.text_column)
        rows = rows_per_part(len(ids), client)
        parts = [ItemsPart(start, min(len(ids), start + rows), items[start:start + rows])
                 for start in range(0, len(ids), rows)]
        fn = on_rows(model.predict_proba)
    started = time.perf_counter()
    print(f"predicting {len(ids)} items in {len(parts)} parts on {describe(client)}", file=sys.stderr)
    proba = map_parts(fn, parts, cluster=client, what=f"predicting {len(ids)} items")
    return _write_predictions(args, model, ids, _stack(proba, model), time.perf_counter() - started)


def _checked_proba(model, X):
    return model.predict_proba(model.signature.check(X))


def _stack(parts, model):
    import numpy as np

    return np.concatenate(parts) if parts else np.zeros((0, len(model.classes)), np.float32)


def _store_pool(model, store) -> tuple[list[str], object]:
    """(item ids, features) of the pool a store labels: `store`, else the one the bundle
    was exported from. Its features are what the model learned from, so they go in as is."""
    pool = _store_source(model, store)
    if getattr(model, "task", None) == "spans":  # a tagger reads the texts themselves
        return pool.item_ids.tolist(), pool.items["text"].astype(str).tolist()
    X = model.signature.check(pool.X)
    if getattr(pool, "image_sizes", None) is not None:  # each image at its own size, not the canvas
        return pool.item_ids.tolist(), [x[:h, :w] for x, (w, h) in zip(X, pool.image_sizes)]
    return pool.item_ids.tolist(), X


def _store_source(model, store):
    """The pool a store labels: `store`, else the one the bundle was exported from."""
    from workbench.cli_history import is_store
    from workbench.loop import pool_source

    otherwise = "pass DATA (the items to predict)"
    if store is None:
        store = model.info.get("store")
        if not store:
            raise ValueError(f"the bundle names no store it was exported from; {otherwise}")
        if not is_store(store):
            raise ValueError(f"the bundle was exported from the store {store!r}, which is not "
                             f"here; {otherwise}")
    return pool_source.rebuild(store, otherwise=otherwise)


# -- models -------------------------------------------------------------------------------------
def _models(args) -> int:
    from workbench.learn import registry

    where = registry.default_registry() if args.registry is None else Path(args.registry)
    if args.models_command == "push":
        print(registry.push(args.bundle, args.name, registry=where))
    elif args.models_command == "list":
        frame = registry.list_models(registry=where)
        print(frame.to_string(index=False) if len(frame) else f"no models in {where}")
    elif args.models_command == "show":
        print(registry.show(args.ref, registry=where))
    else:
        out = registry.pull(args.ref, args.out, registry=where)
        print(f"pulled {args.ref} to {out}")
    return 0
