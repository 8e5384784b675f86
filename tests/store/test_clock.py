"""Order is causal, never the wall clock: with one machine's clock an hour ahead, what another
writes after seeing its events still comes after them, and merges find their base by ancestry."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pandas as pd

from workbench.store import LabelStore, clock


@contextlib.contextmanager
def skewed(monkeypatch, hours: float):
    """This process's wall clock `hours` off while the block runs (another machine's)."""
    real = clock.wall_clock
    with monkeypatch.context() as patch:
        patch.setattr(clock, "wall_clock", lambda: real() + timedelta(hours=hours))
        yield


def test_a_relabel_after_a_label_from_a_clock_an_hour_ahead_takes_effect(tmp_path, monkeypatch):
    path = tmp_path / "s"
    ahead = LabelStore.open(path, annotator="ahead")
    with skewed(monkeypatch, 1):
        first = ahead.append("x", "cat")
    me = LabelStore.open(path, annotator="me")
    assert me.labels().to_dict() == {"x": "cat"}
    fix = me.append("x", "dog", action="relabel")
    assert fix.time < first.time  # the wall clocks disagree with what happened...
    assert fix.clock > first.clock  # ...the causal clock does not
    for handle in (me, ahead, LabelStore.open(path)):
        assert handle.labels().to_dict() == {"x": "dog"}
        assert handle.events()["event_id"].tolist() == [first.event_id, fix.event_id]
    # The skewed writer, having read the relabel, writes after it too (its clock moves past).
    with skewed(monkeypatch, -1):
        again = ahead.append("x", "cow", action="relabel")
    assert LabelStore.open(path).labels().to_dict() == {"x": "cow"}
    assert again.clock > fix.clock


def test_an_undo_on_a_slow_clock_takes_back_a_label_from_a_fast_one(tmp_path, monkeypatch):
    path = tmp_path / "s"
    fast = LabelStore.open(path, annotator="fast")
    fast.append("x", "cat")
    with skewed(monkeypatch, 2):
        late = fast.append("x", "dog", action="relabel")
    slow = LabelStore.open(path, annotator="slow")
    with skewed(monkeypatch, -3):
        slow.undo(late.event_id)
        slow.append("y", "cow")
    assert LabelStore.open(path).labels().to_dict() == {"x": "cat", "y": "cow"}


def test_a_merge_base_is_found_by_ancestry_not_by_the_clock(tmp_path, monkeypatch):
    """A commit made on a clock an hour ahead looks newer than its own child: a base picked
    by time would be that grandparent, and the merge would bring back x=2, which main undid."""
    path = tmp_path / "s"
    ahead = LabelStore.open(path, annotator="ahead")
    with skewed(monkeypatch, 1):
        ahead.append("x", "1")
        grandparent = ahead.commit("x is 1")
    main = LabelStore.open(path, annotator="me")
    main.append("x", "2", action="relabel")
    base = main.commit("x is 2")
    assert pd.Timestamp(base.time) < pd.Timestamp(grandparent.time)
    main.branch("b")
    main.append("x", "1", action="relabel")  # main takes x=2 back
    main.commit("back to 1")
    side = LabelStore.open(path, annotator="bob", branch="b")
    side.append("y", "5")
    side.commit("y")
    assert main._merge_base(main.rev("HEAD").id, main.rev("b").id) == base.id
    result = main.merge("b")
    assert main.labels().to_dict() == {"x": "1", "y": "5"}
    assert main.labels(at=result.commit).to_dict() == {"x": "1", "y": "5"}
    # log lists children before parents, whatever the commits' clocks say
    assert main.log()["id"].tolist()[-2:] == [base.id, grandparent.id]


def test_a_pulled_event_moves_the_clock_of_the_store_that_pulls_it(tmp_path, monkeypatch):
    from workbench.store.sync import clone, pull, push

    shared = LabelStore.open(tmp_path / "shared", annotator="ann")
    shared.append("x", "1")
    shared.commit("start")
    laptop = clone(tmp_path / "shared", tmp_path / "laptop", annotator="bob")
    with skewed(monkeypatch, 1):
        shared.append("x", "2", action="relabel")
        shared.commit("x is 2, an hour ahead")
    pull(laptop)
    laptop.append("x", "3", action="relabel")
    laptop.commit("x is 3")
    push(laptop)
    assert LabelStore.open(tmp_path / "shared").labels().to_dict() == {"x": "3"}


def test_two_processes_an_hour_apart_label_in_the_order_they_saw(tmp_path):
    """Real processes, one with its clock an hour ahead: each relabel acts on the label its
    writer saw, whichever machine's clock is ahead."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import sys
        from datetime import timedelta
        from workbench.store import LabelStore, clock
        real = clock.wall_clock
        clock.wall_clock = lambda: real() + timedelta(hours=float(sys.argv[2]))
        store = LabelStore.open(sys.argv[1], annotator=sys.argv[3])
        for line in sys.stdin:  # "item label": relabel what this writer sees now
            item, label = line.split()
            action = "relabel" if item in store.labels() else "label"
            store.append(item, label, action=action)
            print(store.labels()[item], flush=True)
    """)
    path = tmp_path / "s"
    LabelStore.open(path)
    ahead, behind = (subprocess.Popen([sys.executable, "-c", code, str(path), hours, who],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                     for hours, who in (("1", "ahead"), ("-0.5", "behind")))
    steps = [(ahead, "x cat"), (behind, "x dog"), (ahead, "x cow"), (behind, "x emu"),
             (behind, "y one"), (ahead, "y two")]
    for proc, line in steps:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == line.split()[1]  # acknowledged, and in effect
    for proc in (ahead, behind):
        proc.stdin.close()
        proc.wait(timeout=30)
    assert LabelStore.open(path).labels().to_dict() == {"x": "emu", "y": "two"}
