"""Box labels between annotators (box F1 at IoU 0.5, mean IoU) and out of the workbench
(Parquet for `datasets`, COCO JSON, a YOLO folder)."""

import json
import math

import datasets as hf  # Hugging Face's (a dev dependency): the reader users have
import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, Pool, Session, cli
from workbench.data.boxes import BoxList
from workbench.loop.agreement import agreement
from workbench.loop.box_agreement import consensus
from workbench.loop.box_export import file_names
from workbench.loop.label_export import export_labels
from workbench.store.box_changes import Box

CLASSES = ["cat", "dog"]
W, H = 40, 30  # every image of the pool: 40 pixels wide, 30 high
IDS = ["a/1", "b 2", "c", "classes"]
TRUTH = [[(2, 3, 10, 8, "cat"), (20, 10, 12.5, 16, "dog")], [(0, 0, 40, 30, "dog")], [],
         [(5, 5, 5, 5, "cat")]]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def boxes_json(*boxes) -> str:
    return json.dumps({"v": 1, "boxes": [list(b) for b in boxes]})


@pytest.fixture
def pool():
    images = np.random.default_rng(0).random((len(IDS), H, W)).astype(np.float32)
    return Pool.from_arrays(images, y=TRUTH, task="boxes", classes=CLASSES, item_ids=IDS)


# -- agreement -----------------------------------------------------------------------------------
def test_two_annotators_get_box_f1_at_iou_half_and_the_mean_iou_of_the_pairs(tmp_path):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    ann = {"i0": boxes_json((10, 10, 20, 20, "3"), (50, 50, 10, 10, "5")),
           "i1": boxes_json((0, 0, 10, 10, "3")),
           "i2": boxes_json(),
           "i3": boxes_json((0, 0, 10, 10, "3")),
           "i4": boxes_json((1, 1, 4, 4, "3"))}            # only ann labels i4
    bob = {"i0": boxes_json((11, 10, 20, 20, "3"),         # a pixel off: the same object
                            (50, 50, 10, 10, "7")),        # another class: a miss
           "i1": '[[0, 0, 10, 10, "3"]]',                 # the same box, in the bare form
           "i2": boxes_json(),                            # nothing drawn, by both
           "i3": boxes_json((5, 0, 10, 10, "3"))}          # IoU 1/3: a miss
    for item, label in ann.items():
        store.append(item, label, annotator="ann")
    for item, label in bob.items():
        store.append(item, label, annotator="bob", action="relabel")
    figures = agreement(store.events(), task="boxes")
    assert figures.n_items == 4
    assert list(figures.pairs.columns) == ["annotator_a", "annotator_b", "n_items", "cohen_kappa",
                                           "box_f1", "mean_iou"]
    pair = figures.pairs.iloc[0]
    assert (pair["annotator_a"], pair["annotator_b"], pair["n_items"]) == ("ann", "bob", 4)
    assert pair["box_f1"] == pytest.approx(2 * 2 / (4 + 4))  # 2 of ann's 4 boxes, 2 of bob's 4
    assert pair["mean_iou"] == pytest.approx((380 / 420 + 1) / 2)
    assert math.isnan(pair["cohen_kappa"]) and math.isnan(figures.alpha)
    per = figures.per_annotator.set_index("annotator")
    assert per["n_items"].tolist() == [4, 4]
    assert per["agreement_with_consensus"].tolist() == pytest.approx([0.5, 0.5])
    # a box a pixel off is agreement; a box of another class or far off is not
    assert sorted(figures.disagreements["item_id"]) == ["i0", "i3"]
    i3 = figures.disagreements.set_index("item_id").loc["i3"]
    assert i3["labels"] == {"ann": ann["i3"], "bob": bob["i3"]} and i3["n_annotators"] == 2


def test_three_annotators_are_scored_against_the_objects_most_of_the_others_drew(tmp_path):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    labels = {"e0": {"ann": [(0, 0, 10, 10, "3")], "bob": [(1, 0, 10, 10, "3")], "cy": [(0, 0, 10, 10, "5")]},
              "e1": {"ann": [(20, 20, 10, 10, "7")], "bob": [(20, 20, 10, 10, "7")],
                     "cy": [(20, 20, 10, 10, "7")]}}
    for item, by in labels.items():
        for who, boxes in by.items():
            store.append(item, boxes_json(*boxes), annotator=who)
    figures = agreement(store.events(), task="boxes")
    f1 = {(r.annotator_a, r.annotator_b): r.box_f1 for r in figures.pairs.itertuples()}
    assert f1 == pytest.approx({("ann", "bob"): 1.0, ("ann", "cy"): 0.5, ("bob", "cy"): 0.5})
    iou = {(r.annotator_a, r.annotator_b): r.mean_iou for r in figures.pairs.itertuples()}
    assert iou == pytest.approx({("ann", "bob"): (90 / 110 + 1) / 2, ("ann", "cy"): 1.0, ("bob", "cy"): 1.0})
    agreed = figures.per_annotator.set_index("annotator")["agreement_with_consensus"]
    # cy against {e0: the 3 ann and bob drew, e1: the 7}: 1 of 2 each; ann against {e0: none
    # (bob and cy disagree), e1: the 7}: 1 pair among 2 drawn and 1 agreed, 2 * 1 / 3
    assert agreed["cy"] == pytest.approx(0.5) and agreed["ann"] == pytest.approx(2 / 3)
    assert figures.disagreements["item_id"].tolist() == ["e0"]
    assert figures.disagreements["n_annotators"].tolist() == [3]


