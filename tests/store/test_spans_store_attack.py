"""Hostile resolutions and merge edge cases on a "spans" store (issue 21): a resolution must be
exactly a span list of schema version 1 (no `true` for 1, no extra fields or keys) and writes
nothing otherwise; merges take identical edits once, a document labeled on one side only, and
stop at a span one side deleted and the other relabeled."""

from __future__ import annotations

import pytest

from workbench.data.spans import Span, SpanList
from workbench.store import LabelStore, StoreError

LABELS = ["PER", "ORG", "LOC"]


def spans(*triples) -> str:
    return str(SpanList(Span(*t) for t in triples))


def spans_store(path, annotator="ann", branch="main") -> LabelStore:
    store = LabelStore.open(path, annotator=annotator, branch=branch)
    store.bind(classes=LABELS, items_hash="texts", n_items=3, task="spans")
    return store


@pytest.fixture
def diverged(tmp_path):
    main = spans_store(tmp_path / "s")
    main.append("d1", spans((0, 5, "PER"), (12, 19, "PER")))
    main.commit("base")
    main.branch("b")
    return main, spans_store(tmp_path / "s", annotator="bob", branch="b")


def test_a_resolution_is_exactly_a_version_1_span_list(diverged):
    main, bob = diverged
    bob.append("d1", spans((0, 5, "LOC"), (12, 19, "PER")), action="relabel")
    bob.commit("bob")
    main.append("d1", spans((12, 19, "PER")), action="relabel")  # deletes the span bob relabels
    main.commit("ann")
    assert main.merge("b").conflicts["item_id"].tolist() == ["d1"]
    n = len(main)
    for bad, why in [('{"v": true, "spans": [[0, 5, "PER"]]}', "schema version 1"),
                     ('{"v": 1.0, "spans": [[0, 5, "PER"]]}', "schema version 1"),
                     ('{"v": 1, "spans": [], "note": "x"}', "'note'"),
                     ([{"start": 0, "end": 5, "label": "PER", "score": 1}], "'score'"),
                     ([[True, 5, "PER"]], "not a whole number")]:
        with pytest.raises(StoreError, match=f"this store holds span lists; .*{why}"):
            main.resolve("d1", bad)
    assert len(main) == n
    main.resolve("d1", [{"start": 0, "end": 5, "label": "LOC"}, [12, 19, "PER"]])
    main.commit("merged")
    assert main.labels()["d1"] == spans((0, 5, "LOC"), (12, 19, "PER"))


def test_identical_edits_and_a_document_labeled_on_one_side_merge(diverged):
    main, bob = diverged
    same = spans((0, 5, "ORG"), (12, 19, "PER"))
    bob.append("d1", same, action="relabel")
    bob.append("d2", spans((3, 8, "LOC")))
    bob.commit("bob")
    main.append("d1", same, action="relabel")
    main.append("d3", spans())
    main.commit("ann")
    result = main.merge("b")
    assert result.commit is not None and result.conflicts.empty
    assert main.labels().to_dict() == {"d1": same, "d2": spans((3, 8, "LOC")), "d3": spans()}
