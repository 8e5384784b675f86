"""Label history of a "spans" store (issue 21): diff and show say what changed inside a
document's span list, a merge of edits at different places of one document takes both, edits
that overlap are a conflict, and a resolution must be a span list of the store's labels."""

from __future__ import annotations

import pytest

from workbench import cli
from workbench.data.spans import Span, SpanList
from workbench.store import LabelStore, StoreError
from workbench.store.diffing import inside
from workbench.store.span_changes import dump, merge_spans

LABELS = ["PER", "ORG", "LOC"]


def spans(*triples) -> str:
    """A document's label as the store holds it."""
    return str(SpanList(Span(*t) for t in triples))


def spans_store(path, annotator="ann", branch="main") -> LabelStore:
    store = LabelStore.open(path, annotator=annotator, branch=branch)
    store.bind(classes=LABELS, items_hash="texts", n_items=3, task="spans")
    return store


@pytest.fixture
def diverged(tmp_path):
    """main and branch "b" from a base where d1 marks 0-5 PER and 12-19 PER, d2 0-4 LOC."""
    main = spans_store(tmp_path / "s")
    main.append("d1", spans((0, 5, "PER"), (12, 19, "PER")))
    main.append("d2", spans((0, 4, "LOC")))
    main.commit("base")
    main.branch("b")
    return main, spans_store(tmp_path / "s", annotator="bob", branch="b")


def test_the_words_for_what_changed_inside_a_span_list():
    base = spans((0, 5, "PER"), (12, 19, "PER"), (30, 34, "LOC"))
    assert inside(base, spans((0, 5, "PER"), (12, 19, "ORG"), (30, 34, "LOC"))) == "span 12-19 PER -> ORG"
    assert inside(base, spans((0, 5, "PER"), (12, 22, "PER"), (30, 34, "LOC"))) == "span 12-19 -> 12-22 PER"
    assert inside(base, spans((0, 5, "PER"), (12, 19, "PER"))) == "-span 30-34 LOC"
    assert inside(base, spans((0, 5, "PER"), (8, 10, "ORG"), (12, 19, "PER"), (30, 34, "LOC"))) == \
        "+span 8-10 ORG"
    # several at once, in text order; a label and a boundary changed together is not a pair
    assert inside(base, spans((0, 5, "ORG"), (14, 19, "ORG"), (40, 44, "LOC"))) == \
        "span 0-5 PER -> ORG, -span 12-19 PER, +span 14-19 ORG, -span 30-34 LOC, +span 40-44 LOC"
    assert inside(None, spans((0, 5, "PER"))) == "+span 0-5 PER"
    assert inside(spans((0, 5, "PER")), None) == "-span 0-5 PER"
    assert inside(spans((0, 5, "PER")), spans((0, 5, "PER"))) == ""
    # other labels as before: a multi-label set's classes, nothing for a plain class
    assert inside('["a", "odd"]', '["a", "big"]') == "+big -odd"
    assert inside(None, '["a"]') == "+a"
    assert inside("cat", "dog") == "" and inside("cat", spans((0, 5, "PER"))) == ""


