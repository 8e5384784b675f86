"""Span labels between annotators (span F1) and out of the workbench (Parquet, CoNLL/IOB,
spaCy DocBin)."""

import json
import math
import sys

import datasets as hf  # Hugging Face's (a dev dependency): the reader users have
import numpy as np
import pandas as pd
import pytest

from workbench import LabelStore, Pool, Session, cli
from workbench.data.spans import SpanList
from workbench.loop.agreement import agreement
from workbench.loop.label_export import export_labels

TEXTS = ["Alice met Bob in Paris.", "😀 Bob lives in Rome.", "nothing here", "Ann and Rome"]
TRUTH = [[(0, 5, "PER"), (10, 13, "PER"), (17, 22, "LOC")], [(2, 5, "PER"), (15, 19, "LOC")], [],
         [(0, 3, "PER"), (8, 12, "LOC")]]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def spans_json(*spans) -> str:
    return json.dumps({"v": 1, "spans": [list(s) for s in spans]})


@pytest.fixture
def pool():
    return Pool.from_texts(TEXTS, y=TRUTH, task="spans", embeddings=np.eye(len(TEXTS)))


# -- agreement -----------------------------------------------------------------------------------
def test_two_annotators_get_exact_match_span_f1_not_kappa(tmp_path):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    ann = {"d0": spans_json((0, 5, "PER"), (10, 13, "PER")),
           "d1": spans_json((0, 3, "LOC")),
           "d2": spans_json((2, 7, "ORG")),
           "d3": spans_json(),
           "d4": spans_json((1, 4, "PER"))}          # only ann labels d4
    bob = {"d0": '[[10, 13, "PER"], [0, 5, "PER"]]',   # the same spans, in the bare form, reordered
           "d1": spans_json((0, 3, "PER")),           # another label: a miss
           "d2": spans_json((2, 8, "ORG")),           # one character more: a miss
           "d3": spans_json()}                        # nothing marked, by both
    for item, label in ann.items():
        store.append(item, label, annotator="ann")
    for item, label in bob.items():
        store.append(item, label, annotator="bob", action="relabel")
    figures = agreement(store.events(), task="spans")
    assert figures.n_items == 4
    pair = figures.pairs.iloc[0]
    assert list(figures.pairs.columns) == ["annotator_a", "annotator_b", "n_items", "cohen_kappa", "span_f1"]
    assert (pair["annotator_a"], pair["annotator_b"], pair["n_items"]) == ("ann", "bob", 4)
    assert pair["span_f1"] == pytest.approx(2 * 2 / (4 + 4))  # 2 of ann's 4 spans, 2 of bob's 4
    assert math.isnan(pair["cohen_kappa"]) and math.isnan(figures.alpha)
    per = figures.per_annotator.set_index("annotator")
    assert per.loc["ann", "n_items"] == 4 and per.loc["bob", "n_items"] == 4
    assert per["agreement_with_consensus"].tolist() == pytest.approx([0.5, 0.5])
    assert sorted(figures.disagreements["item_id"]) == ["d1", "d2"]  # d0: same spans, other JSON
    d1 = figures.disagreements.set_index("item_id").loc["d1"]
    assert d1["labels"] == {"ann": ann["d1"], "bob": bob["d1"]} and d1["n_annotators"] == 2
    # the same log read as classes: every differently written list is a different class
    assert "span_f1" not in agreement(store.events()).pairs.columns


