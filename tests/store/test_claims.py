"""Claims: two sessions on one store are never served the same item."""

from __future__ import annotations

import json
import time

from workbench.store.claims import Claims


def test_a_claim_is_seen_by_others_until_released_or_expired(tmp_path):
    a = Claims(tmp_path, annotator="ann")
    b = Claims(tmp_path, annotator="bob")
    with a.claiming() as taken:
        assert taken == {}
        a.hold(["x", "y"])
    with b.claiming() as taken:
        assert taken == {"x": ["ann"], "y": ["ann"]}
        b.hold(["z"])
    assert a.others() == {"z": ["bob"]}
    a.release(["x"])
    assert b.others() == {"y": ["ann"]}
    a.forget(["y"])  # labeled: dropped from memory, the file keeps it until the next write
    assert b.others() == {"y": ["ann"]}
    a.hold([])
    assert b.others() == {}
    b.close()
    assert a.others() == {} and not (tmp_path / "_claims" / f"{b.session}.json").exists()


def test_a_dead_sessions_claims_expire(tmp_path):
    dead = Claims(tmp_path, annotator="ann", lease_s=0.2)
    dead.hold(["x"])
    live = Claims(tmp_path, annotator="bob", lease_s=0.2)
    assert live.others() == {"x": ["ann"]}
    time.sleep(0.3)
    assert live.others() == {}
    path = tmp_path / "_claims" / f"{dead.session}.json"
    assert json.loads(path.read_text())["items"] == ["x"]
    time.sleep(0.2)  # expired for longer than a lease: tidied away
    live.others()
    assert not path.exists()


def test_the_claims_of_a_process_that_is_gone_are_ignored_at_once(tmp_path):
    """A restarted kernel must not find its next items held by its own former self."""
    import subprocess
    import sys

    code = (f"from workbench.store.claims import Claims; "
            f"Claims({str(tmp_path)!r}, annotator='me').hold(['x'])")
    subprocess.run([sys.executable, "-c", code], check=True)  # the process ends, its claim stays
    files = list((tmp_path / "_claims").glob("*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["items"] == ["x"]
    assert Claims(tmp_path, annotator="me").others() == {}
    assert not files[0].exists()
