"""Label history of a "boxes" store (issue 21): diff and show say what changed inside an image's
box list (a box moved reads as moved, not as removed and added), a merge of edits to different
boxes of one image takes both, edits that overlap are a conflict, a resolution must be a box
list of the store's classes, and hostile stored JSON is refused with a clear message."""

from __future__ import annotations

import numpy as np
import pytest

from workbench import cli
from workbench.data.boxes import box_list
from workbench.store import LabelStore, StoreError
from workbench.store.box_changes import Box, dump, inside, merge_boxes, stored_boxes
from workbench.store.diffing import inside as diff_inside

LABELS = ["3", "5", "7"]


def boxes(*quintuples) -> str:
    """An image's label as the store holds it: str(BoxList), on a 100 x 100 image."""
    return str(box_list([list(q) for q in quintuples], 100, 100, LABELS))


def boxes_store(path, annotator="ann", branch="main") -> LabelStore:
    store = LabelStore.open(path, annotator=annotator, branch=branch)
    store.bind(classes=LABELS, items_hash="images", n_items=3, task="boxes")
    return store


A, B = (12, 30, 20, 24, "3"), (40, 8, 16, 20, "7")  # apart: IoU 0


@pytest.fixture
def diverged(tmp_path):
    """main and branch "b" from a base where i1 holds boxes A and B, i2 one box."""
    main = boxes_store(tmp_path / "s")
    main.append("i1", boxes(A, B))
    main.append("i2", boxes((0, 0, 10, 10, "5")))
    main.commit("base")
    main.branch("b")
    return main, boxes_store(tmp_path / "s", annotator="bob", branch="b")


def test_the_words_for_what_changed_inside_a_box_list():
    base = boxes(A, B)
    assert inside(base, boxes((12, 30, 20, 24, "5"), B)) == "box 12,30 20x24 3 -> 5"
    assert inside(base, boxes((14, 30, 20, 24, "3"), B)) == "box 12,30 20x24 3 moved to 14,30 20x24"
    assert inside(base, boxes((12, 30, 22, 24, "3"), B)) == "box 12,30 20x24 3 resized to 12,30 22x24"
    assert inside(base, boxes((13, 31, 22, 24, "3"), B)) == \
        "box 12,30 20x24 3 moved and resized to 13,31 22x24"
    assert inside(base, boxes(A, B, (60, 60, 10.5, 10.25, "5"))) == "+box 60,60 10.5x10.25 5"
    assert inside(base, boxes(A)) == "-box 40,8 16x20 7"
    # top to bottom: B (y 8) before A (y 30); a box moved far (IoU < 0.5) is removed and added,
    # and so is one moved and relabeled at once
    assert inside(base, boxes((50, 30, 20, 24, "3"), (41, 8, 16, 20, "5"))) == \
        "-box 40,8 16x20 7, +box 41,8 16x20 5, -box 12,30 20x24 3, +box 50,30 20x24 3"
    assert inside(None, boxes(A)) == "+box 12,30 20x24 3" and inside(boxes(A), None) == "-box 12,30 20x24 3"
    assert inside(boxes(A), boxes(A)) == "" and inside(boxes(), boxes(A)) == "+box 12,30 20x24 3"
    assert inside('[[12, 30, 20, 24, "3"]]', boxes(A)) == ""  # the bare form reads as the same boxes
    assert inside("cat", boxes(A)) is None and inside(None, None) is None
    # the store's diff words: boxes first (a bare list of boxes is a JSON list too), then the rest
    assert diff_inside('[[12, 30, 20, 24, "3"]]', '[[12, 30, 20, 24, "5"]]') == "box 12,30 20x24 3 -> 5"
    assert diff_inside(None, boxes(A)) == "+box 12,30 20x24 3"
    assert diff_inside('["a", "odd"]', '["a", "big"]') == "+big -odd" and diff_inside(None, '["a"]') == "+a"
    assert diff_inside(None, '{"v": 1, "spans": [[0, 5, "PER"]]}') == "+span 0-5 PER"
    assert diff_inside("cat", "dog") == "" and diff_inside("cat", boxes(A)) == ""


def test_a_moved_box_pairs_with_its_best_overlap():
    # two boxes of one class side by side, both shifted right: each pairs with itself, the
    # best IoU first, not with its neighbour
    base = boxes((0, 0, 10, 10, "3"), (8, 0, 10, 10, "3"))
    assert inside(base, boxes((2, 0, 10, 10, "3"), (10, 0, 10, 10, "3"))) == \
        "box 0,0 10x10 3 moved to 2,0 10x10, box 8,0 10x10 3 moved to 10,0 10x10"


