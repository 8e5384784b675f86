"""A fitted learner as plain data, and back: JSON settings plus named arrays, no pickle.

A model bundle stores weights in safetensors and everything else in JSON, so loading one
runs no code from the file. Each learner the workbench can rebuild has a pair of functions
here: `state` gives `(config, tensors)`, `restore` rebuilds an estimator whose
`predict_proba` computes exactly what the original's did (the same code on the same
arrays). Encoders of a pool's representation are stored the same way.

Rebuilt from arrays: `LightHead` (the default), scikit-learn's `LogisticRegression`,
`MultiLabelHead` (a multi-label pool's default: its weight matrix and intercepts), and
`TorchClassifier` with its built-in networks (weights into a freshly built network;
`torch.load` is never called). Any other scikit-learn classifier has no state here; a
bundle carries it in its ONNX graph only (see `workbench.learn.bundle`).
"""

from __future__ import annotations

import numpy as np

__all__ = ["encoder_state", "learner_state", "restore_encoder", "restore_learner",
           "NotRebuildable"]


class NotRebuildable(Exception):
    """The learner has no array form here (its ONNX graph is then what a bundle keeps)."""


def learner_state(learner) -> tuple[dict, dict[str, np.ndarray]]:
    kind = type(learner).__name__
    if kind == "LightHead":
        config = {"type": kind, "params": _params(learner), "classes": _values(learner.classes_),
                  "n_features_in": int(learner.n_features_in_)}
        tensors = {**_linear("head", learner.head_), **_linear("query_head", learner.query_head_)}
        return config, tensors
    if kind == "LogisticRegression":
        config = {"type": kind, "params": _params(learner), "classes": _values(learner.classes_),
                  "n_features_in": int(learner.n_features_in_)}
        return config, {"coef": learner.coef_, "intercept": learner.intercept_}
    if kind == "MultiLabelHead":  # the class names are `classes`, not a setting
        config = {"type": kind, "params": _params(learner, drop=("classes",)),
                  "classes": _values(learner.classes_), "n_features_in": int(learner.n_features_in_)}
        return config, {"coef": learner.coef_, "intercept": learner.intercept_}
    if kind == "TorchClassifier":
        if learner.module is not None:
            raise NotRebuildable("a TorchClassifier with a custom module= cannot be rebuilt "
                                 "from weights alone")
        config = {"type": kind, "params": _params(learner, drop=("module", "device")),
                  "classes": _values(learner.classes_), "input_shape": list(learner.input_shape_),
                  "is_image": bool(learner.is_image_), "self_trained": learner.query_net_ is not learner.net_}
        tensors = {f"net.{k}": v.detach().cpu().numpy() for k, v in learner.net_.state_dict().items()}
        if config["self_trained"]:
            tensors.update({f"query_net.{k}": v.detach().cpu().numpy()
                            for k, v in learner.query_net_.state_dict().items()})
        tensors.update(mean=np.asarray(learner.mean_, np.float32), std=np.asarray(learner.std_, np.float32))
        return config, tensors
    raise NotRebuildable(f"a {kind} has no array form in workbench.learn.learner_state")


def restore_learner(config: dict, tensors: dict[str, np.ndarray]):
    kind = config.get("type")
    if kind == "LightHead":
        from workbench.learn.head import LightHead

        learner = LightHead(**_checked(LightHead, config["params"]))
        learner.classes_ = np.asarray(config["classes"])
        learner.n_features_in_ = config["n_features_in"]
        learner.head_ = _logistic(tensors, "head", config["params"].get("C", 1.0))
        learner.query_head_ = _logistic(tensors, "query_head", config["params"].get("C", 1.0))
        learner.transductive_proba_, learner.n_pseudo_labels_ = None, 0
        return learner
    if kind == "LogisticRegression":
        from sklearn.linear_model import LogisticRegression

        learner = LogisticRegression(**_checked(LogisticRegression, config["params"]))
        learner.classes_ = np.asarray(config["classes"])
        learner.coef_, learner.intercept_ = tensors["coef"], tensors["intercept"]
        learner.n_features_in_ = config["n_features_in"]
        return learner
    if kind == "MultiLabelHead":
        from workbench.learn.multilabel import MultiLabelHead

        classes = list(config["classes"])
        learner = MultiLabelHead(classes=classes, **_checked(MultiLabelHead, config["params"],
                                                             drop=("classes",)))
        learner.classes_ = np.asarray(classes, dtype=object)
        learner.n_features_in_ = config["n_features_in"]
        learner.coef_, learner.intercept_ = tensors["coef"], tensors["intercept"]
        if learner.coef_.shape != (learner.n_features_in_, len(classes)) \
                or learner.intercept_.shape != (len(classes),):
            raise ValueError(f"the MultiLabelHead weights (coef {learner.coef_.shape}, intercept "
                             f"{learner.intercept_.shape}) do not fit {learner.n_features_in_} "
                             f"features and {len(classes)} classes")
        return learner
    if kind == "TorchClassifier":
        return _restore_torch(config, tensors)
    raise ValueError(f"unknown learner type {kind!r}; this workbench rebuilds LightHead, "
                     "LogisticRegression, MultiLabelHead and TorchClassifier")


