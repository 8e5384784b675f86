"""A bundle's ONNX graph keeping its large tensors in the bundle's weights file, once.

A fine-tuned network's weights are most of its bundle. Kept both in model.safetensors (what
load_model rebuilds the network from) and inside model.onnx (what onnxruntime runs), a
BERT-base tagger's bundle took 688 MB for 344 MB of weights. ONNX's external data lets an
initializer give a file, an offset and a length for its bytes, and safetensors stores each
tensor's bytes raw (little-endian, as ONNX does) at an offset its header gives. So every
initializer of the graph that is byte for byte a tensor of the weights points at that tensor
in model.safetensors (`share_weights`): onnxruntime given a bundle folder's model.onnx reads
them there, and a model loaded here gets them filled in from the weights it verified
(`resolved`), never from a file. Only when that saves SHARED_MIN_TOTAL bytes or more: a
small model's graph is worth more whole, a file that runs on its own wherever it is copied.

A reader trusts none of it: a reference must name model.safetensors exactly, give nothing but
its location, offset and length, sit on a top-level initializer, and cover exactly one tensor
of the weights, of the initializer's type and element count, and no tensor may be referred to
twice, so that the graph filled in is never larger than itself and the weights (`references`,
`check_references`).
External data anywhere else is refused as before (bundle_graph.check_graph). Bundles whose
graph shares tensors are written as format version 2 (bundle_layout.FORMAT_VERSION), which
older workbench versions refuse by name ("upgrade workbench") rather than misread.
"""

from __future__ import annotations

import hashlib
import json
import reprlib

import numpy as np

from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_layout import GRAPH, WEIGHTS

__all__ = ["SHARED_MIN_TOTAL", "check_references", "references", "resolved", "share_weights",
           "weights_layout"]

SHARED_MIN_TOTAL = 16 << 20  # a graph whose shareable tensors take less stays whole
SHARED_MIN_BYTES = 1 << 10  # a smaller tensor is not worth a reference
KEYS = ("location", "offset", "length")  # what a reference may say (ONNX allows a checksum too)
MAX_DIGITS = 20  # an offset or length: 2**64 has 20 digits
MAX_RANK = 32  # dimensions of a tensor that refers to the weights
# a TensorProto's own data; a reference holds none of it
DATA_FIELDS = ("raw_data", "float_data", "int32_data", "string_data", "int64_data", "double_data",
               "uint64_data")


def _onnx_types() -> dict[str, tuple[int, np.dtype]]:
    """safetensors dtype -> (ONNX TensorProto data type, numpy dtype), for the types both have."""
    from onnx import TensorProto as T

    return {"F64": (T.DOUBLE, np.dtype("<f8")), "F32": (T.FLOAT, np.dtype("<f4")),
            "F16": (T.FLOAT16, np.dtype("<f2")), "I64": (T.INT64, np.dtype("<i8")),
            "I32": (T.INT32, np.dtype("<i4")), "I16": (T.INT16, np.dtype("<i2")),
            "I8": (T.INT8, np.dtype("i1")), "U8": (T.UINT8, np.dtype("u1")), "BOOL": (T.BOOL, np.dtype("?"))}


def weights_layout(weights: bytes) -> dict[tuple[int, int], tuple[str, str]]:
    """(start, end) in the file's bytes -> (tensor name, safetensors dtype), for every tensor of
    a safetensors file (which safetensors has already parsed: the header is well formed)."""
    size = int.from_bytes(weights[:8], "little")
    header = json.loads(weights[8:8 + size])
    base = 8 + size
    return {(base + int(v["data_offsets"][0]), base + int(v["data_offsets"][1])): (name, v["dtype"])
            for name, v in header.items() if name != "__metadata__"}


def share_weights(graph: bytes, weights: bytes) -> tuple[bytes, int]:
    """(the graph with its initializers pointing into `weights`, bytes so shared): each
    initializer of SHARED_MIN_BYTES or more whose type and bytes are one tensor's of the
    weights file (model.safetensors, as written) refers to that tensor instead of holding
    it, if that shares SHARED_MIN_TOTAL bytes or more; else (graph, 0), the graph as it was."""
    import onnx

    types = _onnx_types()
    by_content = {}
    for (start, end), (_name, dtype) in weights_layout(weights).items():
        if end - start >= SHARED_MIN_BYTES and dtype in types:
            key = (types[dtype][0], hashlib.sha256(weights[start:end]).digest())
            by_content.setdefault(key, []).append((start, end))
    if not by_content:
        return graph, 0
    model = onnx.load_model_from_string(graph)
    shared = 0
    for tensor in model.graph.initializer:
        if len(tensor.raw_data) < SHARED_MIN_BYTES:  # small, or held as typed fields
            continue
        # each tensor is referred to once (readers hold graphs to that: filled in, a graph is
        # then never larger than itself and the weights); a constant the exporter folded (a
        # transposed weight), or a second initializer of the same bytes, stays inside
        free = by_content.get((tensor.data_type, hashlib.sha256(tensor.raw_data).digest()))
        if not free:
            continue
        start, end = free.pop(0)
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in zip(KEYS, (WEIGHTS, str(start), str(end - start)), strict=True):
            tensor.external_data.add(key=key, value=value)
        shared += end - start
    return (model.SerializeToString(), shared) if shared and shared >= SHARED_MIN_TOTAL else (graph, 0)


