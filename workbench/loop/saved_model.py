"""The model a session last saw, kept in its store, so that reopening never trains.

After each round the session writes its learner's arrays (`workbench.learn.learner_state`:
JSON settings plus named arrays, no pickle) to `_session-<annotator>.model.safetensors`
beside its history. Reopening rebuilds the learner from them when they are the round the
history ends with, on the same labels, for a learner with the same settings; the rebuilt
learner computes exactly what the trained one did, so the queue comes back in the same
order. Anything else (no file, other labels, another learner, one with no array form such
as a random forest) returns None: the session then trains again, in the background.

What a learner keeps beyond its weights and the session reads: `n_pseudo_labels_` (whether
it self-trained), the seed its MC-dropout samples use, and a `LightHead`'s label-spreading
probabilities (`transductive_proba_`, what its queue ranks the unlabeled items by).
"""

from __future__ import annotations

import json
import logging

import numpy as np

from workbench.learn.learner_state import NotRebuildable, _params, learner_state, restore_learner

log = logging.getLogger(__name__)
FORMAT = "workbench.session-model/1"
_DROPPED = {"TorchClassifier": ("module", "device"),  # settings learner_state leaves out
            "MultiLabelHead": ("classes",)}
_SPREAD = "session.transductive_proba"


def file_name(state_name: str) -> str:
    """`_session-x.json` (the history sidecar) -> `_session-x.model.safetensors`."""
    return state_name.removesuffix(".json") + ".model.safetensors"


def save(store, name: str, learner, *, round_: int, labels_hash: str) -> bool:
    """Write `learner`'s arrays as the model of round `round_`, trained on the labels whose
    hash is `labels_hash`; False (and no file left that could be mistaken for it) when it
    has no array form. Never raises: the file only saves a retrain on reopening."""
    from safetensors.numpy import save as to_bytes

    from workbench.store import files

    path = store.path / name
    try:
        config, tensors = learner_state(learner)
        spread = getattr(learner, "transductive_proba_", None)
        if spread is not None:
            tensors = {**tensors, _SPREAD: np.asarray(spread)}
        meta = {"format": FORMAT, "round": int(round_), "labels_hash": labels_hash,
                "n_pseudo_labels": int(getattr(learner, "n_pseudo_labels_", 0) or 0),
                "seed": getattr(learner, "_seed", None)}
        data = to_bytes({k: np.ascontiguousarray(v) for k, v in tensors.items()},
                        metadata={"config": json.dumps(config, default=float),
                                  "session": json.dumps(meta, default=float)})
        files.write_durably(store.path, name, data)
        return True
    except NotRebuildable:
        path.unlink(missing_ok=True)
        return False
    except Exception:
        log.warning("could not keep the model in %s; reopening the store will train it again",
                    path, exc_info=True)
        path.unlink(missing_ok=True)
        return False


def load(store, name: str, like, *, round_: int, labels_hash: str):
    """The learner saved as round `round_` on the labels hashed `labels_hash`, rebuilt, if
    it was saved with the settings of `like` (the session's learner); else None."""
    from safetensors import safe_open

    path = store.path / name
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        config, meta = json.loads(header["config"]), json.loads(header["session"])
    except Exception:  # a file this workbench did not write, or one cut short
        log.debug("saved model %s unreadable", path, exc_info=True)
        return None
    kind = type(like).__name__
    if (meta.get("format") != FORMAT or meta.get("round") != round_
            or meta.get("labels_hash") != labels_hash or config.get("type") != kind
            or config.get("params") != _plain(_params(like, drop=_DROPPED.get(kind, ())))):
        return None  # another round, other labels or another learner: train again
    spread = tensors.pop(_SPREAD, None)
    try:
        learner = restore_learner(config, tensors)
    except Exception:
        log.debug("saved model %s not rebuilt", path, exc_info=True)
        return None
    if meta.get("n_pseudo_labels") is not None and hasattr(learner, "n_pseudo_labels_"):
        learner.n_pseudo_labels_ = int(meta["n_pseudo_labels"])
    if meta.get("seed") is not None and hasattr(learner, "_seed"):
        learner._seed = int(meta["seed"])
    if spread is not None:
        learner.transductive_proba_ = spread
    if kind == "TorchClassifier":
        _to_device(learner, like.device)
    return learner


def _plain(params: dict) -> dict:
    """Settings as they read back from JSON (tuples as lists, numpy numbers as numbers)."""
    return json.loads(json.dumps(params, default=float))


def _to_device(learner, device: str) -> None:
    """A rebuilt TorchClassifier runs where the session's learner would (it is built on
    the CPU)."""
    from workbench.data.devices import torch_device

    learner.device = device
    target = torch_device(device)
    if target.type == "cpu":
        return
    learner.device_ = target
    learner.net_.to(target)
    if learner.query_net_ is not learner.net_:
        learner.query_net_.to(target)
