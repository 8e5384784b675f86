"""The labels out, as a Hugging Face `datasets` Parquet file: what a training script elsewhere
reads.

One row per labeled item, in pool order: `item_id`, what the item is where the pool has it as
data (`text` for a text pool, `path` for images read from files), the label, and who gave it
(`annotator`), in what role it was shown (`query`) and when (`time`). The label is a
`ClassLabel`, as Hugging Face stores class labels: an integer index into the class names,
which the file's schema metadata carries; a multi-label pool's `labels` is a list of them
(`List(ClassLabel)`, as in go_emotions). `datasets.Dataset.from_parquet(path)` gives those
features back, names included; pandas reads the integers, and `label_names` beside them.
The file is written to a temporary name and moved into place, so a crash leaves no half file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.data.tasks import MULTI_LABEL


def export_labels(session, path) -> Path:
    """Write the session's current labels to `path` (a .parquet file); returns the path."""
    path = Path(path)
    if path.suffix.lower() not in (".parquet", ".pq"):
        raise ValueError(f"export_labels writes a Parquet file; expected a path ending in .parquet, "
                         f"got {str(path)!r}")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; expected a file path ending in .parquet")
    labels = session.labels
    pool, names = session.pool, session.class_names
    ids = [i for i in pool.item_ids if i in labels]  # pool order
    index = {name: j for j, name in enumerate(names)}
    multi = session.task == MULTI_LABEL
    store = session.store
    current = store.current_labels() if session.at is None else store.current_labels_at(session.at)
    columns: dict[str, pa.Array] = {"item_id": pa.array(ids, pa.string())}
    features: dict[str, dict] = {"item_id": _value("string")}
    for column in ("text", "path"):
        if column in pool.items:
            columns[column] = pa.array(pool.items.loc[ids, column].astype(str).tolist(), pa.string())
            features[column] = _value("string")
    class_label = {"names": names, "_type": "ClassLabel"}
    if multi:
        columns["labels"] = pa.array([[index[str(c)] for c in labels[i]] for i in ids], pa.list_(pa.int64()))
        columns["label_names"] = pa.array([[str(c) for c in labels[i]] for i in ids], pa.list_(pa.string()))
        features["labels"] = {"feature": class_label, "_type": "List"}
        features["label_names"] = {"feature": _value("string"), "_type": "List"}
    else:
        columns["label"] = pa.array([index[str(labels[i])] for i in ids], pa.int64())
        columns["label_name"] = pa.array([str(labels[i]) for i in ids], pa.string())
        features["label"] = class_label
        features["label_name"] = _value("string")
    for column in ("annotator", "query"):
        columns[column] = pa.array([_text(current, i, column) for i in ids], pa.string())
        features[column] = _value("string")
    columns["time"] = pa.array([current.loc[i, "time"] if i in current.index else None for i in ids],
                               pa.timestamp("us", tz="UTC"))
    features["time"] = _value("timestamp[us, tz=UTC]")
    table = pa.table(columns).replace_schema_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    os.replace(tmp, path)
    return path


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


def _text(current, item_id: str, column: str) -> str | None:
    if item_id not in current.index:
        return None
    value = current.loc[item_id, column]
    return None if value is None or value != value else str(value)
