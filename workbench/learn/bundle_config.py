"""config.json's structure: a JSON Schema (Draft 7), checked with `fastjsonschema`.

Every field the loader, a session or a model card reads is checked against what the writer
puts there before anything is built from it: a crafted or damaged config.json is refused
with the field it got wrong, rather than failing wherever a wrong type first meets an
operation (a TypeError deep in the rebuild, or in a model card written much later).

Each schema node's "description" says what it expects in words; the refusal names the
field's path (`learner.params`, `preprocessing[0].step`), the value found and that text.
`format` and `format_version` are checked by bundle_read.py first, as in the manifest.

fastjsonschema compiles the schema to Python once, on first use, and imports in about 0.03 s
(it also comes with nbformat); `jsonschema` took about 2 s to import where jupyterlab's format
extras are installed (it builds rfc3987_syntax's IRI parsers), on every first bundle load.
"""

from __future__ import annotations

import functools
import reprlib
import sys

from workbench.learn.bundle_errors import BundleError

__all__ = ["CONFIG_SCHEMA", "check_config"]

CONFIG = "config.json"
OBJECT = "a JSON object"


def _whole(least: int) -> dict:
    return {"type": "integer", "minimum": least, "description": f"a whole number from {least}"}


def _maybe(schema: dict) -> dict:
    # "null" joins the type rather than an anyOf: a refusal inside the value (a field of an
    # object that may be null) is then reported where it is, not as "no branch matched"
    return {**schema, "type": [*_types(schema), "null"], "description": f"{schema['description']} or null"}


def _types(schema: dict) -> list:
    return schema["type"] if isinstance(schema["type"], list) else [schema["type"]]


def _list(item: dict, expected: str) -> dict:
    return {"type": "array", "items": item, "description": expected}


def _object(fields: dict, optional=(), others: dict | None = None) -> dict:
    """An object with `fields` (required unless `optional`); every other field must be
    `others` when given, and is otherwise left alone (nothing reads it)."""
    schema = {"type": "object", "description": OBJECT,
              "required": [k for k in fields if k not in optional], "properties": fields}
    if others is not None:
        schema["additionalProperties"] = others
    return schema


def _one_of(names) -> dict:
    return {"enum": list(names), "description": f"one of {', '.join(map(repr, names))}"}


def _kinds(key: str, kinds: dict) -> dict:
    """An object whose field `key` names which of `kinds` (each an _object) it is; a refusal
    lists them in the order given."""
    return {"type": "object", "description": OBJECT, "required": [key],
            "properties": {key: _one_of(list(kinds))},
            "allOf": [{"if": {"type": "object", "properties": {key: {"const": name}},
                              "required": [key]},
                       "then": {k: v for k, v in kind.items() if k not in ("type", "description")}}
                      for name, kind in kinds.items()]}


TEXT = {"type": "string", "description": "a string"}
FLAG = {"type": "boolean", "description": "true or false"}
NUMBER = {"type": "number", "description": "a number"}  # NaN and infinity too, as json.dumps writes them
# positive and finite: the bounds refuse 0, negatives and both infinities, but NaN compares false
# with every bound and passes them all; it passes {"maximum": 0} too, which no positive number
# does, so "not" that refuses NaN (and is typed, so that the null of _maybe(SCALE) passes)
SCALE = {"type": "number", "exclusiveMinimum": 0, "maximum": sys.float_info.max,
         "not": {"type": "number", "maximum": 0}, "description": "a positive number"}
PLAIN = {"type": ["string", "number", "boolean", "null"],
         "description": "a string, a number, true, false or null"}
# true and false were always accepted as class names (Python's bool is an int); kept so
# distinct: two outputs of one name would make every prediction of the second read as the first
CLASS = {"type": ["string", "number", "boolean"], "description": "a class name (a string or a number)"}
CLASSES = {**_list(CLASS, "a list of distinct class names"), "uniqueItems": True}
SETTINGS = _object({})  # their names and values are checked against the estimator (learner_state)
SIZES = _list(_whole(1), "a list of sizes")
INPUT = _object({"kind": _one_of(("image", "vector", "text", "table")), "shape": SIZES,
                 # what the ONNX graph's input is handed over as: features, or (a fine-tuned
                 # Hugging Face tagger's) token ids
                 "dtype": _one_of(("float32", "float64", "int64")),
                 "image_scale": _maybe(SCALE),
                 "feature_names": _maybe(_list(TEXT, "a list of column names")),
                 "onnx_input": TEXT, "raw_texts": FLAG},
                optional=("onnx_input", "raw_texts"))
STEP = _kinds("step", {
    "representation": _object({"in_onnx": FLAG, "method": TEXT, "values": _object({}, others=PLAIN)},
                              optional=("in_onnx",)),
    "text-vectoriser": _object({"in_onnx": FLAG, "method": TEXT, "n_components": _whole(1),
                                "words": SETTINGS, "chars": SETTINGS,
                                "words_vocabulary": _list(TEXT, "a list of words"),
                                "chars_vocabulary": _list(TEXT, "a list of character n-grams")},
                               optional=("in_onnx",))})