def test_diff_and_show_on_the_command_line_say_what_changed_inside(diverged, tmp_path, capsys):
    main, _ = diverged
    main.append("d1", spans((0, 5, "ORG"), (12, 22, "PER")), action="relabel")
    main.append("d2", spans((0, 4, "LOC"), (9, 14, "PER")), action="relabel")
    main.append("d3", spans((3, 8, "LOC")))
    main.commit("fixes")
    diff = main.diff("HEAD~1", "HEAD")
    assert [inside(r.before, r.after) for r in diff.itertuples()] == \
        ["span 0-5 PER -> ORG, span 12-19 -> 12-22 PER", "+span 9-14 PER", "+span 3-8 LOC"]
    assert cli.main(["diff", str(tmp_path / "s"), "HEAD~1", "HEAD"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"~ d1: {spans((0, 5, 'PER'), (12, 19, 'PER'))} -> "
                               f"{spans((0, 5, 'ORG'), (12, 22, 'PER'))}  "
                               "[span 0-5 PER -> ORG, span 12-19 -> 12-22 PER]  (ann, ")
    assert lines[2].startswith("+ d3: (none) -> ") and "[+span 3-8 LOC]" in lines[2]
    assert cli.main(["show", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "    fixes" in out and "[+span 9-14 PER]" in out
    assert cli.main(["blame", str(tmp_path / "s"), "d1"]) == 0  # per item, the list it holds
    assert spans((0, 5, "ORG"), (12, 22, "PER")) in capsys.readouterr().out


def test_a_merge_of_edits_at_different_places_of_one_document_takes_both(diverged):
    main, bob = diverged
    bob.append("d1", spans((0, 5, "PER"), (12, 19, "PER"), (20, 25, "LOC")), action="relabel")
    bob.commit("bob adds a place")
    main.append("d1", spans((0, 5, "ORG"), (12, 19, "PER")), action="relabel")
    main.commit("ann relabels")
    result = main.merge("b")
    assert result.commit is not None and result.conflicts.empty and result.taken == 1
    assert main.labels()["d1"] == spans((0, 5, "ORG"), (12, 19, "PER"), (20, 25, "LOC"))
    assert main.labels()["d2"] == spans((0, 4, "LOC"))


def test_edits_that_overlap_are_a_conflict_and_resolve_wants_a_span_list(diverged, tmp_path, capsys):
    main, bob = diverged
    bob.append("d1", spans((0, 5, "LOC"), (12, 19, "PER")), action="relabel")  # 0-5 PER -> LOC
    bob.append("d2", spans((0, 4, "LOC"), (6, 9, "ORG")), action="relabel")
    bob.commit("bob")
    main.append("d1", spans((0, 7, "PER"), (12, 19, "PER")), action="relabel")  # 0-5 -> 0-7
    main.append("d2", spans((0, 4, "LOC"), (6, 9, "ORG")), action="relabel")  # the same edit
    main.commit("ann")
    result = main.merge("b")
    assert result.commit is None and result.conflicts["item_id"].tolist() == ["d1"]
    n = len(main)
    for bad, why in [("ORG", "not the JSON of a span list"),
                     ('["PER"]', "is not \\[start, end, label\\]"),
                     ('[[5, 2, "PER"]]', "needs 0 <= start < end"), ('[[-1, 2, "PER"]]', "needs 0 <= start"),
                     ('[[0.5, 2, "PER"]]', "not a whole number"), ('[[0, 5, "DATE"]]', "label 'DATE'"),
                     ('{"v": 2, "spans": []}', "schema version 1"),
                     ('[[0, 5, "PER"], [0, 5, "PER"]]', "twice"), ({"start": 0}, "not a list")]:
        with pytest.raises(StoreError, match=f"this store holds span lists; .*{why}"):
            main.resolve("d1", bad)
    assert len(main) == n  # nothing written
    code = cli.main(["resolve", str(tmp_path / "s"), "d1", '[[0, 7, "DATE"]]'])
    assert code != 0 and "label 'DATE'" in capsys.readouterr().err
    # a list of [start, end, label] (any order) is written as the canonical JSON
    main.resolve("d1", [[12, 19, "PER"], [0, 7, "LOC"]])
    assert main.labels()["d1"] == spans((0, 7, "LOC"), (12, 19, "PER"))
    main.commit("merged")
    assert main.labels()["d2"] == spans((0, 4, "LOC"), (6, 9, "ORG"))


def test_resolve_on_the_command_line_takes_the_stores_json(diverged, tmp_path, capsys):
    main, bob = diverged
    bob.append("d2", spans((0, 4, "ORG")), action="relabel")
    bob.commit("bob")
    main.append("d2", spans((0, 4, "PER")), action="relabel")
    main.commit("ann")
    assert main.merge("b").conflicts["item_id"].tolist() == ["d2"]
    good = spans((0, 4, "ORG"))
    assert cli.main(["resolve", str(tmp_path / "s"), "d2", good]) == 0
    assert "resolved d2: " in capsys.readouterr().out
    assert LabelStore.open(tmp_path / "s").labels()["d2"] == good


def test_merge_spans_rules():
    base = spans((0, 5, "PER"), (12, 19, "PER"))
    relabel = spans((0, 5, "ORG"), (12, 19, "PER"))
    added = spans((0, 5, "PER"), (12, 19, "PER"), (20, 25, "LOC"))
    both = spans((0, 5, "ORG"), (12, 19, "PER"), (20, 25, "LOC"))
    assert merge_spans(base, relabel, added, LABELS) == both
    assert merge_spans(base, added, relabel, LABELS) == both
    assert merge_spans(base, both, relabel, LABELS) == both  # the same edit on both sides counts once
    assert merge_spans(base, spans((12, 19, "PER")), spans((0, 5, "LOC"), (12, 19, "PER")), LABELS) is None
    assert merge_spans(base, relabel, spans((3, 8, "LOC"), (0, 5, "PER"), (12, 19, "PER")), LABELS) is None
    assert merge_spans(base, spans((0, 5, "PER")), spans((0, 5, "PER"), (12, 19, "LOC")), LABELS) is None
    # removals at different places both go
    assert merge_spans(base, spans((0, 5, "PER")), spans((12, 19, "PER")), LABELS) == spans()
    # unlabeled in the base: a conflict unless both gave the same list; a side with no label
    assert merge_spans(None, relabel, added, LABELS) is None
    assert merge_spans(None, relabel, relabel, LABELS) == relabel
    assert merge_spans(base, None, relabel, LABELS) is None
    assert merge_spans(base, "cat", relabel, LABELS) is None
    # canonical order: start, end, then the store's label order; the format is str(SpanList)'s
    assert dump([Span(0, 5, "PER"), Span(7, 9, "Ünï")]) == spans((0, 5, "PER"), (7, 9, "Ünï"))
    assert merge_spans(spans(), spans((0, 5, "LOC")), spans((0, 5, "PER")), LABELS) is None
    nested = spans((0, 5, "PER")), spans((0, 5, "PER"), (0, 5, "LOC")), spans((0, 5, "PER"), (20, 22, "ORG"))
    assert merge_spans(*nested, ["LOC", "ORG", "PER"]) == \
        '{"v": 1, "spans": [[0, 5, "LOC"], [0, 5, "PER"], [20, 22, "ORG"]]}'
    assert merge_spans(*nested, LABELS) == \
        '{"v": 1, "spans": [[0, 5, "PER"], [0, 5, "LOC"], [20, 22, "ORG"]]}'