def test_three_annotators_are_scored_against_the_majority_of_the_others(tmp_path):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    labels = {"e0": {"ann": [(0, 3, "LOC")], "bob": [(0, 3, "LOC")], "cy": [(0, 3, "PER")]},
              "e1": {"ann": [(4, 6, "PER")], "bob": [(4, 6, "PER")], "cy": [(4, 6, "PER")]}}
    for item, by in labels.items():
        for who, spans in by.items():
            store.append(item, spans_json(*spans), annotator=who)
    figures = agreement(store.events(), task="spans")
    f1 = {(r.annotator_a, r.annotator_b): r.span_f1 for r in figures.pairs.itertuples()}
    assert f1 == pytest.approx({("ann", "bob"): 1.0, ("ann", "cy"): 0.5, ("bob", "cy"): 0.5})
    consensus = figures.per_annotator.set_index("annotator")["agreement_with_consensus"]
    # cy against {e0: LOC (ann and bob), e1: PER}: 1 of 2; ann against {e0: none (bob and cy
    # split), e1: PER}: 1 hit among 2 marked and 1 agreed, 2 * 1 / 3
    assert consensus["cy"] == pytest.approx(0.5) and consensus["ann"] == pytest.approx(2 / 3)
    assert figures.disagreements["item_id"].tolist() == ["e0"]
    assert figures.disagreements["n_annotators"].tolist() == [3]


def test_a_label_that_is_not_a_span_list_is_left_out_with_a_warning(tmp_path, caplog):
    store = LabelStore.open(tmp_path / "s", annotator="ann")
    store.append("a", spans_json((0, 2, "PER")), annotator="ann")
    store.append("a", spans_json((0, 2, "PER")), annotator="bob")
    store.append("b", spans_json((0, 2, "PER")), annotator="ann")
    store.append("b", "PER", annotator="bob")  # a raw write outside a session
    with caplog.at_level("WARNING"):
        figures = agreement(store.events(), task="spans")
    assert "leaves out the label of item 'b'" in caplog.text
    assert figures.n_items == 1 and figures.pairs["span_f1"].tolist() == [1.0]
    with pytest.raises(ValueError, match="agreement of .regression. labels is not available"):
        agreement(store.events(), task="regression")


