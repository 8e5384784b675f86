"""Reading a bundle: a folder or zip verified file by file before anything is built from
it, and nothing in it executed.

The manifest is read first, and only the files it lists, each at most the size it states;
a file that holds a pickle, a file the manifest does not list or whose checksum differs, a
zip entry that would land outside the bundle, a link, and a bundle from a newer format
version are refused by name. config.json is checked against its JSON Schema
(bundle_config.py), the weights are parsed by safetensors, and the ONNX graph must hold all
of its data (bundle_graph.py) but for exact references to tensors of the weights
(graph_weights.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

from workbench.learn.bundle_config import check_config
from workbench.learn.bundle_errors import BundleError
from workbench.learn.bundle_graph import check_graph
from workbench.learn.bundle_layout import (
    BUNDLE_FILES,
    CARD,
    CONFIG,
    FORMAT,
    FORMAT_VERSION,
    GRAPH,
    MANIFEST,
    MAX_BYTES,
    MAX_JSON_DEPTH,
    MAX_MANIFEST,
    PICKLE_SUFFIXES,
    WEIGHTS,
)
from workbench.learn.bundle_model import Bundle
from workbench.learn.graph_weights import check_references, weights_layout

__all__ = ["read_bundle"]


def read_bundle(path, *, keep_files: bool = True) -> Bundle:
    """Read and verify a bundle folder or zip; nothing in it is executed.

    The manifest is read first, and only the files it lists, each at most the size it
    states: an unlisted or oversized entry, a FIFO or a link is refused before a byte of it
    is read, so a crafted bundle can neither hang the reader nor fill its memory.

    `keep_files=False` (loading a model, not copying the bundle): the weights and the graph
    are not kept as bytes once parsed and checked, one file at a time, so that loading peaks
    at about twice the weights, not four times; `Bundle.onnx` reads the graph again when a
    model needs it, and checks its checksum again."""
    path = Path(path)
    with _open(path) as source:
        return _verify(str(path), source, keep_files,
                       reread=None if keep_files else lambda name, entry: _reread(path, name, entry))


def _open(path: Path):
    if path.is_dir():
        return _Folder(path)
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise BundleError(f"{str(path)!r} is neither a bundle folder nor a zip file")
        return _Zip(path)
    raise BundleError(f"no bundle at {str(path)!r}")


def _reread(path: Path, name: str, entry: dict) -> bytes:
    """A file of a bundle read earlier, read again and checked against the same manifest."""
    if not path.exists():
        raise BundleError(f"the bundle {str(path)!r} was removed after it was loaded; load it again")
    with _open(path) as source:
        if name not in source.entries:
            raise BundleError(f"{name!r} is no longer in {str(path)!r}; it was changed after it was loaded")
        return _verified(str(path), source, name, entry, since="it was loaded")


class _Folder:
    def __init__(self, path: Path):
        self.path = path
        self.entries = {}
        for p in sorted(path.iterdir()):
            mode = p.lstat().st_mode
            if stat.S_ISLNK(mode):
                raise BundleError(f"{p.name!r} in {str(path)!r} is a symbolic link; a bundle holds "
                                  "plain files")
            if not stat.S_ISREG(mode):
                kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
                raise BundleError(f"{p.name!r} in {str(path)!r} is {kind}; a bundle holds plain files")
            self.entries[p.name] = p

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def read(self, name: str, limit: int) -> bytes:
        with open(self.entries[name], "rb") as f:
            return f.read(limit + 1)


class _Zip:
    def __init__(self, path: Path):
        self.path = path
        try:
            self.zip = zipfile.ZipFile(path)
            infos = [i for i in self.zip.infolist() if not i.is_dir()]
        except (zipfile.BadZipFile, OSError) as e:
            raise BundleError(f"{str(path)!r} is not a readable zip file ({e})") from e
        for info in infos:
            _check_entry(path, info.filename)
            if (info.external_attr >> 16) & 0o170000 == 0o120000:
                raise BundleError(f"zip entry {info.filename!r} in {str(path)!r} is a symbolic link")
        # flat, or everything inside one top folder (a zipped bundle folder)
        names = [i.filename for i in infos]
        tops = {PurePosixPath(n).parts[0] for n in names}
        prefix = tops.pop() + "/" if len(tops) == 1 and all("/" in n for n in names) else ""
        self.entries = {}
        for info in infos:
            name = info.filename[len(prefix):]
            if "/" in name:
                raise BundleError(f"zip entry {info.filename!r} in {str(path)!r} is in a subfolder; "
                                  "a bundle holds plain files")
            if name in self.entries:  # which copy would an unzip tool take? neither
                raise BundleError(f"zip entry {info.filename!r} appears twice in {str(path)!r}")
            self.entries[name] = info

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()
        return False

    def read(self, name: str, limit: int) -> bytes:
        info = self.entries[name]
        if info.file_size > limit:
            return b"\0" * (limit + 1)  # the caller reports the size; nothing is inflated
        try:
            with self.zip.open(info) as f:
                return f.read(limit + 1)
        except (zipfile.BadZipFile, OSError, EOFError) as e:  # a bad CRC, a truncated entry
            raise BundleError(f"zip entry {info.filename!r} in {str(self.path)!r} is damaged ({e})") from e


def _check_entry(path: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or pure.is_absolute():
        raise BundleError(f"zip entry {name!r} in {str(path)!r} has an absolute path; refusing the zip")
    if ".." in pure.parts:
        raise BundleError(f"zip entry {name!r} in {str(path)!r} has '..' in its path; refusing the zip")


def _verify(source: str, entries, keep_files: bool = True, reread=None) -> Bundle:
    names = set(entries.entries)
    if MANIFEST not in names:
        raise BundleError(f"{source!r} has no {MANIFEST}; it is not a workbench model bundle")
    data = data_of_manifest = entries.read(MANIFEST, MAX_MANIFEST)
    if len(data) > MAX_MANIFEST:
        raise BundleError(f"{MANIFEST} in {source!r} is larger than {MAX_MANIFEST} bytes")
    _refuse_pickle(source, MANIFEST, data)
    manifest = _json(source, MANIFEST, data)
    _check_version(source, MANIFEST, manifest)
    listed = manifest.get("files")
    if not isinstance(listed, dict):
        raise BundleError(f"{MANIFEST} in {source!r} has no 'files' table")
    for name in sorted((names | set(listed)) - {MANIFEST}):
        if name.lower().endswith(PICKLE_SUFFIXES):
            raise BundleError(f"{name!r} in {source!r} holds a pickle (its name ends in "
                              f"{Path(name).suffix}, a pickle format); a bundle never runs code when "
                              "loaded, so it is refused")
        if name not in listed:
            raise BundleError(f"{name!r} in {source!r} is not in the manifest; refusing a bundle with "
                              "files nobody vouched for")
        if name not in BUNDLE_FILES:
            raise BundleError(f"{name!r} in {source!r} is not a bundle file; a bundle holds only "
                              f"{', '.join(BUNDLE_FILES)} and {MANIFEST}")
        if name not in names:
            raise BundleError(f"{name!r} is listed in {MANIFEST} but missing from {source!r}")
    for name in (CONFIG, WEIGHTS, GRAPH):
        if name not in listed:
            raise BundleError(f"{source!r} has no {name}")
    for name, entry in sorted(listed.items()):
        _size(source, name, entry)  # every size is sane before a byte of any file is read
    # One file at a time, each parsed as soon as it is verified (the graph before the weights:
    # the graph's parse and the weights' copy never both stand beside the other's bytes)
    files, config, tensors, card, shared, layout = {}, None, None, "", {}, None
    for name in sorted(listed, key=lambda n: (n == WEIGHTS, n)):
        data = _verified(source, entries, name, listed[name])
        if name == CONFIG:
            config = _json(source, CONFIG, data)
            _check_version(source, CONFIG, config)
            check_config(source, config)  # workbench.learn.bundle_config: JSON Schema
        elif name == WEIGHTS:
            tensors = _tensors(source, data)
            if shared:  # the graph's references into the weights (read first), held to them
                layout = weights_layout(data)
                check_references(source, shared, layout)
        elif name == GRAPH:
            shared = check_graph(source, data)
        elif name == CARD:
            try:
                card = data.decode("utf-8")
            except UnicodeDecodeError as e:
                raise BundleError(f"{CARD} in {source!r} is not UTF-8 text ({e})") from e
        if keep_files or name not in (WEIGHTS, GRAPH):
            files[name] = data
        del data  # the weights' bytes go before the model is built from their copy
    files[MANIFEST] = data_of_manifest
    return Bundle(source, config, tensors, card, manifest, files,
                  None if reread is None else lambda name: reread(name, listed[name]), layout)


def _size(source: str, name: str, entry) -> int:
    size = entry.get("bytes") if isinstance(entry, dict) else None
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_BYTES:
        raise BundleError(f"{MANIFEST} in {source!r} gives {name!r} a size of {size!r}; expected "
                          f"a whole number of bytes up to {MAX_BYTES}")
    return size


def _verified(source: str, entries, name: str, entry: dict, since: str = "export") -> bytes:
    """The file `name`, checked against its manifest entry: its size, no pickle, its sha256."""
    size = _size(source, name, entry)
    data = entries.read(name, size)
    if len(data) != size:
        raise BundleError(f"size mismatch for {name!r} in {source!r}: the manifest says {size} "
                          f"bytes, the file has {'more' if len(data) > size else len(data)}; it "
                          f"was changed after {since}")
    _refuse_pickle(source, name, data)
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.get("sha256"):
        raise BundleError(f"checksum mismatch for {name!r} in {source!r}: the manifest says "
                          f"sha256 {str(entry.get('sha256'))[:12]}..., the file has {digest[:12]}...; "
                          f"it was changed after {since}")
    return data


def _tensors(source: str, data: bytes) -> dict:
    try:
        from safetensors.numpy import load

        return load(data)
    except Exception as e:  # a malformed header: safetensors parses, it never executes
        raise BundleError(f"{WEIGHTS} in {source!r} is not a valid safetensors file ({e})") from e


def _refuse_pickle(source: str, name: str, data: bytes) -> None:
    """Pickles (and torch.save files, which are zips around one) by content, for a clear
    message: the parsers each file goes through (JSON, safetensors, ONNX, UTF-8) would
    refuse them anyway, and nothing here unpickles."""
    why = None
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5 and data[8:9] != b"{":
        # (a safetensors file whose header is 640-1535 bytes long starts with the same two
        # bytes; its JSON header then begins at byte 8, where a pickle has no '{')
        why = f"it starts with the pickle protocol {data[1]} header"
    elif data[:4] == b"PK\x03\x04":
        try:
            inner = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            inner = []
        if any(n.endswith(".pkl") for n in inner):
            why = "it is a torch.save archive (a pickle inside a zip)"
    elif data[:6] == b"\x93NUMPY" and (b"'O'" in data[:256] or b"'|O'" in data[:256]):
        why = "it is a NumPy file of Python objects (pickled)"
    if why:
        raise BundleError(f"{name!r} in {source!r} holds a pickle ({why}); a bundle never runs code "
                          "when loaded, so it is refused")


def _json(source: str, name: str, data: bytes) -> dict:
    too_deep = (f"{name} in {source!r} is nested more than {MAX_JSON_DEPTH} levels deep; a "
                "bundle's JSON is not")
    try:
        value = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(f"{name} in {source!r} is not valid JSON ({e})") from e
    except RecursionError:  # the parser recurses per level: thousands of '[' exhaust it
        raise BundleError(too_deep) from None
    # whatever reads it later (a schema check, a model card, json.dumps at the next export)
    # recurses too: a bound here keeps them all far from the recursion limit
    if _depth(value) > MAX_JSON_DEPTH:
        raise BundleError(too_deep)
    if not isinstance(value, dict):
        raise BundleError(f"{name} in {source!r} must hold a JSON object")
    return value


def _depth(value) -> int:
    """How deeply lists and objects nest in a parsed JSON value (1: a flat object), counted
    with a stack, not by recursion."""
    deepest, stack = 0, [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        inside = value.values() if isinstance(value, dict) else value
        stack.extend((v, depth + 1) for v in inside if isinstance(v, (dict, list)))
    return deepest


def _check_version(source: str, name: str, doc: dict) -> None:
    if doc.get("format") != FORMAT:
        raise BundleError(f"{name} in {source!r} says format {doc.get('format')!r}; expected {FORMAT!r}")
    version = doc.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BundleError(f"{name} in {source!r} has format_version {version!r}; expected a whole "
                          "number from 1")
    if version > FORMAT_VERSION:
        raise BundleError(f"{source!r} was written by bundle format version {version}; this "
                          f"workbench reads versions up to {FORMAT_VERSION}: upgrade workbench to load it")
