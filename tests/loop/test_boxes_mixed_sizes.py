"""A boxes session on a folder of photos of three sizes, end to end: each image labeled, shown
and checked at its own size (a box in the padding refused, naming that size), the detector's
suggestions and its bundle's boxes never leaving an image's own area, COCO, YOLO and Parquet
exports carrying each image's size, the store reopened from the folder, a held-out pool of
other sizes scored. (The pool itself: tests/data/test_pool_mixed_sizes.py.)"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import BaseEstimator

from workbench import BoxDetector, Pool, Session, load_model
from workbench.data.boxes import image_size
from workbench.loop.label_export import export_labels
from workbench.ui.box_payload import box_fields, boxes_from_browser

SIZES = [(96, 64), (64, 72), (48, 40)]  # (width, height): the canvas is 96 x 72
CLASSES = ["a", "b"]
N = 12


def _scene(i: int) -> tuple[np.ndarray, list[tuple]]:
    """Image i (of size SIZES[i % 3]): dark noise with one or two squares, a bright one (a) and
    a grey one (b), and their boxes."""
    rng = np.random.default_rng(i)
    width, height = SIZES[i % 3]
    image = rng.integers(0, 40, (height, width)).astype(np.uint8)
    boxes = []
    for label, value in (("a", 240), ("b", 140))[: 1 + i % 2]:
        side = 14
        x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        while any(abs(x - b[0]) < side + 2 and abs(y - b[1]) < side + 2 for b in boxes):
            x, y = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        image[y:y + side, x:x + side] = value
        boxes.append((x, y, side, side, label))
    return image, boxes


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mixed") / "photos"
    folder.mkdir()
    truth = {}
    for i in range(N):
        image, boxes = _scene(i)
        Image.fromarray(image, mode="L").save(folder / f"{i:02d}.png")
        truth[f"{i:02d}.png"] = boxes
    return folder, truth


def _session(photos, store, **options) -> Session:
    folder, truth = photos
    pool = Pool.from_folder(folder, task="boxes", classes=CLASSES)
    session = Session(pool, store, watch=False, **options)
    for item_id, boxes in truth.items():
        session.label(item_id, boxes)
    return session


class Everywhere(BaseEstimator):
    """A stand-in detector that finds one box over the whole padded canvas, and one in its
    bottom-right corner (the padding of every image here)."""

    def fit_boxes(self, images, box_lists):
        return self

    def predict_boxes(self, images, min_score=0.05):
        height, width = np.shape(images)[1:3]
        return [[(0.0, 0.0, float(width), float(height), "a", 0.9),
                 (width - 5.0, height - 5.0, 5.0, 5.0, "b", 0.8)] for _ in range(len(images))]

    def uncertainty(self, images):
        return np.zeros((len(images), 2))


def test_labels_and_the_widget_use_each_images_own_size(photos, tmp_path):
    session = _session(photos, tmp_path / "store")
    pool = session.pool
    assert pool.X.shape == (N, 72, 96) and pool.image_sizes.tolist() == [list(SIZES[i % 3]) for i in range(N)]
    # (60, 50) is inside the canvas and inside the 96 x 64 image, but in the padding of 64 x 72 and 48 x 40
    session.label("00.png", [(60, 50, 10, 10, "a")])
    for item, size in (("01.png", "64x72"), ("02.png", "48x40")):
        with pytest.raises(ValueError, match=f"reaches outside the image \\({size} pixels\\)"):
            session.label(item, [(60, 50, 10, 10, "a")])
        with pytest.raises(ValueError, match=f"reaches outside the image \\({size} pixels\\)"):
            boxes_from_browser(session, [[60, 50, 10, 10, "a"]], item)
    assert sorted(session.label_of("01.png")) == sorted(photos[1]["01.png"])  # unchanged
    for i, item in enumerate(pool.item_ids):
        width, height = SIZES[i % 3]
        assert box_fields(session, item) == {"width": width, "height": height}  # the SVG's viewBox
        render = pool.render(item)
        assert (render["width"], render["height"]) == (width, height)
    session.close()


def test_suggestions_never_leave_an_images_own_area(photos, tmp_path):
    session = _session(photos, tmp_path / "store", learner=Everywhere())
    session.retrain()
    for position, item in enumerate(session.pool.item_ids):
        boxes, confidence = session.model.boxes_of(position)
        width, height = image_size(session.pool, item)
        assert list(boxes) == [(0, 0, width, height, "a")] and confidence == pytest.approx(0.9)
    session.close()


def test_the_detector_trains_and_its_bundle_reads_files_of_any_size(photos, tmp_path):
    folder, truth = photos
    session = _session(photos, tmp_path / "store", learner=BoxDetector(labels=CLASSES, steps=60))
    session.retrain()
    pool = session.pool
    assert session.history.iloc[-1]["n_labels"] > 0
    suggested = []
    for position, item in enumerate(pool.item_ids):
        boxes, _ = session.model.boxes_of(position)
        width, height = image_size(pool, item)
        assert all(b.x >= 0 and b.y >= 0 and b.x + b.w <= width and b.y + b.h <= height for b in boxes)
        suggested.append(boxes)
    found = session.model.detections(range(N))
    for (width, height), boxes in zip(pool.image_sizes, found):
        assert all(x + w <= width and y + h <= height for x, y, w, h, *_ in boxes)
    bundle = session.export(tmp_path / "detector")
    config = json.loads((bundle / "config.json").read_text())
    assert config["input"]["shape"] == [72, 96]  # the canvas the detector reads
    model = load_model(bundle)
    paths = [folder / item for item in pool.item_ids]  # raw files of three sizes, in one batch
    assert model.predict_boxes(paths) == suggested
    assert model.predict_boxes(pool) == suggested
    assert model.predict_boxes([np.asarray(Image.open(p)) for p in paths]) == suggested  # raw pixels
    table = model.table(list(pool.item_ids), [str(p) for p in paths], batch=5)
    sizes = dict(zip(pool.item_ids, map(tuple, pool.image_sizes)))
    assert ((table["x"] + table["w"]) <= [sizes[i][0] for i in table["item_id"]]).all()
    big = tmp_path / "big.png"
    Image.fromarray(np.zeros((73, 20), np.uint8)).save(big)
    with pytest.raises(ValueError, match=r"image 1 has shape \(73, 20\); this model reads images of up to "
                                         r"96x72 pixels"):
        model.predict_boxes([paths[0], big])
    session.close()


def test_exports_carry_each_images_own_size(photos, tmp_path):
    session = _session(photos, tmp_path / "store")
    folder, truth = photos
    coco = json.loads(export_labels(session, tmp_path / "labels.json").read_text())
    assert [(im["file_name"], im["width"], im["height"]) for im in coco["images"]] == \
        [(f"{i:02d}.png", *SIZES[i % 3]) for i in range(N)]
    yolo = export_labels(session, tmp_path / "yolo", format="yolo")
    for i in range(N):
        width, height = SIZES[i % 3]
        lines = (yolo / f"{i:02d}.png.txt").read_text().splitlines()
        expected = [f"{CLASSES.index(b[4])} {(b[0] + b[2] / 2) / width:.6f} {(b[1] + b[3] / 2) / height:.6f} "
                    f"{b[2] / width:.6f} {b[3] / height:.6f}" for b in truth[f"{i:02d}.png"]]
        assert sorted(lines) == sorted(expected)
        assert all(0 <= float(v) <= 1 for line in lines for v in line.split()[1:])
    assert "48x40 to 96x64 pixels" in (yolo / "data.yaml").read_text()
    frame = pd.read_parquet(export_labels(session, tmp_path / "labels.parquet"))
    assert list(zip(frame["width"], frame["height"])) == [SIZES[i % 3] for i in range(N)]
    session.close()


def test_the_store_reopens_on_the_folder_with_each_images_size(photos, tmp_path):
    _session(photos, tmp_path / "store").close()
    session = Session.open(tmp_path / "store", watch=False)
    assert session.task == "boxes" and session.pool.X.shape == (N, 72, 96)
    assert session.pool.image_sizes.tolist() == [list(SIZES[i % 3]) for i in range(N)]
    assert sorted(session.label_of("05.png")) == sorted(photos[1]["05.png"])
    with pytest.raises(ValueError, match=r"reaches outside the image \(48x40 pixels\)"):
        session.label("02.png", [(40, 30, 10, 10, "a")])
    session.close()


def test_a_held_out_pool_of_other_sizes_is_scored_and_one_too_large_is_refused(photos, tmp_path):
    images, boxes = zip(*(_scene(i) for i in range(20, 26)))
    cut = [im[: im.shape[0] - 4, : im.shape[1] - 8] for im in images]  # sizes the pool has not
    inside = [[b for b in bs if b[0] + b[2] <= im.shape[1] and b[1] + b[3] <= im.shape[0]]
              for im, bs in zip(cut, boxes)]
    test = Pool.from_arrays(cut, y=inside, task="boxes", classes=CLASSES)
    assert test.X.shape[1:] != (72, 96) and test.image_sizes is not None
    session = _session(photos, tmp_path / "store", test=test, learner=Everywhere())
    session.retrain()
    row = session.history.iloc[-1]
    assert row["eval_on"] == "held-out test images (6)" and 0 <= row["box_map50"] <= 1
    X, y = session.test
    assert X.shape == (6, 72, 96) and session.test.sizes.tolist() == test.image_sizes.tolist()
    session.close()
    too_big = Pool.from_arrays([np.zeros((80, 10)), np.zeros((20, 10))], y=[[], []], task="boxes",
                               classes=CLASSES)
    with pytest.raises(ValueError, match=r"up to 10x80 pixels.*up to 96x72 pixels"):
        Session(Pool.from_folder(photos[0], task="boxes", classes=CLASSES), tmp_path / "other",
                test=too_big, watch=False)


def test_suspects_run_on_images_of_three_sizes(photos, tmp_path):
    session = _session(photos, tmp_path / "store", learner=Everywhere())
    table = session.suspects(folds=2)
    assert (table["kind"] == "given").sum() == sum(len(b) for b in photos[1].values())
    sizes = dict(zip(session.pool.item_ids, map(tuple, session.pool.image_sizes)))
    left = table[table["kind"] == "left out"]
    assert ((left["x"] + left["w"]) <= [sizes[i][0] for i in left["item_id"]]).all()
    assert ((left["y"] + left["h"]) <= [sizes[i][1] for i in left["item_id"]]).all()
    session.close()
