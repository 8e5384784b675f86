"""kill -9 at random points of the store's multi-step writes, in real processes: what a
reopened store holds is always what was acknowledged, and a killed merge, revert or restore
either never happened or finishes to the same result."""

from __future__ import annotations

import shutil

import killing
import pytest

from workbench.store import LabelStore


def _finish(path) -> LabelStore:
    """What a user does after the kill: reopen; run the merge if it never happened."""
    store = LabelStore.open(path)
    if store.status()["merging"] is not None:
        store.commit("merge")
    if len(store.rev("HEAD").parents) < 2:
        store.merge("b")
    whole(store)
    return store


def whole(store: LabelStore) -> None:
    """Each event once (no event written twice by a recovery), and every commit on the
    branch names only events the store holds."""
    events = store.events()
    assert events["event_id"].is_unique
    assert not events.duplicated(["writer", "seq"]).any()
    for commit in store.log()["id"]:
        assert store.missing_events(store.rev(commit).frontier) == {}


def test_a_merge_killed_after_recording_its_state_finishes_three_way(tmp_path):
    path = tmp_path / "s"
    expected = killing.diverged(path)
    assert killing.run(killing.merge_killed_in_fixes, str(path), "b", kill_after=5.0)
    store = _finish(path)
    assert store.labels().to_dict() == expected
    assert store.labels(at="HEAD").to_dict() == expected
    assert store.status()["uncommitted"] == 0


def _merges_killed_at_random(tmp_path, template, expected: dict, trials: int, seed: int,
                             want_killed: int) -> tuple:
    """Merge branch b of copies of `template`, each killed at a random point of the merge;
    every reopened store finishes it to `expected`, each event once. How many were killed,
    and the finished stores. The kills are aimed at the merge's measured duration; when the
    other test worker's load changed after the measurement and fewer than `want_killed` landed
    inside (9 of 40 in one CI run), the duration is measured again and another round run, up
    to three."""
    killed, stores, k = 0, [], 0
    for attempt in range(3):
        copies = [str(shutil.copytree(template, tmp_path / f"measure{attempt}-{j}")) for j in range(3)]
        span = killing.duration(killing.merge_work, None, "b", copies=copies)
        for delay in killing.random_delays(trials, span, seed=seed + attempt):
            trial = tmp_path / f"t{k}"
            k += 1
            shutil.copytree(template, trial)
            killed += killing.run(killing.merge_work, str(trial), "b", kill_after=delay)
            store = _finish(trial)
            assert store.labels().to_dict() == expected, f"trial {k}, killed {delay * 1000:.1f} ms in"
            assert store.labels(at="HEAD").to_dict() == expected
            assert store.status()["uncommitted"] == 0
            stores.append(store)
        if killed >= want_killed:
            break
    return killed, stores


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_merges_killed_at_random_points_always_give_the_three_way_result(tmp_path):
    template = tmp_path / "template"
    expected = killing.diverged(template)
    killed, stores = _merges_killed_at_random(tmp_path, template, expected, 100, seed=3, want_killed=50)
    assert all(store.status()["merging"] is None for store in stores)
    assert killed >= 50  # most kills land inside the merge


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_merge_of_boxes_killed_anywhere_gives_the_box_by_box_result(tmp_path):
    """A boxes merge writes a box list neither side wrote (x: main's relabel, b's new box and
    moved box): killed at random points, a reopened store finishes it to that list, each
    event once."""
    template = tmp_path / "template"
    expected = killing.diverged_boxes(template)
    killed, _ = _merges_killed_at_random(tmp_path, template, expected, 15, seed=7, want_killed=5)
    # Kill points spread over the merge's duration as measured before them; a merge that then
    # runs faster (the other test worker idles) finishes before the later ones: 7 of 15 were
    # seen under pytest-xdist. A third is what shows the kills still land across the merge.
    assert killed >= 5


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_merge_of_sets_killed_anywhere_gives_the_class_by_class_result(tmp_path):
    """A multi-label merge writes a set neither side wrote (x: each class as the side that
    changed it): killed after recording its state, or at random points, a reopened store
    finishes it to that set, each event once."""
    template = tmp_path / "template"
    expected = killing.diverged_sets(template)
    first = tmp_path / "in-fixes"
    shutil.copytree(template, first)
    assert killing.run(killing.merge_killed_in_fixes, str(first), "b", kill_after=5.0)
    assert _finish(first).labels().to_dict() == expected
    killed, _ = _merges_killed_at_random(tmp_path, template, expected, 40, seed=5, want_killed=20)
    assert killed >= 20
