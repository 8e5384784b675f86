"""What one label is, by the kind of task a pool is labeled for.

A "single" pool (the default) gives each item one class. A "multi_label" pool gives each item
any subset of its classes, none included: its label is a `LabelSet`, the classes in the pool's
class order, written to the store as a JSON list of class names (`str(LabelSet)`), so that the
event log keeps one text column for every task and a set reads back exactly as it was given.
A "spans" pool marks stretches of each text (named entities and the like): its label is a
`SpanList` (workbench.data.spans). A "boxes" pool draws rectangles around the objects of each
image: its label is a `BoxList` (workbench.data.boxes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

import numpy as np

SINGLE, MULTI_LABEL, SPANS, BOXES = "single", "multi_label", "spans", "boxes"
TASKS = (SINGLE, MULTI_LABEL, SPANS, BOXES)
PARTS = (SPANS, BOXES)  # the tasks whose label is a list of parts: spans of a text, boxes of an image


def is_parts(session) -> bool:
    """Whether a session's (or a pool's) label is a list of parts: the spans of a text, the boxes
    of an image."""
    return getattr(session, "task", SINGLE) in PARTS
BUILT = TASKS


def check_task(task) -> str:
    """`task` if this version labels it; a ValueError naming it and the choices otherwise."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(map(repr, TASKS))}")
    if task not in BUILT:
        raise ValueError(f"task {task!r} is not available in this version; it labels "
                         f"{', '.join(map(repr, BUILT))} pools")
    return task


class LabelSet(tuple):
    """The classes of a multi-label item, in its pool's class order (empty: none applies).
    `str()` is how the store holds it: a JSON list of the class names."""

    __slots__ = ()

    def __str__(self) -> str:
        return json.dumps([str(c) for c in self], ensure_ascii=False)

    def __repr__(self) -> str:
        return f"LabelSet({list(self)!r})"


def is_collection(value) -> bool:
    """A list, tuple, set or array of values (not a string, not a mapping)."""
    return isinstance(value, (list, tuple, set, frozenset, np.ndarray)) and not isinstance(value, Mapping)


def label_set(value, class_by_name: Mapping[str, object]) -> LabelSet:
    """The LabelSet a multi-label label names: a collection of classes (values or their
    names), or the JSON list the store holds. A ValueError naming the value and what was
    expected for anything else: one class on its own, an unknown class, a class twice."""
    if isinstance(value, str) and value.startswith("["):
        try:
            value = json.loads(value)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested thousands deep
            raise ValueError(f"label {value!r} is not a JSON list of classes") from None
    if not is_collection(value):
        raise ValueError(f"a multi-label pool takes a list of classes for each label (none, one or "
                         f"several, e.g. [{value!r}]), got {type(value).__name__} {value!r}")
    names = [str(v.item() if hasattr(v, "item") else v) for v in value]
    unknown = [n for n in names if n not in class_by_name]
    if unknown:
        raise ValueError(f"label {list(value)!r} names {unknown}, which are not among the classes "
                         f"{list(class_by_name)}")
    if len(set(names)) != len(names):
        raise ValueError(f"label {list(value)!r} names a class more than once")
    order = {name: i for i, name in enumerate(class_by_name)}
    return LabelSet(class_by_name[n] for n in sorted(names, key=order.__getitem__))


def one_class(value, class_by_name: Mapping[str, object]):
    """The class a single-label label names (a class value or its name); a ValueError naming
    the label and the classes otherwise, and saying so when it is a list."""
    if is_collection(value):
        raise ValueError(f"a single-label pool takes one class for each label, got "
                         f"{type(value).__name__} {list(value)!r}; open the pool with "
                         "task='multi_label' to give items several classes")
    key = str(value.item() if hasattr(value, "item") else value)
    if key not in class_by_name:
        raise ValueError(f"label {value!r} is not one of the classes {list(class_by_name)}")
    return class_by_name[key]


def ground_truth_sets(y, what: str = "y") -> tuple[np.ndarray, list]:
    """Multi-label ground truth (a list of class lists, one per item) as an object array of
    tuples, and the classes found in it (sorted, numbers before names)."""
    rows = list(y)
    for i, row in enumerate(rows):
        if not is_collection(row):
            raise ValueError(f"{what}[{i}] is {type(row).__name__} {row!r}; a multi-label pool "
                             f"takes a list of classes for each item (e.g. [{row!r}])")
    values = {}
    for row in rows:
        for v in row:
            v = v.item() if hasattr(v, "item") else v
            values.setdefault(str(v), v)
    classes = sorted(values.values(), key=lambda c: (not isinstance(c, (int, float)), c if
                                                      isinstance(c, (int, float)) else str(c)))
    out = np.empty(len(rows), dtype=object)
    for i, row in enumerate(rows):
        out[i] = tuple(v.item() if hasattr(v, "item") else v for v in row)
    return out, classes


def indicator(values: Iterable, class_names: list[str]) -> np.ndarray:
    """(len(values), len(class_names)) 0/1: which classes each label set holds."""
    column = {name: j for j, name in enumerate(class_names)}
    values = list(values)
    matrix = np.zeros((len(values), len(class_names)), dtype=np.int8)
    for i, value in enumerate(values):
        if isinstance(value, str):
            value = json.loads(value)
        for c in value:
            matrix[i, column[str(c)]] = 1
    return matrix


def versioned_parts(value: str, field: str, version: int, example: str) -> list:
    """The parts a stored label of parts holds (`{"v": version, field: [...]}`, or the bare
    list an earlier writer may have stored): the spans of a text, the boxes of an image. A
    ValueError naming the value for JSON of another shape, another schema version or more
    fields, so that a later format is never read as this one."""
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, RecursionError):  # RecursionError: a list nested thousands deep
        data = None
    noun = "box" if field == "boxes" else field[:-1]  # "spans" -> "span"
    if not isinstance(data, (dict, list)):
        raise ValueError(f"label {value!r} is not the JSON of a list of {field} (e.g. {example})")
    if isinstance(data, dict):
        found = data.get("v")
        if type(found) is not int or found != version:
            raise ValueError(f"label {value!r} is a {noun} list of schema version {found!r}; this "
                             f"version reads version {version}")
        if not isinstance(data.get(field), list):
            raise ValueError(f"label {value!r} holds no list of {field} under \"{field}\" (e.g. {example})")
        if extra := sorted(set(data) - {"v", field}):
            raise ValueError(f"label {value!r} has fields {extra} besides \"v\" and \"{field}\"; "
                             f"schema version {version} has no others")
        return data[field]
    return data
