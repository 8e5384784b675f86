"""config.json's structure: a JSON Schema (Draft 2020-12), checked with `jsonschema`.

Every field the loader, a session or a model card reads is checked against what the writer
puts there before anything is built from it: a crafted or damaged config.json is refused
with the field it got wrong, rather than failing wherever a wrong type first meets an
operation (a TypeError deep in the rebuild, or in a model card written much later).

Each schema node's "description" says what it expects in words; the refusal names the
field's path (`learner.params`, `preprocessing[0].step`), the value found and that text.
`format` and `format_version` are checked by bundle.py first, as in the manifest.
"""

from __future__ import annotations

import functools
import math
import reprlib

from workbench.learn.bundle_errors import BundleError

__all__ = ["CONFIG_SCHEMA", "check_config"]

CONFIG = "config.json"
OBJECT = "a JSON object"


def _whole(least: int) -> dict:
    return {"type": "integer", "minimum": least, "description": f"a whole number from {least}"}


def _maybe(schema: dict) -> dict:
    return {"anyOf": [{"type": "null"}, schema], "description": f"{schema['description']} or null"}


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
    """An object whose field `key` names which of `kinds` (each an _object) it is."""
    return {"type": "object", "description": OBJECT, "required": [key],
            "properties": {key: _one_of(sorted(kinds))},
            "allOf": [{"if": {"type": "object", "properties": {key: {"const": name}},
                              "required": [key]},
                       "then": {k: v for k, v in kind.items() if k not in ("type", "description")}}
                      for name, kind in kinds.items()]}


TEXT = {"type": "string", "description": "a string"}
FLAG = {"type": "boolean", "description": "true or false"}
NUMBER = {"type": "number", "description": "a number"}  # NaN and infinity too, as json.dumps writes them
# "finite" (below): NaN compares false with every bound, so exclusiveMinimum alone lets it by
SCALE = {"type": "number", "exclusiveMinimum": 0, "format": "finite", "description": "a positive number"}
PLAIN = {"type": ["string", "number", "boolean", "null"],
         "description": "a string, a number, true, false or null"}
# true and false were always accepted as class names (Python's bool is an int); kept so
CLASSES = _list({"type": ["string", "number", "boolean"],
                 "description": "a class name (a string or a number)"}, "a list of class names")
SETTINGS = _object({})  # their names and values are checked against the estimator (learner_state)
SIZES = _list(_whole(1), "a list of sizes")
INPUT = _object({"kind": _one_of(("image", "vector", "text", "table")), "shape": SIZES, "dtype": TEXT,
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
LEARNER = _kinds("type", {
    "LightHead": LINEAR, "LogisticRegression": LINEAR,
    "TorchClassifier": _object({"params": SETTINGS, "classes": CLASSES, "input_shape": SIZES,
                                "is_image": FLAG, "self_trained": FLAG}),
    "onnx": _object({"estimator": TEXT, "why": TEXT}, optional=("estimator", "why"))})
_TRAINING_FIELDS = {**dict.fromkeys(("commit", "labels_hash", "branch", "store", "pool", "learner",
                                     "eval_on", "exported", "bundle"), _maybe(TEXT)),
                    "round": _maybe(_whole(0)), "n_labels": _maybe(_whole(0)),
                    "accuracy": _maybe(NUMBER), "macro_f1": _maybe(NUMBER),
                    # what a bundle started from has the same fields, and its own start in turn
                    "started_from": _maybe({"$ref": "#/$defs/training", "description": OBJECT})}
TRAINING = _object(_TRAINING_FIELDS, optional=tuple(_TRAINING_FIELDS))
CONFIG_SCHEMA = {"$schema": "https://json-schema.org/draft/2020-12/schema",
                 "$defs": {"training": TRAINING},
                 **_object({"classes": CLASSES, "input": INPUT,
                            "preprocessing": _list(STEP, "a list of steps"), "learner": LEARNER,
                            "training": {"$ref": "#/$defs/training"}},
                           optional=("training",))}

@functools.cache
def _validator():
    # imported on first use, not with bundle.py: where jupyterlab's format extras are
    # installed, `import jsonschema` also builds rfc3987_syntax's IRI parsers (about 2 s)
    from jsonschema import Draft202012Validator, FormatChecker, validators

    # JSON Schema counts 8.0 as an integer; a size or a count here is an int, as the writer
    # puts it (Draft 2020-12 already keeps true and false out of "integer" and "number")
    types = Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, v: isinstance(v, int) and not isinstance(v, bool))
    formats = FormatChecker(formats=())
    formats.checks("finite")(lambda v: not isinstance(v, float) or math.isfinite(v))
    return validators.extend(Draft202012Validator, type_checker=types)(CONFIG_SCHEMA,
                                                                       format_checker=formats)


def check_config(source: str, config: dict) -> None:
    """Raise BundleError naming the first field of `config` that the schema refuses (within
    one object, a missing field comes before a wrong one: jsonschema checks "required" first)."""
    error = next(_validator().iter_errors(config), None)
    if error is None:
        return
    # anyOf (a value or null) fails at its own field when no branch got past the value's
    # type; when one did, that branch's error further in names the part that is wrong
    while error.context:
        deeper = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
        if not deeper:
            break
        error = deeper[0]
    where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}"
                    for part in error.absolute_path).removeprefix(".")
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        field = f"{where}.{missing}" if where else missing
        raise BundleError(f"{CONFIG} in {source!r} has no {field}; expected "
                          f"{error.schema['properties'][missing]['description']}")
    raise BundleError(f"{CONFIG} in {source!r}: {where} is {reprlib.repr(error.instance)}; expected "
                      f"{error.schema['description']}")
