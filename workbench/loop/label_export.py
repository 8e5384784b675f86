"""The labels out, as a Hugging Face `datasets` Parquet file: what a training script elsewhere
reads.

One row per labeled item, in pool order: `item_id`, what the item is where the pool has it as
data (`text` for a text pool, `path` for images read from files), the label, and who gave it
(`annotator`), in what role it was shown (`query`) and when (`time`). The label is a
`ClassLabel`, as Hugging Face stores class labels: an integer index into the class names,
which the file's schema metadata carries; a multi-label pool's `labels` is a list of them
(`List(ClassLabel)`, as in go_emotions). `datasets.Dataset.from_parquet(path)` gives those
features back, names included; pandas reads the integers, and `label_names` beside them.

A spans pool's `spans` is a list of `{start, end, label}` structs (`List({start: int32, end:
int32, label: ClassLabel})`, as token-classification datasets with character offsets hold
them): `text[start:end]` in Unicode code points, what Python's `str` indexes. A spans pool
also goes out as CoNLL/IOB (`format="conll"`, or a path ending in .conll), as CoNLL-2003
holds a corpus: each text is a document, begun by the line `-DOCSTART- -X- O O` and a blank
line, then one token a line, `token<TAB>tag`, BIO tags from `workbench.data.spans.bio_tags`
(where spans overlap the first wins, as BIO can say no more). spaCy's `spacy convert`
reads it as it is (and flair's ColumnCorpus with `document_separator_token="-DOCSTART-"`); a
class name with whitespace in it cannot be a tag there, and is refused naming it (the Parquet
file and the DocBin hold any name). The texts come in the order, and
are the items, of the Parquet export's rows, which carry their item ids: a CoNLL file has no
place for them (a `# item_id` comment line, as written before, read as a token to readers that
take no comments, and a text's own `#` token as a comment to those that do). Or as a spaCy
DocBin (`format="docbin"`, or .spacy; spaCy must be installed): each
text tokenized by a blank multi-language pipeline, every span in `doc.spans["sc"]` widened to
whole tokens, and those that do not overlap in `doc.ents`.
A boxes pool's `boxes` is a list of `{x, y, w, h, label}` structs beside each image's `width`
and `height`; it also goes out as COCO JSON (`format="coco"`, or a path ending in .json) or a
YOLO folder (`format="yolo"`): see `workbench.loop.box_export`.
Every file is written to a temporary name and moved into place, so a crash leaves no half file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.data.spans import Span, bio_tags
from workbench.data.tasks import BOXES, MULTI_LABEL, SPANS
from workbench.loop import box_export
from workbench.loop.box_export import COCO, YOLO

PARQUET, CONLL, DOCBIN = "parquet", "conll", "docbin"
FORMATS = (PARQUET, CONLL, DOCBIN, COCO, YOLO)
OF_TASK = {CONLL: SPANS, DOCBIN: SPANS, COCO: BOXES, YOLO: BOXES}  # the formats of one task's labels
SUFFIXES = {".parquet": PARQUET, ".pq": PARQUET, ".conll": CONLL, ".spacy": DOCBIN, ".json": COCO}


def export_labels(session, path, *, format: str | None = None) -> Path:
    """Write the session's current labels to `path`; returns the path. `format`: "parquet"
    (the default, a .parquet file), for a spans pool "conll" or "docbin", for a boxes pool
    "coco" (a .json file) or "yolo" (a folder) (see the module doc); left out, a path ending in
    .conll, .spacy or .json picks those."""
    path = Path(path)
    format = _format(path, format)
    if path.is_dir() and format != YOLO:
        raise IsADirectoryError(f"{str(path)!r} is a folder; expected a file path")
    if format in OF_TASK and session.task != OF_TASK[format]:
        raise ValueError(f"format={format!r} writes the {OF_TASK[format]} of a {OF_TASK[format]} pool; "
                         f"this session labels {session.task!r} items: export them as Parquet (a path "
                         "ending in .parquet)")
    if format == COCO:
        return _write(path, lambda tmp: box_export.write_coco(session, _labeled(session), tmp))
    if format == YOLO:
        return box_export.write_yolo(session, _labeled(session), path)
    if format == CONLL:
        text = conll(session)
        return _write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if format == DOCBIN:
        docs = docbin(session)
        return _write(path, docs.to_disk)
    table = parquet_table(session)
    return _write(path, lambda tmp: pq.write_table(table, tmp))


def _format(path: Path, format: str | None) -> str:
    if format is None:
        if path.suffix.lower() not in SUFFIXES:
            raise ValueError(f"export_labels writes a Parquet file; expected a path ending in "
                             f".parquet, got {str(path)!r} (a spans pool also writes .conll and "
                             ".spacy, a boxes pool .json (COCO) and a YOLO folder; or pass format=)")
        return SUFFIXES[path.suffix.lower()]
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of {', '.join(map(repr, FORMATS))}")
    if format == PARQUET and path.suffix.lower() not in (".parquet", ".pq"):
        raise ValueError(f"export_labels writes a Parquet file; expected a path ending in .parquet, "
                         f"got {str(path)!r}")
    return format


def _write(path: Path, write) -> Path:
    """`write(tmp)` to a temporary name beside `path`, then moved into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _labeled(session) -> list[str]:
    """The labeled items' ids, in pool order."""
    labels = session.labels
    return [i for i in session.pool.item_ids if i in labels]


