"""What a model bundle is made of: its files, its format and version, and the limits a
reader holds every file to. Writing (bundle_write.py) and reading (bundle_read.py) both
take these from here, so the two never disagree on what a bundle is."""

from __future__ import annotations

FORMAT = "workbench-model"
FORMAT_VERSION = 2  # the newest this workbench reads: 2, a graph that shares tensors with the weights
BASE_VERSION = 1  # a bundle whose graph holds all of its data, which every workbench version reads
CONFIG, WEIGHTS, GRAPH, CARD, MANIFEST = ("config.json", "model.safetensors", "model.onnx",
                                          "README.md", "manifest.json")
BUNDLE_FILES = (CONFIG, WEIGHTS, GRAPH, CARD)  # what a manifest may list
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth", ".joblib", ".bin", ".ckpt", ".npy")
MAX_BYTES = 4 << 30  # one file larger than this is refused before it is read
MAX_MANIFEST = 1 << 20
MAX_JSON_DEPTH = 100  # config.json's deepest is a chain of bundles each started from the last
