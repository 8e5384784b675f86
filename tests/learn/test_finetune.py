"""learner="finetune" (workbench.learn.finetune): a small random network's last block and a
head trained on the labels, with the cost warning on a CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from workbench import Pool, Session
from workbench.data.pretrained import pretrained
from workbench.learn.finetune import FineTune, last_block


def net(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()),
        torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, stride=2), torch.nn.ReLU(),
                            torch.nn.Conv2d(8, 8, 3), torch.nn.ReLU()),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())


def stripes(n: int = 64, seed: int = 0):
    """Class 0: horizontal stripes, class 1: vertical ones (a random network's pooled
    features hardly tell them apart; a trained last block does)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    line = (np.arange(12) % 4 < 2).astype(np.float32)
    X = np.where(y[:, None, None] == 0, line[None, :, None] * np.ones((1, 1, 12)),
                 line[None, None, :] * np.ones((1, 12, 1)))
    return (0.8 * X + 0.2 * rng.random((n, 12, 12))).astype(np.float32), y


def test_the_last_block_is_the_last_container_of_blocks():
    network = net()
    assert last_block(network) == [network[1][2]]
    plain = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    assert last_block(plain) == [plain[2]]


def test_fine_tuning_improves_on_a_separable_set_and_warns_of_its_cost_on_a_cpu():
    X, y = stripes()
    encoder = pretrained(net())
    before = [p.clone() for p in encoder.module.parameters()]
    with pytest.warns(UserWarning, match=r"fine-tuning on the CPU: 60 steps .* about \d+ s.*learner=None"):
        model = FineTune(encoder, steps=60, batch_size=16, lr=1e-2, head_lr=5e-2).fit(X, y)
    assert model.estimate_s_ >= 0 and len(model.history_) == 60
    losses = [h["loss"] for h in model.history_]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    X_test, y_test = stripes(40, seed=1)
    assert (model.predict(X_test) == y_test).mean() >= 0.9
    # the representation's network is left as it was: a copy was trained
    assert all(torch.equal(a, b) for a, b in zip(before, encoder.module.parameters()))
    again = FineTune(encoder, steps=60, batch_size=16, lr=1e-2, head_lr=5e-2, warn_on_cpu=False).fit(X, y)
    np.testing.assert_allclose(again.predict_proba(X_test), model.predict_proba(X_test), atol=1e-5)  # seeded


def test_a_session_retrains_by_fine_tuning(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    X, y = stripes(60)
    pool = Pool.from_arrays(X, y)
    session = Session(pool, tmp_path / "store", representation=net(), learner="finetune", watch=False)
    session.learner.set_params(steps=5, warn_on_cpu=False)
    try:
        for _ in range(12):
            item = session.next()
            session.label(item, pool.true_label(item.item_id))
        session.retrain()
        session.wait_for_training()
        assert len(session.history) == 1
        assert isinstance(session.model.learner, FineTune) and session.model.encoder is None
        assert session.model.predict(X[:4]).shape == (4,)
    finally:
        session.close()


def test_finetune_needs_a_pretrained_image_encoder(tmp_path):
    X, y = stripes(20)
    with pytest.raises(ValueError, match="learner='finetune' trains a pretrained image encoder"):
        Session(Pool.from_arrays(X, y), tmp_path / "store", learner="finetune", watch=False)


def test_a_fine_tuned_model_is_not_exported_and_says_so(tmp_path, monkeypatch):
    from workbench.learn.bundle import BundleError

    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "cache"))
    X, y = stripes(40)
    pool = Pool.from_arrays(X, y)
    session = Session(pool, tmp_path / "store", representation=net(), learner="finetune", watch=False)
    session.learner.set_params(steps=2, warn_on_cpu=False)
    try:
        for _ in range(10):
            item = session.next()
            session.label(item, pool.true_label(item.item_id))
        with pytest.raises(BundleError, match="fine-tuned network .* is not written to ONNX"):
            session.export(tmp_path / "bundle")
    finally:
        session.close()