LINEAR = _object({"params": SETTINGS, "classes": CLASSES, "n_features_in": _whole(0)})
# what prediction reads of a BoxDetector's settings, by value; its other settings by name
# (workbench.learn.box_bundle). NaN passes "minimum" and "maximum"; it also passes the
# "maximum" of the "not", which no number from 0 does, so the "not" refuses it
SHARE = {"type": "number", "minimum": 0, "maximum": 1, "not": {"type": "number", "maximum": -1},
         "description": "a number from 0 to 1"}
BOX_DETECTOR = _object({"params": _object({"threshold": SHARE, "width": _whole(1), "max_boxes": _whole(1),
                                           "max_side": _maybe(_whole(0))}),
                        "labels": _list(TEXT, "a list of class names"), "n_channels": _whole(1),
                        "mean": NUMBER, "std": SCALE})
# a TokenTagger's settings, tags and tokenizer are checked field by field by span_bundle.py,
# whose refusals name what a tagger of this workbench expects there
TOKEN_TAGGER = _object({"params": SETTINGS, "tags": _list(TEXT, "a list of tag names"),
                        "features": _object({}), "constant": _maybe(_whole(0))})
# a fine-tuned Hugging Face tagger's: its network's config and tokenizer files are checked by
# hf_span_bundle.py, and by transformers as it builds them
HF_TOKEN_TAGGER = _object({"params": SETTINGS, "tags": _list(TEXT, "a list of tag names"),
                           "max_length": _whole(1), "model_config": _object({}),
                           "tokenizer_files": _object({}, others=TEXT)})
LEARNER = _kinds("type", {
    "LightHead": LINEAR, "LogisticRegression": LINEAR, "MultiLabelHead": LINEAR,
    "TorchClassifier": _object({"params": SETTINGS, "classes": CLASSES, "input_shape": SIZES,
                                "is_image": FLAG, "self_trained": FLAG}),
    "BoxDetector": BOX_DETECTOR, "TokenTagger": TOKEN_TAGGER, "HFTokenTagger": HF_TOKEN_TAGGER,
    "onnx": _object({"estimator": TEXT, "why": TEXT}, optional=("estimator", "why"))})
# an object with the fields below (all optional), found by "$ref" so that started_from (what a
# bundle started from: the same fields, and its own start in turn) can nest; Draft 7 ignores
# whatever sits beside a "$ref", hence the allOf, and the target leaves out the type so that
# the null of _maybe(TRAINING) passes
TRAINING = {"type": "object", "description": OBJECT, "allOf": [{"$ref": "#/definitions/training"}]}
_TRAINING_FIELDS = {**dict.fromkeys(("commit", "labels_hash", "branch", "store", "pool", "learner",
                                     "eval_on", "exported", "bundle"), _maybe(TEXT)),
                    "round": _maybe(_whole(0)), "n_labels": _maybe(_whole(0)),
                    "accuracy": _maybe(NUMBER), "macro_f1": _maybe(NUMBER),
                    "micro_f1": _maybe(NUMBER), "hamming_loss": _maybe(NUMBER),
                    "map50": _maybe(NUMBER), "span_f1": _maybe(NUMBER), "precision": _maybe(NUMBER),
                    "recall": _maybe(NUMBER),
                    "task": _maybe(TEXT),
                    "started_from": _maybe(TRAINING)}
CONFIG_SCHEMA = {"$schema": "http://json-schema.org/draft-07/schema#",
                 "definitions": {"training": {"properties": _TRAINING_FIELDS}},
                 **_object({"classes": CLASSES, "input": INPUT,
                            "preprocessing": _list(STEP, "a list of steps"), "learner": LEARNER,
                            "training": TRAINING,
                            "task": _one_of(("single", "multi_label", "spans", "boxes"))},
                           optional=("training", "task"))}


class _Written(float):
    """A float that is a whole number (8.0): Draft 7 counts it as an "integer", fastjsonschema
    by asking float.is_integer; a size or a count here is an int, as the writer puts it."""

    __slots__ = ()

    def is_integer(self) -> bool:
        return False


def _as_written(value):
    """`value` with its whole-number floats as _Written, for the check only (the same values
    and reprs; Draft 7 already keeps true and false out of "integer" and "number")."""
    if isinstance(value, dict):
        return {k: _as_written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_written(v) for v in value]
    if type(value) is float and value.is_integer():
        return _Written(value)
    return value


@functools.cache
def _validator():
    # imported and compiled to Python on first use (about 70 ms), not with bundle_read.py
    import fastjsonschema

    return fastjsonschema.compile(CONFIG_SCHEMA, use_default=False)


def check_config(source: str, config: dict) -> None:
    """Raise BundleError naming the first field of `config` that the schema refuses (within
    one object, a missing field comes before a wrong one: fastjsonschema checks "required"
    before "properties")."""
    from fastjsonschema import JsonSchemaValueException

    try:
        _validator()(_as_written(config))
    except JsonSchemaValueException as error:
        # its name is the field's path from the root, "data": data.preprocessing[0].step
        where = error.name.removeprefix("data").removeprefix(".")
        if error.rule == "required":
            missing = next(k for k in error.definition["required"] if k not in error.value)
            field = f"{where}.{missing}" if where else missing
            raise BundleError(f"{CONFIG} in {source!r} has no {field}; expected "
                              f"{error.definition['properties'][missing]['description']}") from None
        raise BundleError(f"{CONFIG} in {source!r}: {where} is {reprlib.repr(error.value)}; "
                          f"expected {error.definition['description']}") from None
