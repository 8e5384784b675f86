"""timm, torchvision and open_clip encoders through the real loading code (issue 20, item 4):
each network is created here with random weights and saved where its library keeps what it
downloads (torch hub's checkpoints folder, the Hugging Face cache), then loaded by name,
offline, and used by a session.

These libraries need a torchvision built for the installed torch (the `vision` extra:
torchvision 0.29 wants torch 2.14). The project's CPU torch 2.13 has none, so where they are
missing, as in CI, these tests are skipped; with them (a venv with `pip install
torch==2.14.1 torchvision==0.29.1 timm open_clip_torch` and the workbench), they run:

    python -m pytest tests/data/test_vision_encoders.py
"""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")  # also what timm and open_clip need

from workbench import Pool, Session  # noqa: E402
from workbench.data.pretrained import EncoderUnavailable, pretrained  # noqa: E402


def image_pool(n: int = 24, seed: int = 0) -> Pool:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.random((n, 32, 32, 3)).astype(np.float32) * 0.5 + 0.5 * y[:, None, None, None]
    return Pool.from_arrays(X, y)


@pytest.fixture(autouse=True)
def _caches(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE_DIR", str(tmp_path / "wbcache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    try:  # read once, when huggingface_hub is first imported: by an earlier test, perhaps
        from huggingface_hub import constants
    except ImportError:
        return
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


def hf_cache_file(repo_id: str, filename: str, save) -> None:
    """A file as the Hugging Face cache holds a downloaded one: refs/main names a snapshot."""
    repo = os.path.join(os.environ["HF_HUB_CACHE"], f"models--{repo_id.replace('/', '--')}")
    commit = "0123456789abcdef0123456789abcdef01234567"
    os.makedirs(os.path.join(repo, "snapshots", commit), exist_ok=True)
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commit)
    save(os.path.join(repo, "snapshots", commit, filename))


def check_session(spec: str, dim: int, store) -> None:
    """A session on the encoder: the representation has its dimension, a round trains, and
    two loads encode alike."""
    pool = image_pool()
    first, again = pretrained(spec), pretrained(spec)
    features = first.encode(pool.X)
    assert features.shape == (len(pool), dim) and np.isfinite(features).all()
    np.testing.assert_allclose(again.encode(pool.X[:4]), features[:4], rtol=1e-4, atol=1e-5)
    session = Session(pool, store, representation=spec, watch=False, audit_every=0)
    assert session.representation().features.shape == (len(pool), dim)
    session.label_many({i: int(pool.true_label(i)) for i in pool.item_ids[:8]})
    session.retrain()
    assert len(session.history) == 1
    session.close()


def test_torchvision_weights_in_torch_hub_are_loaded_offline(tmp_path):
    weights = torchvision.models.ResNet18_Weights.DEFAULT
    with pytest.raises(EncoderUnavailable, match="torchvision.models.get_model"):
        pretrained("torchvision:resnet18")  # not on the machine yet: says how to fetch it once
    folder = os.path.join(os.environ["TORCH_HOME"], "hub", "checkpoints")
    os.makedirs(folder)
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(),
               os.path.join(folder, os.path.basename(weights.url)))
    check_session("torchvision:resnet18", 512, tmp_path / "s")


def test_timm_weights_in_the_hugging_face_cache_are_loaded_offline(tmp_path):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    with pytest.raises(EncoderUnavailable, match="timm.create_model"):
        pretrained("timm:resnet18")
    torch.manual_seed(0)
    state = timm.create_model("resnet18", pretrained=False).state_dict()
    hf_cache_file("timm/resnet18.a1_in1k", "model.safetensors", lambda path: save_file(state, path))
    check_session("timm:resnet18", 512, tmp_path / "s")


def test_open_clip_weights_in_the_hugging_face_cache_are_loaded_offline(tmp_path):
    open_clip = pytest.importorskip("open_clip")

    spec = "open_clip:ViT-B-32/laion2b_s34b_b79k"
    with pytest.raises(EncoderUnavailable, match="open_clip"):
        pretrained(spec)
    torch.manual_seed(0)
    state = open_clip.create_model("ViT-B-32", pretrained=None).state_dict()
    hf_cache_file("laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "open_clip_pytorch_model.bin",
                  lambda path: torch.save(state, path))
    check_session(spec, 512, tmp_path / "s")
