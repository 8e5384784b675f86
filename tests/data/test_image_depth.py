"""Image files deeper than 8 bits, and files too large to open: 16-bit greys (microscopy,
X-ray, depth maps) keep their values instead of saturating at 255, a folder that mixes depths
and a model given files of another depth than it was trained on are refused by name, and
Pillow's decompression-bomb refusal names the file (workbench/data/loaders.py, render.py)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from sklearn.linear_model import LogisticRegression

from workbench import Pool, load_model
from workbench.data.render import _render_image
from workbench.learn.bundle import write_bundle
from workbench.learn.model import InputSignature, Model


def write_folder(root, n=12, *, depth=16):
    """n images of 16 x 16 in two class folders; the class shows in the brightness."""
    for i in range(n):
        cls = "bright" if i % 2 else "dark"
        level = (40_000 if cls == "bright" else 8_000) + 37 * i
        a = np.full((16, 16), level, np.uint16) + np.arange(16, dtype=np.uint16)
        if depth == 8:
            a = (a // 257).astype(np.uint8)
        (root / cls).mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(root / cls / f"{i}.png")
    return root


def shown(pool, position) -> np.ndarray:
    card = _render_image(pool, position)
    assert card["kind"] == "image", card
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(card["data"]))).convert("L"))


def test_16_bit_greys_keep_their_values_and_show_as_they_are(tmp_path):
    pool = Pool.from_folder(write_folder(tmp_path / "deep"))
    assert pool.image_scale == 65535.0
    means = {c: pool.X[pool.y == c].mean() for c in ("dark", "bright")}
    # read as 8-bit, every pixel was 255: both classes white, nothing to learn
    assert means["dark"] == pytest.approx(8_000 / 65535, abs=0.01)
    assert means["bright"] == pytest.approx(40_000 / 65535, abs=0.01)
    first_dark = int(np.flatnonzero(pool.y == "dark")[0])
    assert 20 < shown(pool, first_dark).mean() < 40  # the widget's picture: dark grey, not white


def test_a_folder_that_mixes_bit_depths_is_refused_naming_the_file(tmp_path):
    root = write_folder(tmp_path / "mixed")
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(root / "dark" / "z8.png")
    with pytest.raises(ValueError, match=r"mixed bit depths: '.*z8\.png' is 8-bit"):
        Pool.from_folder(root)


def test_a_model_refuses_files_of_another_depth_than_it_learned_from(tmp_path):
    pool = Pool.from_folder(write_folder(tmp_path / "deep"))
    X = pool.X.reshape(len(pool), -1)
    model = Model(LogisticRegression(max_iter=300).fit(X, pool.y), pool.classes, InputSignature.of(pool))
    loaded = load_model(write_bundle(model, tmp_path / "b", card="# test\n", training={}))
    files = list(pool.items["path"])
    assert list(loaded.predict(files)) == list(pool.y)
    shallow = write_folder(tmp_path / "shallow", n=2, depth=8)
    with pytest.raises(ValueError, match=r"hold 8-bit pixels \(up to \d+\), but the model's images were "
                                         r"16-bit \(divided by 65535\)"):
        loaded.predict(sorted(str(p) for p in shallow.rglob("*.png")))
    with pytest.raises(ValueError, match=r"an integer array \(uint8\) holds 8-bit pixels"):
        loaded.predict(np.full((2, 16, 16), 200, np.uint8))  # raw 8-bit pixels / 65535: black


def test_float_and_32_bit_files_are_read_as_their_pool_was(tmp_path):
    # float TIFFs in [0, 1] (a pool scaled by 1) and 32-bit ones with values up to 255 (by 255)
    for mode, values, scale in (("F", [0.1, 0.9], 1.0), ("I", [10, 250], 255.0)):
        root = tmp_path / mode
        for i, v in enumerate(values * 3):
            (root / str(i % 2)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8), v, np.float32 if mode == "F" else np.int32), mode=mode).save(
                root / str(i % 2) / f"{i}.tiff")
        pool = Pool.from_folder(root)
        assert pool.image_scale == scale and pool.X.max() <= 1
        X = pool.X.reshape(len(pool), -1)
        model = Model(LogisticRegression().fit(X, pool.y), pool.classes, InputSignature.of(pool))
        assert list(model.predict(list(pool.items["path"]))) == list(pool.y)  # its own files


def test_an_image_over_pillows_size_limit_is_refused_naming_the_file(tmp_path, monkeypatch):
    root = write_folder(tmp_path / "deep", n=4)
    pool = Pool.from_folder(root)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 16 x 16 = 256 > 2 x 100: Pillow refuses
    with pytest.raises(ValueError, match=r"cannot read image '.*\.png'.*raise PIL.Image.MAX_IMAGE_PIXELS"):
        Pool.from_folder(root)
    card = _render_image(pool, 0)  # the widget shows why, instead of failing
    assert card["kind"] == "error" and "decompression bomb" in card["reason"]
