"""A boxes session's labels out (`export_labels` dispatches here): Parquet for Hugging Face
`datasets`, COCO JSON, or a YOLO folder.

Parquet: one row per labeled image, its `boxes` a list of `{x, y, w, h, label}` structs
(`List({x, y, w, h: float32, label: ClassLabel})`, COCO's top-left corner, width and height
in image pixels) beside the image's own `width` and `height`; an image labeled as holding no object
has an empty list (and is told from an unlabeled one, which has no row).

COCO (`format="coco"`, or a path ending in .json): one JSON file of `images` (`id` from 1 in
pool order, `file_name` the item id, the image's own `width`, `height`), `annotations` (`id` from 1,
`image_id`, `category_id`, `bbox` [x, y, w, h], `area` w x h, `iscrowd` 0) and `categories`
(`id` from 1 in the pool's class order, `name`) - category 0 is left free, as COCO's own files
and the detectors trained on them keep it for the background.

YOLO (`format="yolo"`, `path` a folder): one `<name>.txt` per labeled image, a line per box,
`class cx cy w h` (the class index in `classes.txt`, the box's centre and size as fractions of
the image's own width and height), an empty file for an image that holds no object; `classes.txt`
(a class name a line, in index order) and `data.yaml` (`nc`, `names`). `<name>` is the item id
where that is a safe file name (letters, digits, `.`, `_`, `-`; not hidden, not one of the
folder's own files, unique without regard to case); other ids get their unsafe characters
replaced and a short hash of the id appended, and `item_ids.json` maps every file name to its
item id. The folder is written beside its place and moved in, replacing an earlier YOLO export
there (a folder holding anything else is refused).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pyarrow as pa

from workbench.data.boxes import image_size

# An image's size is always its own (`image_size(pool, item)`): in a pool of images of different
# sizes that is not the canvas the pool pads them to, and COCO's sizes and YOLO's fractions
# must be those of the image file a reader pairs them with.

COCO, YOLO = "coco", "yolo"
MAPPING = "item_ids.json"
OWN_FILES = ("classes.txt", "data.yaml", MAPPING)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_NOT_YAML = re.compile("[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def box_columns(session, ids: list[str], class_label: dict) -> tuple[dict, dict]:
    """The Parquet columns (and their `datasets` features) of a boxes session's labeled images
    `ids`: `boxes`, `width`, `height`."""
    labels, index = session.labels, {name: j for j, name in enumerate(session.class_names)}
    sizes = [image_size(session.pool, str(i)) for i in ids]
    rows = [[{"x": b.x, "y": b.y, "w": b.w, "h": b.h, "label": index[b.label]} for b in labels[i]]
            for i in ids]
    columns = {"boxes": pa.array(rows, pa.list_(pa.struct([*((k, pa.float32()) for k in "xywh"),
                                                          ("label", pa.int64())]))),
               "width": pa.array([w for w, _ in sizes], pa.int32()),
               "height": pa.array([h for _, h in sizes], pa.int32())}
    features = {"boxes": {"feature": {**{k: _value("float32") for k in "xywh"}, "label": class_label},
                          "_type": "List"},
                "width": _value("int32"), "height": _value("int32")}
    return columns, features


def coco(session, ids: list[str]) -> dict:
    """The COCO object-detection JSON of a boxes session's labeled images `ids` (see the module
    doc)."""
    category = {name: k + 1 for k, name in enumerate(session.class_names)}
    images, annotations = [], []
    for image_id, item in enumerate(ids, start=1):
        width, height = image_size(session.pool, str(item))
        images.append({"id": image_id, "file_name": str(item), "width": width, "height": height})
        for b in session.labels[item]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": category[b.label], "bbox": [b.x, b.y, b.w, b.h],
                                "area": round(b.w * b.h, 4), "iscrowd": 0})
    return {"images": images, "annotations": annotations,
            "categories": [{"id": k, "name": name, "supercategory": ""} for name, k in category.items()]}


def write_coco(session, ids: list[str], tmp: Path) -> None:
    tmp.write_text(json.dumps(coco(session, ids), ensure_ascii=False), encoding="utf-8")


def file_names(ids: list[str]) -> dict[str, str]:
    """item id -> the file name (without .txt) its YOLO labels go to (see the module doc)."""
    taken = {Path(own).stem.lower() for own in OWN_FILES}
    out = {}
    for item in ids:
        name = str(item)
        if _UNSAFE.search(name) or name.startswith(".") or not name or len(name) > 100 or \
                name.lower() in taken:
            digest = hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()
            name = f"{_UNSAFE.sub('_', name).lstrip('.')[:80]}-{digest[:10]}"
            k = 10
            while name.lower() in taken:  # a hash prefix that another id's safe name already took
                k += 2
                name = f"{name.rsplit('-', 1)[0]}-{digest[:k]}"
        taken.add(name.lower())
        out[item] = name
    return out


def yolo_lines(boxes, index: dict, width: int, height: int) -> str:
    """The YOLO label file of one image's boxes: `class cx cy w h`, fractions of the image."""
    return "".join(f"{index[b.label]} {(b.x + b.w / 2) / width:.6f} {(b.y + b.h / 2) / height:.6f} "
                   f"{b.w / width:.6f} {b.h / height:.6f}\n" for b in boxes)