def _spans(value) -> list[Span]:
    return [Span(*s) for s in value]


def parquet_table(session) -> pa.Table:
    """The Arrow table `export_labels` writes as Parquet, with the `datasets` features in its
    schema metadata."""
    labels = session.labels
    pool, names = session.pool, session.class_names
    ids = _labeled(session)
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
    if session.task == SPANS:
        rows = [[{"start": s.start, "end": s.end, "label": index[s.label]} for s in _spans(labels[i])]
                for i in ids]
        columns["spans"] = pa.array(rows, pa.list_(pa.struct([("start", pa.int32()), ("end", pa.int32()),
                                                             ("label", pa.int64())])))
        features["spans"] = {"feature": {"start": _value("int32"), "end": _value("int32"),
                                         "label": class_label}, "_type": "List"}
    elif session.task == BOXES:
        boxes, their_features = box_export.box_columns(session, ids, class_label)
        columns.update(boxes)
        features.update(their_features)
    elif multi:
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
    return pa.table(columns).replace_schema_metadata(
        {"huggingface": json.dumps({"info": {"features": features}})})


def conll(session) -> str:
    """The CoNLL/IOB text of a spans session's labeled texts (see the module doc)."""
    spaced = [name for name in session.class_names if name != "".join(name.split())]
    if spaced:
        raise ValueError(f"a CoNLL tag cannot hold whitespace, and the class {spaced[0]!r} does: readers "
                         "split the line on it; export to .parquet or .spacy, or rename the class")
    blocks = []
    for i in _labeled(session):
        text = str(session.pool.items.loc[i, "text"])
        toks, tags = bio_tags(text, _spans(session.labels[i]))
        lines = [f"{text[start:end]}\t{tag}" for (start, end), tag in zip(toks, tags)]
        blocks.append(f"{DOCSTART}\n\n" + "".join(line + "\n" for line in lines))
    return "\n".join(blocks)


DOCSTART = "-DOCSTART- -X- O O"  # CoNLL-2003's document line, which its readers split on


def docbin(session):
    """A spaCy DocBin of a spans session's labeled texts (see the module doc)."""
    try:
        import spacy
        from spacy.tokens import DocBin
        from spacy.util import filter_spans
    except ImportError:
        raise ImportError("format='docbin' writes a spaCy DocBin, and spaCy is not installed: "
                          "pip install spacy") from None
    nlp = spacy.blank("xx")
    out = DocBin(store_user_data=True)
    for i in _labeled(session):
        doc = nlp.make_doc(str(session.pool.items.loc[i, "text"]))
        marked = [doc.char_span(s.start, s.end, label=s.label, alignment_mode="expand")
                  for s in _spans(session.labels[i])]
        marked = [span for span in marked if span is not None]
        doc.spans["sc"] = marked
        doc.ents = filter_spans(marked)
        doc.user_data["item_id"] = str(i)
        out.add(doc)
    return out


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}


def _text(current, item_id: str, column: str) -> str | None:
    if item_id not in current.index:
        return None
    value = current.loc[item_id, column]
    return None if value is None or value != value else str(value)