def encoder_state(encoder) -> tuple[dict, dict[str, np.ndarray]]:
    """An encoder of the pool's representation (`workbench.data.encoders`)."""
    config, tensors = {"method": encoder.name, "values": {}}, {}
    for key, value in encoder.arrays().items():
        value = np.asarray(value)
        if value.ndim == 0 or value.dtype.kind not in "biuf":
            config["values"][key] = value.item()
        else:
            tensors[key] = value
    return config, tensors


def restore_encoder(config: dict, tensors: dict[str, np.ndarray]):
    from workbench.data.pretrained import ENCODERS  # the built-in encoders and the pretrained one

    method = config.get("method")
    if method not in ENCODERS:
        raise ValueError(f"unknown representation method {method!r}; this workbench knows "
                         f"{sorted(ENCODERS)}")
    arrays = {k: np.asarray(v) for k, v in config["values"].items()}
    arrays.update(tensors)
    return ENCODERS[method].from_arrays(arrays)


# -- helpers ------------------------------------------------------------------------------------
def _params(estimator, drop=()) -> dict:
    params = {k: v for k, v in estimator.get_params(deep=False).items() if k not in drop}
    for k, v in params.items():
        if isinstance(v, np.generic):
            params[k] = v.item()
        elif not isinstance(v, (int, float, str, bool, type(None), list, dict)):
            # a RandomState or a callable: its fitted arrays are what matter, not how it was made
            params[k] = None
    return params


def _checked(estimator, params, drop=()) -> dict:
    """Settings read from a bundle, for `estimator(**params)`: known names and plain values
    only (a crafted config.json must not reach a constructor with anything else)."""
    if not isinstance(params, dict):
        raise ValueError(f"learner params must be a JSON object, got {type(params).__name__}")
    known = set(estimator().get_params(deep=False)) - set(drop)
    plain = (int, float, str, bool, type(None))
    for key, value in params.items():
        if key not in known:
            raise ValueError(f"unknown setting {key!r} for {estimator.__name__}; it takes "
                             f"{sorted(known)}")
        values = value.values() if isinstance(value, dict) else [value]
        if not all(isinstance(v, plain) for v in values):
            raise ValueError(f"setting {key!r} of {estimator.__name__} must be a plain value, got "
                             f"{type(value).__name__}")
    return params


def _values(classes) -> list:
    return [c.item() if hasattr(c, "item") else c for c in classes]


def _linear(prefix: str, head) -> dict[str, np.ndarray]:
    return {f"{prefix}.coef": head.coef_, f"{prefix}.intercept": head.intercept_,
            f"{prefix}.classes": np.asarray(head.classes_, dtype=np.int64)}


def _logistic(tensors, prefix: str, C: float):
    from sklearn.linear_model import LogisticRegression

    head = LogisticRegression(C=C)
    head.coef_, head.intercept_ = tensors[f"{prefix}.coef"], tensors[f"{prefix}.intercept"]
    head.classes_ = tensors[f"{prefix}.classes"]
    head.n_features_in_ = head.coef_.shape[1]
    return head


def _restore_torch(config, tensors):
    import torch

    from workbench.data.devices import torch_device
    from workbench.learn.torch_classifier import TorchClassifier

    learner = TorchClassifier(**_checked(TorchClassifier, config["params"], drop=("module", "device")))
    learner.classes_ = np.asarray(config["classes"])
    learner.input_shape_ = tuple(config["input_shape"])
    learner.n_features_in_ = int(np.prod(learner.input_shape_))
    learner.is_image_ = config["is_image"]
    learner.mean_, learner.std_ = tensors["mean"][()], tensors["std"][()]  # 0-d: a float32 scalar
    learner.device_ = torch_device("cpu")
    learner._seed = 0
    learner.history_, learner.n_pseudo_labels_ = [], 0

    def network(prefix):
        state = {k[len(prefix) + 1:]: torch.from_numpy(np.ascontiguousarray(v))
                 for k, v in tensors.items() if k.startswith(prefix + ".")}
        # the settings size the network: check them against the weights on the meta device
        # (no memory) before building it for real
        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in learner._build(len(learner.classes_))
                      .state_dict().items()}
        given = {k: tuple(v.shape) for k, v in state.items()}
        if shapes != given:
            raise ValueError(f"the {prefix} weights do not fit the network its settings describe "
                             f"(hidden={learner.hidden}, n_members={learner.n_members})")
        net = learner._build(len(learner.classes_))
        net.load_state_dict(state, strict=True)
        return net.eval()

    learner.net_ = network("net")
    learner.query_net_ = network("query_net") if config["self_trained"] else learner.net_
    return learner
