"""Replacing a bundle folder: writers of one path take turns, a writer killed mid-write leaves
the old bundle (or puts it back for the next writer) and no litter, and a crafted boxes bundle
with an absurd canvas or network width is refused before anything is allocated."""

from __future__ import annotations

import json
import os
import shutil
import threading

import pytest
from sklearn.linear_model import LogisticRegression

from workbench import BundleError, datasets, load_model
from workbench.learn.bundle import write_bundle
from workbench.learn.bundle_write import manifest_for
from workbench.learn.model import InputSignature, Model


@pytest.fixture(scope="module")
def model():
    digits = datasets.digits()
    X = digits.X.reshape(len(digits), -1)
    return Model(LogisticRegression(max_iter=200).fit(X[:200], digits.y[:200]), digits.classes,
                 InputSignature.of(digits))


def write(model, path, card="# a test model\n"):
    return write_bundle(model, path, card=card, training={"commit": "c0ffee"}, overwrite=True)


def test_writers_of_one_path_take_turns(model, tmp_path):
    path, errors = tmp_path / "b", []

    def export(k: int) -> None:
        try:
            for i in range(6):
                write(model, path, card=f"# writer {k}, export {i}\n")
        except Exception as e:  # what used to happen: one rename tripping over the other's
            errors.append(e)

    threads = [threading.Thread(target=export, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert load_model(path).classes == model.classes
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b.lock", "b"]  # no staging folder left


def test_a_writer_killed_between_its_renames_leaves_the_old_bundle_for_the_next(model, tmp_path):
    path = write(model, tmp_path / "b", card="# the old one\n")
    aside = tmp_path / f".b.old-{os.getpid() + 1}"
    os.replace(path, aside)  # where a writer killed after its first rename leaves the old bundle
    (tmp_path / ".b.staging-dead1234").mkdir()  # and one killed while writing its files
    (tmp_path / ".b.staging-dead1234" / "config.json").write_text("{")
    (tmp_path / ".b-v2.staging-live5678").mkdir()  # another bundle's writer: not ours to touch
    write(model, path, card="# the new one\n")
    assert (path / "README.md").read_text() == "# the new one\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".b-v2.staging-live5678", ".b.lock", "b"]


def test_a_crafted_boxes_canvas_or_width_is_refused_before_anything_is_built(tmp_path):
    from workbench import BoxDetector, Pool, Session
    from workbench.data.box_digits import box_digits

    pool, _ = box_digits(12, n_test=2, seed=0)
    session = Session(pool, tmp_path / "s", learner=BoxDetector(labels=pool.classes, steps=5), watch=False)
    for item_id in pool.item_ids[:6]:
        session.label(item_id, pool.true_label(item_id))
    folder = session.export(tmp_path / "detector")
    session.close()
    assert isinstance(pool, Pool)

    def crafted(name: str, change) -> str:
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        config = json.loads((copy / "config.json").read_text())
        change(config)
        files = {p.name: p.read_bytes() for p in copy.iterdir() if p.name != "manifest.json"}
        files["config.json"] = json.dumps(config).encode()
        (copy / "config.json").write_bytes(files["config.json"])
        (copy / "manifest.json").write_text(json.dumps(manifest_for(files)))
        return str(copy)

    huge = crafted("huge", lambda c: c["input"].update(shape=[200000, 200000]))
    with pytest.raises(BundleError, match=r"input.shape is \[200000, 200000\], a canvas of 149.0 GiB"):
        load_model(huge)
    wide = crafted("wide", lambda c: c["learner"]["params"].update(width=10**20))
    with pytest.raises(BundleError, match="learner.params.width is 100000000000000000000; a BoxDetector "
                                          "of this workbench is at most 4096"):
        load_model(wide)