def test_the_consensus_is_the_mean_box_of_an_object_most_drew():
    drawn = [frozenset({Box(0, 0, 10, 10, "3"), Box(50, 50, 5, 5, "7")}),
             frozenset({Box(2, 0, 10, 10, "3")}),
             frozenset({Box(1, 1, 10, 10, "5")})]
    assert consensus(drawn) == {Box(1.0, 0.0, 10.0, 10.0, "3")}  # 2 of 3; the 7 and the 5 by one each
    assert consensus(drawn[:1]) == drawn[0] and consensus([frozenset(), frozenset()]) == frozenset()


def test_a_label_that_is_not_a_box_list_is_left_out_with_a_warning(tmp_path, caplog):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    store.append("a", boxes_json((0, 0, 2, 2, "3")), annotator="ann")
    store.append("a", boxes_json((0, 0, 2, 2, "3")), annotator="bob")
    store.append("b", boxes_json((0, 0, 2, 2, "3")), annotator="ann")
    store.append("b", '[[0, 0, 0, 2, "3"]]', annotator="bob")  # a raw write outside a session
    store.append("c", boxes_json((0, 0, 2, 2, "3")), annotator="ann")
    store.append("c", "3", annotator="bob")
    with caplog.at_level("WARNING"):
        figures = agreement(store.events(), task="boxes")
    assert "leaves out the label of item 'b'" in caplog.text and "width and height" in caplog.text
    assert "leaves out the label of item 'c'" in caplog.text
    assert figures.n_items == 1 and figures.pairs["box_f1"].tolist() == [1.0]
    assert figures.disagreements.empty