def write_yolo(session, ids: list[str], path: Path) -> Path:
    """Write the YOLO folder (see the module doc) at `path`; returns it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"format='yolo' writes a folder; {str(path)!r} is a file")
    if path.is_dir() and any(path.iterdir()) and not (path / MAPPING).exists():
        raise FileExistsError(f"{str(path)!r} holds something else; format='yolo' writes a new folder "
                              f"(or replaces an earlier YOLO export, which has {MAPPING})")
    sizes = {item: image_size(session.pool, str(item)) for item in ids}
    names = session.class_names
    # classes.txt holds a name a line: a name with a line break in it would read back as two
    # classes, and every index after it would name the wrong one
    if broken := [n for n in names if str(n).splitlines() != [str(n)]]:
        raise ValueError(f"the class names {broken!r} hold a line break, which classes.txt (a name "
                         "a line) cannot; rename them, or export as Parquet or COCO")
    index = {name: j for j, name in enumerate(names)}
    files = file_names(ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for item in ids:
            (tmp / f"{files[item]}.txt").write_text(yolo_lines(session.labels[item], index, *sizes[item]),
                                                    encoding="utf-8")
        (tmp / "classes.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
        (tmp / "data.yaml").write_text(
            f"# workbench labels of pool {_yaml(str(session.pool.name))}: "
            f"YOLO box files ({len(ids)} images{_sizes(sizes.values())})\n"
            f"nc: {len(names)}\nnames: [{', '.join(_yaml(str(n)) for n in names)}]\n",
            encoding="utf-8")
        (tmp / MAPPING).write_text(json.dumps({f"{files[i]}.txt": str(i) for i in ids}, ensure_ascii=False,
                                              indent=1), encoding="utf-8")
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return path


def _sizes(sizes) -> str:
    """The images' size in words: `, 128x128 pixels`, or `, 20x30 to 640x480 pixels` where
    they differ (by area); nothing for no image."""
    found = sorted(set(sizes), key=lambda s: (s[0] * s[1], s))
    if not found:
        return ""
    (w0, h0), (w1, h1) = found[0], found[-1]
    return f", {w0}x{h0} pixels" if (w0, h0) == (w1, h1) else f", {w0}x{h0} to {w1}x{h1} pixels"


def _yaml(text: str) -> str:
    """`text` as a YAML double-quoted string: JSON's, with what YAML reads as a line break
    (U+0085, U+2028, U+2029: one would end the comment a pool's name is in, and start keys of
    its own) or refuses (other control characters) escaped too."""
    return _NOT_YAML.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def _value(dtype: str) -> dict:
    return {"dtype": dtype, "_type": "Value"}