def test_diff_show_and_blame_on_the_command_line_say_what_changed_inside(diverged, tmp_path, capsys):
    main, _ = diverged
    main.append("i1", boxes((12, 30, 20, 24, "5"), (42, 8, 16, 20, "7")), action="relabel")
    main.append("i2", boxes((0, 0, 10, 10, "5"), (50, 50, 20, 20, "3")), action="relabel")
    main.append("i3", boxes((3, 8, 5, 5, "7")))
    main.commit("fixes")
    diff = main.diff("HEAD~1", "HEAD")
    assert [diff_inside(r.before, r.after) for r in diff.itertuples()] == \
        ["box 40,8 16x20 7 moved to 42,8 16x20, box 12,30 20x24 3 -> 5", "+box 50,50 20x20 3",
         "+box 3,8 5x5 7"]
    assert cli.main(["diff", str(tmp_path / "s"), "HEAD~1", "HEAD"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"~ i1: {boxes(A, B)} -> {boxes((12, 30, 20, 24, '5'), (42, 8, 16, 20, '7'))}"
                               "  [box 40,8 16x20 7 moved to 42,8 16x20, box 12,30 20x24 3 -> 5]  (ann, ")
    assert lines[2].startswith("+ i3: (none) -> ") and "[+box 3,8 5x5 7]" in lines[2]
    assert cli.main(["show", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "    fixes" in out and "[+box 50,50 20x20 3]" in out
    assert cli.main(["blame", str(tmp_path / "s"), "i1"]) == 0  # per item, the list it holds
    out = capsys.readouterr().out  # blamed on the commit "fixes"
    assert out.startswith(f"{main.log()['commit'].iloc[0]}     i1: "
                          f"{boxes((12, 30, 20, 24, '5'), (42, 8, 16, 20, '7'))}  ann, ")


def test_a_merge_of_edits_to_different_boxes_of_one_image_takes_both(diverged):
    main, bob = diverged
    # B moved, and one more
    bob.append("i1", boxes(A, (44, 8, 16, 20, "7"), (70, 70, 10, 10, "5")), action="relabel")
    bob.commit("bob moves a box and adds one")
    main.append("i1", boxes((12, 30, 20, 24, "5"), B), action="relabel")  # A relabeled
    main.commit("ann relabels")
    result = main.merge("b")
    assert result.commit is not None and result.conflicts.empty and result.taken == 1
    assert main.labels()["i1"] == boxes((12, 30, 20, 24, "5"), (44, 8, 16, 20, "7"), (70, 70, 10, 10, "5"))
    assert main.labels()["i2"] == boxes((0, 0, 10, 10, "5"))


def test_edits_that_overlap_are_a_conflict_and_resolve_wants_a_box_list(diverged, tmp_path, capsys):
    main, bob = diverged
    bob.append("i1", boxes((12, 30, 20, 24, "7"), B), action="relabel")  # A: 3 -> 7
    bob.append("i2", boxes((0, 0, 10, 10, "5"), (20, 20, 5, 5, "3")), action="relabel")
    bob.commit("bob")
    main.append("i1", boxes((14, 30, 20, 24, "3"), B), action="relabel")  # A moved
    main.append("i2", boxes((0, 0, 10, 10, "5"), (20, 20, 5, 5, "3")), action="relabel")  # the same edit
    main.commit("ann")
    result = main.merge("b")
    assert result.commit is None and result.conflicts["item_id"].tolist() == ["i1"]
    n = len(main)
    for bad, why in [("cat", "not the JSON of a box list"), ("3", "not a list of"),
                     ('["3"]', "is not \\[x, y, w, h, label\\]"),
                     ('[[1, 2, 0, 4, "3"]]', "width and height more than 0"),
                     ('[[1, 2, 3, -4, "3"]]', "width and height more than 0"),
                     ('[[-1, 2, 3, 4, "3"]]', "needs x >= 0 and y >= 0"),
                     ('[[1, 2, 3, 4, "9"]]', "label '9', which is not among the classes"),
                     ('{"v": 2, "boxes": []}', "schema version 1"),
                     ('[[1, 2, 3, 4, "3"], [1, 2, 3, 4, "3"]]', "twice"),
                     ({"x": 0}, "not a list")]:
        with pytest.raises(StoreError, match=f"this store holds box lists; .*{why}.*e\\.g\\. '"):
            main.resolve("i1", bad)
    assert len(main) == n  # nothing written
    code = cli.main(["resolve", str(tmp_path / "s"), "i1", '[[14, 30, 20, 24, "9"]]'])
    assert code != 0 and "label '9'" in capsys.readouterr().err
    # a list of boxes (any order; numpy numbers, dicts) is written as the canonical JSON
    main.resolve("i1", [list(B), {"x": np.int64(14), "y": 30, "w": 20, "h": 24, "label": "7"}])
    assert main.labels()["i1"] == boxes((14, 30, 20, 24, "7"), B)
    main.commit("merged")
    assert main.labels()["i2"] == boxes((0, 0, 10, 10, "5"), (20, 20, 5, 5, "3"))


def test_resolve_on_the_command_line_takes_the_stores_json(diverged, tmp_path, capsys):
    main, bob = diverged
    bob.append("i2", boxes((0, 0, 10, 10, "7")), action="relabel")
    bob.commit("bob")
    main.append("i2", boxes((0, 0, 10, 10, "3")), action="relabel")
    main.commit("ann")
    assert main.merge("b").conflicts["item_id"].tolist() == ["i2"]
    good = boxes((0, 0, 10, 10, "7"))
    assert cli.main(["resolve", str(tmp_path / "s"), "i2", good]) == 0
    assert "resolved i2: " in capsys.readouterr().out
    assert LabelStore.open(tmp_path / "s").labels()["i2"] == good


def test_merge_boxes_rules():
    base = boxes(A, B)
    relabel = boxes((12, 30, 20, 24, "5"), B)
    added = boxes(A, B, (70, 70, 10, 10, "5"))
    both = boxes((12, 30, 20, 24, "5"), B, (70, 70, 10, 10, "5"))
    assert merge_boxes(base, relabel, added, LABELS) == both
    assert merge_boxes(base, added, relabel, LABELS) == both
    assert merge_boxes(base, both, relabel, LABELS) == both  # the same edit on both sides counts once
    # one side removes the box the other relabels, or moves it, or adds a box touching it
    assert merge_boxes(base, boxes(B), relabel, LABELS) is None
    assert merge_boxes(base, boxes((13, 30, 20, 24, "3"), B), relabel, LABELS) is None
    assert merge_boxes(base, boxes(A, B, (30, 50, 10, 10, "7")), relabel, LABELS) is None  # IoU > 0 with A
    assert merge_boxes(base, boxes(A, B, (32, 50, 10, 10, "7")), relabel, LABELS) == \
        boxes((12, 30, 20, 24, "5"), B, (32, 50, 10, 10, "7"))  # only touches A's edge: IoU 0
    # both add a box at one place, slightly apart: two edits that overlap, a conflict
    assert merge_boxes(base, boxes(A, B, (70, 70, 10, 10, "5")), boxes(A, B, (71, 70, 10, 10, "5")),
                       LABELS) is None
    # removals of different boxes both go; a move on one side and a removal elsewhere merge
    assert merge_boxes(base, boxes(A), boxes(B), LABELS) == boxes()
    assert merge_boxes(base, boxes((14, 30, 20, 24, "3"), B), boxes(A), LABELS) == \
        boxes((14, 30, 20, 24, "3"))
    # unlabeled in the base: a conflict unless both gave the same list; a side with no label
    assert merge_boxes(None, relabel, added, LABELS) is None
    assert merge_boxes(None, relabel, relabel, LABELS) == relabel
    assert merge_boxes(base, None, relabel, LABELS) is None
    assert merge_boxes(base, "cat", relabel, LABELS) is None
    assert merge_boxes(base, '{"v": 1, "boxes": [[0, 0, 0, 1, "3"]]}', relabel, LABELS) is None
    assert merge_boxes(boxes(), boxes((0, 0, 5, 5, "5")), boxes((0, 0, 5, 5, "3")), LABELS) is None
    # canonical order: y, x, h, w, then the store's class order; the format is str(BoxList)'s
    nested = boxes((0, 0, 5, 5, "5")), boxes((0, 0, 5, 5, "5"), (0, 0, 5, 5, "3")), \
        boxes((0, 0, 5, 5, "5"), (50, 50, 5, 5, "7"))
    assert merge_boxes(*nested, LABELS) == \
        '{"v": 1, "boxes": [[0, 0, 5, 5, "3"], [0, 0, 5, 5, "5"], [50, 50, 5, 5, "7"]]}'
    assert merge_boxes(*nested, ["7", "5", "3"]) == \
        '{"v": 1, "boxes": [[0, 0, 5, 5, "5"], [0, 0, 5, 5, "3"], [50, 50, 5, 5, "7"]]}'
    assert dump([Box(1.5, 2, 3.25, 4, "Ünï")]) == '{"v": 1, "boxes": [[1.5, 2, 3.25, 4, "Ünï"]]}'


# -- hostile stored JSON ------------------------------------------------------------------------
@pytest.mark.parametrize("bad, why", [
    ('{"v": true, "boxes": []}', "schema version 1"),
    ('{"v": 1.0, "boxes": []}', "schema version 1"),
    ('{"v": 1, "boxes": {}}', "schema version 1"),
    ('{"v": 1, "boxes": [], "note": "x"}', "fields \\['note'\\] besides"),
    ('[{"x": 0, "y": 0, "w": 1, "h": 1, "label": "3", "score": 1}]', "keys \\['score'\\]"),
    ('[{"x": 0, "y": 0, "w": 1, "label": "3"}]', "has no h"),
    ('[[0, 0, 1, 1]]', "is not \\[x, y, w, h, label\\]"),
    ('[[0, 0, 1, 1, "3", 0.9]]', "is not \\[x, y, w, h, label\\]"),
    ('[[true, 0, 1, 1, "3"]]', "x True, not a finite number"),
    ('[["0", 0, 1, 1, "3"]]', "x '0', not a finite number"),
    ('[[0, NaN, 1, 1, "3"]]', "y nan, not a finite number"),
    ('[[0, 0, Infinity, 1, "3"]]', "w inf, not a finite number"),
    ('[[0, 0, 1, null, "3"]]', "h None, not a finite number"),
    (f'[[0, 0, 1{"0" * 400}, 1, "3"]]', "w 1000.*, not a finite number"),
    ('[[0, 0, 0.001, 1, "3"]]', "width and height more than 0"),
    ('[[0, -0.5, 1, 1, "3"]]', "needs x >= 0 and y >= 0"),
    ('[[0, 0, 1, 1, 3]]', "label 3, not a string"),
    ('[[0, 0, 1, 1, "9"]]', "label '9', which is not among the classes \\['3', '5', '7'\\]"),
    ('[[0, 0, 1, 1, "3"], [0.0, 0, 1.0, 1, "3"]]', "twice"),
    ('"[[0, 0, 1, 1, \\"3\\"]]"', "not a list of \\[x, y, w, h, label\\] boxes"),
    ("{'v': 1}", "not the JSON of a box list"),
])
def test_hostile_stored_json_is_refused_naming_the_value(bad, why):
    with pytest.raises(ValueError, match=why) as err:
        stored_boxes(bad, LABELS)
    assert repr(bad)[:20] in str(err.value)  # the value itself is named


def test_stored_boxes_reads_both_schemas_and_numpy_numbers():
    assert stored_boxes('[[40, 8, 16, 20, "7"], [12, 30, 20, 24, "3"]]') == (Box(*B), Box(*A))
    assert stored_boxes(boxes(A, B), LABELS) == (Box(*B), Box(*A))
    assert stored_boxes([np.array([1.234, 2, 3, 4, "3"], dtype=object)]) == (Box(1.23, 2, 3, 4, "3"),)
    assert stored_boxes([(np.float32(1.5), np.int16(2), 3, 4, np.str_("3"))]) == (Box(1.5, 2, 3, 4, "3"),)
    with pytest.raises(ValueError, match="x True"):
        stored_boxes([(np.bool_(True), 0, 1, 1, "3")])


def test_a_hostile_label_in_the_log_is_a_conflict_not_a_crash(diverged):
    """A raw write outside a session (not a box list) reads as no words, and merges as a conflict
    the user resolves."""
    main, bob = diverged
    bob.append("i1", '{"v": 1, "boxes": [[0, 0, -5, 5, "3"]]}', action="relabel")
    bob.commit("bob writes junk")
    main.append("i1", boxes(A), action="relabel")
    main.commit("ann")
    assert diff_inside(boxes(A, B), '{"v": 1, "boxes": [[0, 0, -5, 5, "3"]]}') == ""
    result = main.merge("b")
    assert result.commit is None and result.conflicts["item_id"].tolist() == ["i1"]
    main.resolve("i1", boxes(A))
    main.commit("merged")
    assert main.labels()["i1"] == boxes(A)


def _pairwise_merge(was: set, mine: set, their: set, overlaps) -> set | None:
    """The merge rule as the module doc states it, with a pairwise overlap test and no arrays:
    the reference the array version must equal."""
    def grouped(before: set, after: set) -> list[frozenset]:
        groups: list[set] = []
        for change in [(p, "-") for p in before - after] + [(p, "+") for p in after - before]:
            joined = [g for g in groups if any(overlaps(change[0], other) for other, _ in g)]
            for g in joined:
                groups.remove(g)
            groups.append(set().union({change}, *joined))
        return [frozenset(g) for g in groups]

    ours, theirs = grouped(was, mine), grouped(was, their)
    for edit in ours:
        if edit not in theirs and any(overlaps(a, b) for other in theirs if other not in ours
                                      for a, _ in edit for b, _ in other):
            return None
    return (was & mine & their) | (mine - was) | (their - was)


def test_merges_of_crowded_images_equal_the_pairwise_rule():
    # the merge groups edits and finds conflicts with overlap matrices (an image of 1,500 boxes
    # took 6-9 s pairwise); on random crowded images it must decide exactly as the rule says
    from workbench.store.box_changes import iou

    rng = np.random.default_rng(7)
    conflicts = merges = 0
    for _ in range(150):
        base = {Box(float(x), float(y), float(w), float(h), str(rng.choice(LABELS)))
                for x, y, w, h in rng.integers(1, 40, (int(rng.integers(0, 12)), 4))}
        sides = []
        for _ in range(2):
            side = {b for b in base if rng.random() > 0.2}
            side |= {b._replace(x=b.x + float(rng.integers(1, 4))) for b in base if rng.random() < 0.15}
            new = rng.integers(0, 60, (int(rng.integers(0, 3)), 2))
            side |= {Box(float(x), float(y), 5.0, 5.0, "7") for x, y in new}
            sides.append(side)
        expected = _pairwise_merge(base, *sides, lambda a, b: iou(a, b) > 0)
        got = merge_boxes(dump(sorted(base)), dump(sorted(sides[0])), dump(sorted(sides[1])))
        assert (None if got is None else set(stored_boxes(got))) == expected
        conflicts += expected is None
        merges += expected is not None
    assert conflicts > 20 and merges > 20  # both outcomes were exercised


def test_a_crowded_image_moved_box_by_box_reads_as_moves():
    base = [Box(float(i % 40 * 20), float(i // 40 * 20), 15.0, 15.0, "3") for i in range(1200)]
    moved = [b._replace(x=b.x + 1) for b in base]
    words = inside(dump(base), dump(moved)).split(", ")
    assert len(words) == 1200 and all(" moved to " in w for w in words)


def test_box_edits_on_clocks_hours_apart_merge_by_ancestry_and_undo_in_causal_order(tmp_path, monkeypatch):
    """Two annotators on machines whose clocks disagree by hours: the merge base of their box
    edits is found by ancestry, each edit of one image taken box by box, and an undo from the
    slow clock takes back the fast clock's relabel it saw."""
    import contextlib
    from datetime import timedelta

    from workbench.store import clock

    real = clock.wall_clock

    @contextlib.contextmanager
    def skewed(monkeypatch, hours: float):  # this process's wall clock `hours` off (another machine's)
        with monkeypatch.context() as patch:
            patch.setattr(clock, "wall_clock", lambda: real() + timedelta(hours=hours))
            yield

    path = tmp_path / "s"
    with skewed(monkeypatch, 3):  # ann's clock three hours ahead
        ann = boxes_store(path)
        ann.append("i1", boxes(A, B))
        ann.commit("base")
        ann.branch("bob")
        ann.append("i1", boxes((12, 30, 20, 24, "5"), B), action="relabel")  # A relabeled
        ann.commit("ann relabels A")
    with skewed(monkeypatch, -2):  # bob's two hours behind: his edits look 5 hours older
        bob = boxes_store(path, annotator="bob", branch="bob")
        bob.append("i1", boxes(A, (44, 8, 16, 20, "7")), action="relabel")  # B moved
        bob.commit("bob moves B")
    with skewed(monkeypatch, 3):
        result = ann.merge("bob")
    assert result.conflicts.empty and result.commit is not None
    assert ann.labels()["i1"] == boxes((12, 30, 20, 24, "5"), (44, 8, 16, 20, "7"))
    with skewed(monkeypatch, 3):
        late = ann.append("i1", boxes((12, 30, 20, 24, "3"), (44, 8, 16, 20, "7")), action="relabel")
    slow = boxes_store(path, annotator="slow")
    with skewed(monkeypatch, -4):
        slow.undo(late.event_id)
    assert boxes_store(path).labels()["i1"] == boxes((12, 30, 20, 24, "5"), (44, 8, 16, 20, "7"))


def test_a_label_nested_thousands_deep_is_no_box_list_not_a_crash():
    from workbench.store.box_changes import parse
    from workbench.store.span_changes import parse as parse_spans

    deep = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on it
    assert parse(deep) is None and parse_spans(deep) is None
    assert inside(deep, boxes(A)) is None
    assert merge_boxes(boxes(A), deep, boxes(B)) is None
    with pytest.raises(ValueError, match="is not the JSON of a box list"):
        stored_boxes(deep)