def test_sessions_and_the_command_line_read_a_boxes_store_as_boxes(pool, tmp_path, capsys):
    ann = Session(pool, tmp_path / "s", watch=False, annotator="ann")
    ann.label("a/1", TRUTH[0])
    ann.label("b 2", TRUTH[1])
    ann.close()
    bob = Session(pool, tmp_path / "s", watch=False, annotator="bob")
    bob.label("a/1", TRUTH[0][:1])  # misses the dog
    bob.label("b 2", [(0, 0, 39, 30, "dog")])  # a pixel narrower: the same object
    figures = bob.agreement()
    assert figures.pairs["box_f1"].tolist() == pytest.approx([2 * 2 / (3 + 2)])
    assert figures.pairs["mean_iou"].tolist() == pytest.approx([(1 + 39 / 40) / 2])
    assert figures.disagreements["item_id"].tolist() == ["a/1"]
    bob.close()
    assert cli.main(["agreement", str(tmp_path / "s"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["box_f1"] == pytest.approx(0.8) and rows[0]["cohen_kappa"] is None


# -- export --------------------------------------------------------------------------------------
@pytest.fixture
def labeled(pool, tmp_path):
    session = Session(pool, tmp_path / "s", watch=False, annotator="ann")
    session.label("c", [])
    session.label("b 2", TRUTH[1])
    session.label("a/1", [(2, 3, 10, 8, "dog")])
    session.label("a/1", TRUTH[0])  # the current label is what goes out
    yield session
    session.close()


def test_boxes_export_reads_back_as_structs_of_pixels_and_class_labels(labeled, tmp_path):
    assert labeled.task == "boxes" and isinstance(labeled.labels["a/1"], BoxList)
    path = export_labels(labeled, tmp_path / "out" / "labels.parquet")
    ds = hf.Dataset.from_parquet(str(path))
    assert labeled.class_names == CLASSES
    assert ds.features["boxes"] == hf.List({"x": hf.Value("float32"), "y": hf.Value("float32"),
                                            "w": hf.Value("float32"), "h": hf.Value("float32"),
                                            "label": hf.ClassLabel(names=CLASSES)})
    assert ds.features["width"] == hf.Value("int32") and ds.features["height"] == hf.Value("int32")
    assert ds["item_id"] == ["a/1", "b 2", "c"]  # pool order; "classes" is not labeled
    got = [[(b["x"], b["y"], b["w"], b["h"], CLASSES[b["label"]]) for b in row] for row in ds["boxes"]]
    assert got == [TRUTH[0], TRUTH[1], []]
    assert ds["width"] == [W] * 3 and ds["height"] == [H] * 3
    assert ds["annotator"] == ["ann"] * 3 and ds["query"] == ["manual"] * 3
    frame = pd.read_parquet(path)  # plain pandas reads it too
    assert frame["time"].dt.tz is not None and len(frame) == 3


def test_coco_export_is_images_annotations_and_categories(labeled, tmp_path):
    path = export_labels(labeled, tmp_path / "out" / "labels.json")
    coco = json.loads(path.read_text(encoding="utf-8"))
    assert coco["categories"] == [{"id": 1, "name": "cat", "supercategory": ""},
                                  {"id": 2, "name": "dog", "supercategory": ""}]
    assert coco["images"] == [{"id": 1, "file_name": "a/1", "width": W, "height": H},
                              {"id": 2, "file_name": "b 2", "width": W, "height": H},
                              {"id": 3, "file_name": "c", "width": W, "height": H}]
    assert coco["annotations"] == [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 8], "area": 80, "iscrowd": 0},
        {"id": 2, "image_id": 1, "category_id": 2, "bbox": [20, 10, 12.5, 16], "area": 200.0, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 2, "bbox": [0, 0, 40, 30], "area": 1200, "iscrowd": 0}]
    other = export_labels(labeled, tmp_path / "coco.txt", format="coco")
    assert json.loads(other.read_text(encoding="utf-8")) == coco


def test_yolo_export_is_a_folder_of_normalised_centres_with_safe_file_names(labeled, tmp_path):
    folder = export_labels(labeled, tmp_path / "yolo", format="yolo")
    mapping = json.loads((folder / "item_ids.json").read_text(encoding="utf-8"))
    assert sorted(mapping.values()) == ["a/1", "b 2", "c"]
    name = {item: file for file, item in mapping.items()}
    assert name["c"] == "c.txt" and "/" not in name["a/1"] and " " not in name["b 2"]
    assert name["a/1"].startswith("a_1-") and name["b 2"].startswith("b_2-")
    assert sorted(p.name for p in folder.iterdir()) == sorted([*mapping, "classes.txt", "data.yaml",
                                                                "item_ids.json"])
    assert (folder / name["a/1"]).read_text() == ("0 0.175000 0.233333 0.250000 0.266667\n"
                                                  "1 0.656250 0.600000 0.312500 0.533333\n")
    assert (folder / name["b 2"]).read_text() == "1 0.500000 0.500000 1.000000 1.000000\n"
    assert (folder / "c.txt").read_text() == ""  # labeled: no object
    assert (folder / "classes.txt").read_text() == "cat\ndog\n"
    data = (folder / "data.yaml").read_text()
    assert "nc: 2\n" in data and 'names: ["cat", "dog"]\n' in data
    # labeled more, exported again: the earlier export is replaced; a folder of other things is not
    labeled.label("classes", [(0, 0, 4, 6, "dog")])
    export_labels(labeled, folder, format="yolo")
    mapping = json.loads((folder / "item_ids.json").read_text(encoding="utf-8"))
    again = {item: file for file, item in mapping.items()}
    assert again["classes"] != "classes.txt" and (folder / again["classes"]).read_text() == \
        "1 0.050000 0.100000 0.100000 0.200000\n"
    assert (folder / "classes.txt").read_text() == "cat\ndog\n"
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="holds something else"):
        export_labels(labeled, tmp_path / "mine", format="yolo")
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_yolo_file_names_are_unique_safe_and_stable():
    ids = ["x", "X", "a/b", "a_b", "a:b", ".hidden", "data", "", "é", "n" * 300]
    names = file_names(ids)
    assert names["x"] == "x" and names["a_b"] == "a_b"
    assert len({n.lower() for n in names.values()}) == len(ids)  # unique, even on a case-blind disk
    assert all(n and not n.startswith(".") and len(n) <= 100 and n.isascii() and "/" not in n
               for n in names.values())
    assert names["data"] != "data" and file_names(ids) == names


def test_box_formats_are_refused_for_other_pools(tmp_path):
    pool = Pool.from_texts(["a b", "c d"], y=["x", "y"], embeddings=np.eye(2))
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("0", "x")
    for path, kwargs in ((tmp_path / "labels.json", {}), (tmp_path / "y", {"format": "yolo"})):
        with pytest.raises(ValueError, match="writes the boxes of a boxes pool; this session labels "
                                             "'single' items"):
            export_labels(session, path, **kwargs)
    assert not (tmp_path / "labels.json").exists() and not (tmp_path / "y").exists()
    session.close()


def test_yolo_refuses_class_names_that_classes_txt_cannot_hold(tmp_path):
    images = np.zeros((2, 16, 16))
    for odd in ("two\nlines", "end\r\n", "tab\x0bbed"):
        pool = Pool.from_arrays(images, y=[[(1, 1, 4, 4, odd)], []], task="boxes", classes=[odd, "b"])
        session = Session(pool, tmp_path / f"s{len(odd)}", watch=False)
        session.label(pool.item_ids[0], [(1, 1, 4, 4, odd)])
        with pytest.raises(ValueError, match=r"line break, which classes.txt \(a name a line\) cannot"):
            export_labels(session, tmp_path / "y", format="yolo")
        assert not (tmp_path / "y").exists()
        assert export_labels(session, tmp_path / "c.json").exists()  # COCO holds any name
        session.close()


def test_span_formats_are_refused_for_a_boxes_pool(labeled, tmp_path):
    with pytest.raises(ValueError, match="writes the spans of a spans pool; this session labels 'boxes'"):
        export_labels(labeled, tmp_path / "labels.conll")
