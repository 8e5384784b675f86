"""Boxes the way users break them: a session on tiny images with one label, hostile numbers
from the browser, a coordinate of -0.0, a test pool of other classes, and cleaning many boxes
without copying an image per box."""

from __future__ import annotations

import json
import logging
import tracemalloc

import numpy as np
import pytest
from stand_ins import StandInDetector

from workbench import Pool, Session
from workbench.learn.box_detector import BoxDetector
from workbench.ui.box_payload import boxes_from_browser


def images(n: int, height: int, width: int, channels: int = 0, seed: int = 0) -> np.ndarray:
    shape = (n, height, width, channels) if channels else (n, height, width)
    return np.random.default_rng(seed).random(shape).astype(np.float32)


def test_a_round_on_one_labeled_tiny_image_trains(tmp_path):
    # an 8 x 8 image is one cell of the detector's grid: one image is one value per channel,
    # which BatchNorm refuses to train on
    pool = Pool.from_arrays(images(3, 8, 8), y=[[(0, 0, 8, 8, "cell")], [], []], task="boxes")
    session = Session(pool, tmp_path / "s", learner=BoxDetector(steps=4), watch=False)
    session.label(pool.item_ids[0], [(0, 0, 8, 8, "cell")])
    session.retrain()
    assert session.next() is not None
    session.close()


def test_a_huge_whole_number_from_the_browser_is_a_bad_label_not_a_crash(tmp_path, caplog):
    pool = Pool.from_arrays(images(2, 32, 48), y=[[(1, 1, 5, 5, "a")], []], task="boxes")
    session = Session(pool, tmp_path / "s", learner=BoxDetector(steps=4), watch=False)
    for bad in (10 ** 400, -10 ** 400):
        with pytest.raises(ValueError, match="not a number of pixels"):
            boxes_from_browser(session, [[bad, 2, 3, 4, "a"]], pool.item_ids[0])
    session.close()


def test_minus_zero_is_stored_as_zero(tmp_path):
    pool = Pool.from_arrays(images(2, 32, 48), y=[[(1, 1, 5, 5, "a")], []], task="boxes")
    session = Session(pool, tmp_path / "s", learner=BoxDetector(steps=4), watch=False)
    session.label(pool.item_ids[0], [(-0.0, 1.5, 5, 5, "a")])
    stored = session.store.current_labels().loc[pool.item_ids[0], "label"]
    assert "-0" not in stored and json.loads(stored)["boxes"] == [[0.0, 1.5, 5, 5, "a"]]
    session.close()
    # the store's own reading (a merge resolution) writes it so too
    from workbench.store.box_changes import dump, stored_boxes

    assert dump(stored_boxes('[[-0.0, 1.5, 5, 5, "a"]]')) == '{"v": 1, "boxes": [[0.0, 1.5, 5, 5, "a"]]}'


def test_a_test_pool_of_other_classes_is_refused(tmp_path):
    pool = Pool.from_arrays(images(4, 32, 48), y=[[(1, 1, 5, 5, "a")], [], [(2, 2, 5, 5, "b")], []],
                            task="boxes")
    test = Pool.from_arrays(images(2, 32, 48, seed=1), y=[[(1, 1, 5, 5, "zz")], []], task="boxes")
    with pytest.raises(ValueError, match="zz"):
        Session(pool, tmp_path / "s", test=test, watch=False)
    # the same classes, or some of them, score the rounds
    same = Pool.from_arrays(images(2, 32, 48, seed=1), y=[[(1, 1, 5, 5, "a")], []], task="boxes")
    Session(pool, tmp_path / "t", test=same, watch=False).close()


def test_suspects_do_not_copy_an_image_per_box(tmp_path, caplog):
    # 10 images of 96 x 96 x 3 (110 kB each) with 120 boxes each: an image copied per box
    # would be 130 MB
    n, side = 10, 96
    boxes = [(x, y, 6, 6, "a" if (x + y) % 16 else "b") for x in range(0, 90, 8) for y in range(0, 90, 8)]
    pool = Pool.from_arrays(images(n, side, side, 3), y=[boxes] * n, task="boxes")
    session = Session(pool, tmp_path / "s", learner=StandInDetector(), watch=False)
    for item_id in pool.item_ids:
        session.label(item_id, boxes)
    caplog.set_level(logging.ERROR)
    tracemalloc.start()
    try:
        table = session.suspects(folds=2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(table) == n * len(boxes)
    assert peak < 40e6, f"suspects() peaked at {peak / 1e6:.0f} MB"
    session.close()


def test_a_box_on_a_wide_image_is_described_to_the_hundredth_pixel():
    from workbench.data.boxes import Box

    assert Box(12345.67, 2, 3.5, 1_000_000.25, "a").describe() == "12345.67,2 3.5x1000000.25 a"


def test_yolo_data_yaml_reads_back_names_and_a_pool_name_full_of_yaml_syntax(tmp_path):
    # YAML reads U+2028 and U+0085 as line breaks: raw, one ended the comment the pool's name
    # is in and made keys of the rest; \x7f it refuses outright. (Class names with a line
    # break are refused by the YOLO export: classes.txt holds a name a line; see
    # test_yolo_refuses_class_names_that_classes_txt_cannot_hold.)
    yaml = pytest.importorskip("yaml")
    names = ["c: [x", "e\x7f", "猫 <b>", 'q"\\', "{a}"]
    pool = Pool.from_arrays(images(len(names), 20, 30), y=[[(1, 1, 5, 5, c)] for c in names], task="boxes",
                            name="pool\u2028train: /elsewhere\u2029x")
    session = Session(pool, tmp_path / "s", learner=BoxDetector(steps=4), watch=False)
    for item_id in pool.item_ids:
        session.label(item_id, pool.true_label(item_id))
    session.export_labels(tmp_path / "yolo", format="yolo")
    data = yaml.safe_load((tmp_path / "yolo" / "data.yaml").read_text(encoding="utf-8"))
    assert data == {"nc": len(names), "names": session.class_names}
    session.close()


@pytest.mark.parametrize("k", [0, -1, 2.5, "3", True])
def test_suspects_wants_a_positive_whole_k(tmp_path, k):
    # head(-1) was every row but the last, head(0) none, 2.5 two: say so instead
    pool = Pool.from_arrays(images(10, 16, 16), y=[[(1, 1, 5, 5, "a")]] * 10, task="boxes")
    session = Session(pool, tmp_path / "s", learner=StandInDetector(), watch=False)
    for item_id in pool.item_ids:
        session.label(item_id, pool.true_label(item_id))
    with pytest.raises(ValueError, match="k must be a positive int"):
        session.suspects(k, folds=2)
    assert len(session.suspects(np.int64(3), folds=2)) == 3
    session.close()


@pytest.mark.parametrize("stored, words", [
    ('{"v": 2, "boxes": []}', "a box list of schema version 2; this version reads version 1"),
    ('{"v": 1, "boxes": {}}', 'holds no list of boxes under "boxes"'),
    ('{"v": 1}', 'holds no list of boxes under "boxes"'),
])
def test_a_stored_box_list_of_another_shape_is_named_for_what_is_wrong(stored, words):
    from workbench.data.boxes import box_list

    # it said "a boxe list", and "schema version 1; this version reads version 1" for a
    # version-1 object without its boxes
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        box_list(stored, 10, 10, ["a"])
