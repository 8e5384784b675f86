"""Labels out as a Hugging Face `datasets` Parquet file, read back with `datasets` itself."""

import datasets as hf  # Hugging Face's (a dev dependency): the reader users have
import numpy as np
import pandas as pd
import pytest

from workbench import Pool, Session
from workbench import datasets as builtin


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_single_label_export_reads_back_as_class_labels(tmp_path):
    session = Session(builtin.digits(), tmp_path / "s", watch=False, annotator="ann")
    session.label("digit-0005", 5)
    session.label("digit-0001", "7")
    session.label("digit-0001", 1)  # the current label is what goes out
    path = session.export_labels(tmp_path / "out" / "labels.parquet")
    ds = hf.Dataset.from_parquet(str(path))
    assert ds.features["label"].names == session.class_names
    assert ds["item_id"] == ["digit-0001", "digit-0005"]  # pool order
    assert [ds.features["label"].int2str(v) for v in ds["label"]] == ["1", "5"]
    assert ds["label_name"] == ["1", "5"] and ds["annotator"] == ["ann", "ann"]
    assert ds["query"] == ["manual", "manual"]
    frame = pd.read_parquet(path)  # plain pandas reads it too
    assert frame["label"].tolist() == [1, 5] and frame["time"].dt.tz is not None
    session.close()


def test_multi_label_export_is_a_list_of_class_labels_with_the_texts(tmp_path):
    texts = ["rates rise", "cup final", "budget and markets", "nothing much"]
    pool = Pool.from_texts(texts, [["business"], ["sport"], ["business", "politics"], []],
                           task="multi_label", embeddings=np.eye(4))
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("2", ["politics", "business"])
    session.label("3", [])
    session.label("0", ["business"])
    ds = hf.Dataset.from_parquet(str(session.export_labels(tmp_path / "labels.parquet")))
    names = ds.features["labels"].feature.names
    assert names == ["business", "politics", "sport"]
    assert ds["item_id"] == ["0", "2", "3"]
    assert ds["text"] == ["rates rise", "budget and markets", "nothing much"]
    assert [[names[j] for j in row] for row in ds["labels"]] == [["business"], ["business", "politics"], []]
    assert ds["label_names"] == [["business"], ["business", "politics"], []]
    session.close()


def test_export_labels_refuses_what_is_not_a_parquet_file(tmp_path):
    session = Session(builtin.digits(), tmp_path / "s", watch=False)
    with pytest.raises(ValueError, match="expected a path ending in .parquet, got '.*labels.csv'"):
        session.export_labels(tmp_path / "labels.csv")
    (tmp_path / "d.parquet").mkdir()
    with pytest.raises(IsADirectoryError, match="is a folder"):
        session.export_labels(tmp_path / "d.parquet")
    session.close()