def references(source: str, model) -> dict[str, tuple[int, int, int, int]]:
    """The graph's references into the weights: initializer name -> (data type, elements,
    start, end); BundleError for one that says more than KEYS, names another file or gives
    an offset or length that is not a plain whole number. Only top-level initializers are
    looked at here; bundle_graph.check_graph refuses external data anywhere else."""
    import onnx

    found = {}
    for i, tensor in enumerate(model.graph.initializer):
        external = tensor.data_location == onnx.TensorProto.EXTERNAL
        if not external and not len(tensor.external_data):
            continue
        name = reprlib.repr(tensor.name)
        keys = [entry.key for entry in tensor.external_data]
        said = {entry.key: entry.value for entry in tensor.external_data}
        if len(said) != len(keys) or set(said) - set(KEYS) or said.get("location") != WEIGHTS:
            twice = sorted({key for key in keys if keys.count(key) > 1})
            raise BundleError(f"{GRAPH} in {source!r} stores the tensor {name} at graph.initializer[{i}] "
                              f"{name} in an external file ({reprlib.repr(said.get('location'))}); a "
                              "bundle's graph must hold all of its data, but for tensors of "
                              f"{WEIGHTS} it names by location, offset and length only (this one "
                              f"says {sorted(said)}" + (f", {twice} more than once)" if twice else ")"))
        if not external:  # onnxruntime would take it for data of its own: none
            raise BundleError(f"{GRAPH} in {source!r} gives the tensor {name} a location in {WEIGHTS} "
                              "without marking its data as external")
        held = [field.name for field, _ in tensor.ListFields() if field.name in DATA_FIELDS]
        if held:
            raise BundleError(f"{GRAPH} in {source!r} gives the tensor {name} its data twice: in "
                              f"{WEIGHTS} and in its own {', '.join(held)}")
        if tensor.name in found:
            raise BundleError(f"{GRAPH} in {source!r} has two initializers named {name}")
        offset, length = (said.get(key, "") for key in KEYS[1:])
        if not all(_plain_number(v) for v in (offset, length)):
            raise BundleError(f"{GRAPH} in {source!r} refers to {WEIGHTS} for the tensor {name} at "
                              f"offset {reprlib.repr(offset)}, length {reprlib.repr(length)}; expected "
                              f"whole numbers (in plain digits, at most {MAX_DIGITS})")
        elements = _elements(source, name, tensor.dims, int(length))
        found[tensor.name] = (tensor.data_type, elements, int(offset), int(offset) + int(length))
    return found


def _plain_number(text: str) -> bool:
    """A whole number as written by share_weights: ASCII digits, no sign, no leading zero,
    short enough never to be a huge integer (Python refuses to parse past 4,300 digits)."""
    return (0 < len(text) <= MAX_DIGITS and text.isascii() and text.isdigit()
            and (text == "0" or not text.startswith("0")))


def _elements(source: str, name: str, dims, length: int) -> int:
    """The number of elements `dims` give, counted no further than `length` (the bytes the
    reference covers: more elements than bytes can never fit), so that crafted dimensions
    cost neither time nor memory."""
    if len(dims) > MAX_RANK:
        raise BundleError(f"{GRAPH} in {source!r} gives the tensor {name} {len(dims)} dimensions; at most "
                          f"{MAX_RANK} are expected")
    if any(d < 0 for d in dims):
        raise BundleError(f"{GRAPH} in {source!r} gives the tensor {name} a negative dimension")
    elements = 1
    for d in dims:
        elements = min(elements * d, length + 1)
    return elements


def check_references(source: str, found: dict, layout: dict) -> None:
    """BundleError unless each reference covers exactly one tensor of the weights file
    (`weights_layout`), of the initializer's type and number of elements."""
    types = _onnx_types()
    taken = {}
    for name, (data_type, elements, start, end) in found.items():
        tensor = layout.get((start, end))
        if tensor is None:
            raise BundleError(f"{GRAPH} in {source!r} refers to bytes {start}-{end} of {WEIGHTS} for the "
                              f"tensor {reprlib.repr(name)}, which are not one tensor of it")
        if (start, end) in taken:  # filled in, such a graph could be many times the weights
            raise BundleError(f"{GRAPH} in {source!r} refers to the {WEIGHTS} tensor "
                              f"{reprlib.repr(tensor[0])} for both {reprlib.repr(taken[start, end])} and "
                              f"{reprlib.repr(name)}; each tensor may be referred to once")
        taken[start, end] = name
        kind = types.get(tensor[1])
        if kind is None or kind[0] != data_type or elements * kind[1].itemsize != end - start:
            raise BundleError(f"{GRAPH} in {source!r} takes the {WEIGHTS} tensor {reprlib.repr(tensor[0])} "
                              f"({tensor[1]}, {end - start} bytes) for the tensor {reprlib.repr(name)} of "
                              f"ONNX type {data_type} and {_count(elements, end - start)} elements, "
                              "which it is not")


def _count(elements: int, length: int) -> str:
    return f"more than {length}" if elements > length else str(elements)


def resolved(graph: bytes, tensors: dict[str, np.ndarray], layout: dict) -> bytes:
    """The graph with every reference into the weights filled in from `tensors` (the weights
    as verified and parsed), so that it holds all of its data again."""
    import onnx

    model = onnx.load_model_from_string(graph)
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL and not len(tensor.external_data):
            continue  # (`references` refused the two apart, one without the other)
        said = {entry.key: entry.value for entry in tensor.external_data}
        start = int(said["offset"])
        name, _ = layout[(start, start + int(said["length"]))]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
        tensor.raw_data = np.ascontiguousarray(tensors[name]).tobytes()  # little-endian, as read
    return model.SerializeToString()
