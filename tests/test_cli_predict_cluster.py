"""`workbench predict --scheduler`: the predictions made in parts on a real 2-process Dask
LocalCluster equal those made in this process; an unreachable scheduler is named."""

from __future__ import annotations

import socket

import numpy as np
import pandas as pd
import pytest

from workbench import cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(400)]


def test_predict_on_the_cluster_equals_in_process(digits_bundle, tmp_path, capsys, client):
    pool, root = digits_bundle
    np.savez(tmp_path / "items.npz", X=pool.X[:700], item_ids=pool.item_ids[:700].to_numpy(str))
    # the shared LocalCluster of tests/conftest.py, reached by its address as a user would
    cluster = client.cluster_
    for data in ([], [str(tmp_path / "items.npz")]):  # the store's pool; a file of items
        here, there = tmp_path / "here.parquet", tmp_path / "there.parquet"
        assert cli.main(["predict", str(root / "bundle"), *data, "--out", str(here)]) == 0
        assert cli.main(["predict", str(root / "bundle"), *data, "--out", str(there),
                         "--scheduler", cluster.scheduler_address]) == 0
        assert "parts on the Dask cluster at tcp://" in capsys.readouterr().err
        a, b = pd.read_parquet(here), pd.read_parquet(there)
        assert a["item_id"].tolist() == b["item_id"].tolist() and a["predicted"].equals(b["predicted"])
        columns = [c for c in a.columns if c.startswith("p_")]
        np.testing.assert_allclose(b[columns].to_numpy(), a[columns].to_numpy(), atol=1e-6)


def test_an_unreachable_scheduler_is_named(digits_bundle, tmp_path, capsys):
    import dask
    import distributed  # noqa: F401  first: config.set would drop the defaults it loads on import

    _, root = digits_bundle
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = cli.main(["predict", str(root / "bundle"), "--out", str(tmp_path / "p.parquet"),
                         "--scheduler", address])
    err = capsys.readouterr().err
    assert code == 2 and f"cannot reach the Dask scheduler at {address}" in err
    assert not (tmp_path / "p.parquet").exists()