def test_sessions_and_the_command_line_read_a_spans_store_as_spans(pool, tmp_path, capsys):
    ann = Session(pool, tmp_path / "s", watch=False, annotator="ann")
    ann.label("0", TRUTH[0])
    ann.label("1", TRUTH[1])
    ann.close()
    bob = Session(pool, tmp_path / "s", watch=False, annotator="bob")
    bob.label("0", TRUTH[0][:2])         # misses Paris
    bob.label("1", TRUTH[1])
    figures = bob.agreement()
    assert figures.pairs["span_f1"].tolist() == pytest.approx([2 * 4 / (5 + 4)])
    assert figures.disagreements["item_id"].tolist() == ["0"]
    bob.close()
    assert cli.main(["agreement", str(tmp_path / "s"), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["span_f1"] == pytest.approx(8 / 9) and rows[0]["cohen_kappa"] is None


# -- export --------------------------------------------------------------------------------------
@pytest.fixture
def labeled(pool, tmp_path):
    session = Session(pool, tmp_path / "s", watch=False, annotator="ann")
    session.label("1", TRUTH[1])
    session.label("2", [])
    session.label("0", [(0, 5, "LOC")])
    session.label("0", TRUTH[0])  # the current label is what goes out
    yield session
    session.close()


def test_spans_export_reads_back_as_structs_of_code_point_offsets_and_class_labels(labeled, tmp_path):
    assert labeled.task == "spans" and isinstance(labeled.labels["1"], SpanList)
    path = export_labels(labeled, tmp_path / "out" / "labels.parquet")
    ds = hf.Dataset.from_parquet(str(path))
    names = ["LOC", "PER"]
    assert labeled.class_names == names
    assert ds.features["spans"] == hf.List({"start": hf.Value("int32"), "end": hf.Value("int32"),
                                            "label": hf.ClassLabel(names=names)})
    assert ds["item_id"] == ["0", "1", "2"]  # pool order; item 3 is not labeled
    assert ds["text"] == TEXTS[:3]
    got = [[(s["start"], s["end"], names[s["label"]]) for s in row] for row in ds["spans"]]
    assert got == [TRUTH[0], TRUTH[1], []]
    emoji = ds[1]  # 😀 is one code point (two UTF-16 units): Bob starts at 2, not 3
    assert emoji["spans"][0]["start"] == 2
    assert [emoji["text"][s["start"]:s["end"]] for s in emoji["spans"]] == ["Bob", "Rome"]
    assert ds["annotator"] == ["ann"] * 3 and ds["query"] == ["manual"] * 3
    frame = pd.read_parquet(path)  # plain pandas reads it too
    assert frame["time"].dt.tz is not None and len(frame) == 3


def test_conll_export_writes_a_document_per_text_and_a_bio_tag_per_token(labeled, tmp_path):
    path = export_labels(labeled, tmp_path / "labels.conll")
    assert path.read_text(encoding="utf-8") == (
        "-DOCSTART- -X- O O\n\nAlice\tB-PER\nmet\tO\nBob\tB-PER\nin\tO\nParis\tB-LOC\n.\tO\n"
        "\n"
        "-DOCSTART- -X- O O\n\n😀\tO\nBob\tB-PER\nlives\tO\nin\tO\nRome\tB-LOC\n.\tO\n"
        "\n"
        "-DOCSTART- -X- O O\n\nnothing\tO\nhere\tO\n")
    other = export_labels(labeled, tmp_path / "labels.iob", format="conll")
    assert other.read_text(encoding="utf-8") == path.read_text(encoding="utf-8")


def test_spacys_conll_converter_reads_the_export_as_it_is_hash_tokens_included(tmp_path):
    from spacy.training.converters import conll_ner_to_docs

    texts = ["# Ann met Bob", "#rome is big", "no one"]
    pool = Pool.from_texts(texts, y=[[(2, 5, "PER"), (10, 13, "PER")], [(1, 5, "LOC")], []], task="spans",
                           embeddings=np.eye(3))
    session = Session(pool, tmp_path / "s", watch=False)
    for item_id in pool.item_ids:
        session.label(item_id, pool.true_label(item_id))
    parquet = pd.read_parquet(export_labels(session, tmp_path / "l.parquet"))
    docs = list(conll_ner_to_docs(export_labels(session, tmp_path / "l.conll").read_text(encoding="utf-8"),
                                  no_print=True))
    session.close()
    # a document per labeled text, in the Parquet rows' order; a text's "#" is a token, not a comment
    assert len(docs) == len(parquet) == 3 and parquet["item_id"].tolist() == ["0", "1", "2"]
    assert [t.text for t in docs[0]] == ["#", "Ann", "met", "Bob"]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Ann", "PER"), ("Bob", "PER")]
    assert [t.text for t in docs[1]][:2] == ["#", "rome"] and [e.text for e in docs[1].ents] == ["rome"]
    assert [e.text for e in docs[2].ents] == []


def test_conll_tags_a_span_of_several_tokens_b_then_i(tmp_path):
    texts = ["New York City is big", "Ann saw New York"]
    pool = Pool.from_texts(texts, y=[[(0, 13, "LOC")], [(0, 3, "PER"), (8, 16, "LOC")]], task="spans",
                           embeddings=np.eye(2))
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("1", [(8, 16, "LOC")])
    lines = export_labels(session, tmp_path / "l.conll").read_text(encoding="utf-8").splitlines()
    assert lines == ["-DOCSTART- -X- O O", "", "Ann\tO", "saw\tO", "New\tB-LOC", "York\tI-LOC"]
    session.close()


def test_nested_spans_all_go_to_parquet_and_the_first_to_conll(tmp_path):
    pool = Pool.from_texts(["Bank of Paris opened", "Ann left"], y=[[(0, 13, "ORG"), (8, 13, "LOC")],
                           [(0, 3, "PER")]], task="spans", overlapping=True, embeddings=np.eye(2))
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("0", [(8, 13, "LOC"), (0, 13, "ORG")])
    ds = hf.Dataset.from_parquet(str(export_labels(session, tmp_path / "l.parquet")))
    names = ds.features["spans"].feature["label"].names
    assert [(s["start"], s["end"], names[s["label"]]) for s in ds[0]["spans"]] == [
        (0, 13, "ORG"), (8, 13, "LOC")]
    lines = export_labels(session, tmp_path / "l.conll").read_text(encoding="utf-8").splitlines()
    assert lines[2:] == ["Bank\tB-ORG", "of\tI-ORG", "Paris\tI-ORG", "opened\tO"]  # BIO: one tag
    session.close()

def test_span_formats_are_refused_for_other_pools_and_unknown_formats(tmp_path):
    pool = Pool.from_texts(["a b", "c d"], y=["x", "y"], embeddings=np.eye(2))
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("0", "x")
    for kwargs in ({"format": "conll"}, {}):
        with pytest.raises(ValueError, match="writes the spans of a spans pool; this session labels "
                                             "'single' items"):
            export_labels(session, tmp_path / "labels.conll", **kwargs)
    with pytest.raises(ValueError, match="unknown format 'csv'"):
        export_labels(session, tmp_path / "labels.csv", format="csv")
    with pytest.raises(ValueError, match="expected a path ending in .parquet, got '.*labels.txt'"):
        export_labels(session, tmp_path / "labels.txt")
    assert not (tmp_path / "labels.conll").exists()
    session.close()


def test_docbin_holds_every_span_by_code_points_and_the_non_overlapping_ones_as_entities(tmp_path):
    import spacy
    from spacy.tokens import DocBin

    texts = ["😀 Bob went to the Bank of Paris.", "Ann left", "nothing"]
    pool = Pool.from_texts(texts, task="spans", classes=["LOC", "ORG", "PER"], overlapping=True,
                           embeddings=np.eye(3))
    session = Session(pool, tmp_path / "s", watch=False)
    # Bank of Paris (an ORG) holds Paris (a LOC); "nn" is inside a word: widened to "Ann"
    session.label("0", [(2, 5, "PER"), (18, 31, "ORG"), (26, 31, "LOC")])
    session.label("1", [(1, 3, "PER")])
    path = export_labels(session, tmp_path / "out" / "labels.spacy")
    docs = list(DocBin().from_disk(path).get_docs(spacy.blank("xx").vocab))
    assert [d.text for d in docs] == texts[:2] and [d.user_data["item_id"] for d in docs] == ["0", "1"]
    spans = [[(s.start_char, s.end_char, s.label_) for s in d.spans["sc"]] for d in docs]
    assert spans == [[(2, 5, "PER"), (18, 31, "ORG"), (26, 31, "LOC")], [(0, 3, "PER")]]
    assert [(e.text, e.label_) for e in docs[0].ents] == [("Bob", "PER"), ("Bank of Paris", "ORG")]
    session.close()


def test_docbin_without_spacy_says_how_to_get_it(labeled, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "spacy", None)  # what `import spacy` meets where it is missing
    with pytest.raises(ImportError, match="pip install spacy"):
        export_labels(labeled, tmp_path / "out" / "labels.spacy")
    assert not (tmp_path / "out").exists()


def test_conll_refuses_a_class_whose_name_holds_whitespace(tmp_path):
    pool = Pool.from_texts(["New York is big"], y=[[(0, 8, "BIG CITY")]], task="spans", embeddings=np.eye(1))
    session = Session(pool, tmp_path / "s", watch=False)
    session.label("0", [(0, 8, "BIG CITY")])
    with pytest.raises(ValueError, match="a CoNLL tag cannot hold whitespace, and the class 'BIG CITY' does"):
        export_labels(session, tmp_path / "l.conll")
    assert not (tmp_path / "l.conll").exists()
    export_labels(session, tmp_path / "l.parquet")  # any name goes to Parquet
    session.close()
