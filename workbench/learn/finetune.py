"""Fine-tuning as the retrain: `Session(pool, store, representation="timm:resnet18",
learner="finetune")` trains the pretrained encoder's last block and a linear head on the
labels (and on label spreading's confident calls over the pool's neighbour graph), in the
session's background retrain, for a bounded number of seeded steps.

The encoder is the session's pretrained image encoder (`workbench.data.pretrained`: a
timm, torchvision or open_clip model, or any torch module): a copy of it is trained, so the
pool's representation (its neighbour graph, the map) stays the pretrained one. Everything
but its last block (a ResNet's last residual block, a ViT's last transformer block) is
frozen (see `last_block`), and BatchNorm statistics are kept (the network stays in eval mode): few labels
cannot re-estimate them.

On a GPU this is seconds. On a CPU a few hundred steps through a ResNet take minutes, so
before training it times one forward and backward batch, extrapolates to the planned steps
and warns (a UserWarning and a log message) with the estimate and how to go back to the
default learner (`learner=None`, a light head on the pretrained features, milliseconds).

A fine-tuned model is not exported as a bundle (its network is outside the array forms of
`workbench.learn.learner_state` and the ONNX graph): export says so.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder

__all__ = ["FineTune", "last_block"]

log = logging.getLogger(__name__)

PSEUDO_CONFIDENCE = 0.8  # label spreading's call this sure becomes a training label
PSEUDO_PER_LABEL = 4     # at most this many pseudo-labels per person's label
PSEUDO_WEIGHT = 0.5      # their weight in the loss, beside a person's label's 1


class FineTune(ClassifierMixin, BaseEstimator):
    """The encoder's last block plus a linear head, trained on the labels (see the module
    notes). `encoder`: a `PretrainedEncoder` with a torch module (an image model).
    `steps` batches of `batch_size` images, AdamW with `lr` for the block and `head_lr` for
    the head, seeded by `random_state`; `warn_on_cpu` gives the cost estimate on a CPU."""

    accepts_images = True       # gets the pool's images (workbench.learn.contract)
    reads_items = True          # ... not its representation (workbench.loop.inputs)
    uses_representation = False

    def __init__(self, encoder=None, *, steps: int = 100, batch_size: int = 32, lr: float = 1e-4,
                 head_lr: float = 1e-2, random_state: int = 0, device: str = "auto",
                 warn_on_cpu: bool = True):
        self.encoder = encoder
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.random_state = random_state
        self.device = device
        self.warn_on_cpu = warn_on_cpu

    def fit(self, X, y, X_unlabeled=None, graph=None):
        import torch

        module = getattr(self.encoder, "module", None)
        if module is None:
            raise ValueError("FineTune needs a pretrained image encoder with a torch module "
                             "(workbench.data.pretrained); got "
                             f"{getattr(self.encoder, 'spec', type(self.encoder).__name__)!r}")
        X = np.asarray(X, dtype=np.float32)
        self._label_encoder = LabelEncoder().fit(np.asarray(y))
        self.classes_ = self._label_encoder.classes_
        codes = self._label_encoder.transform(np.asarray(y))
        self.n_features_in_ = int(np.prod(X.shape[1:]))
        X, codes, weight = self._with_pseudo_labels(X, codes, X_unlabeled, graph)
        self.n_pseudo_labels_ = int((weight < 1).sum())
        self.transductive_proba_ = None

        torch.manual_seed(self.random_state)
        self.device_ = torch.device("cuda" if self.device == "auto" and torch.cuda.is_available()
                                    else "cpu" if self.device == "auto" else self.device)
        net = copy.deepcopy(module).to(self.device_).eval()  # the representation's stays as it is
        for p in net.parameters():
            p.requires_grad_(False)
        trained = [p for m in last_block(net) for p in m.parameters()]
        for p in trained:
            p.requires_grad_(True)
        with torch.no_grad():
            dims = net(self._prepare(X[:1])).flatten(1).shape[1]
        head = torch.nn.Linear(dims, len(self.classes_)).to(self.device_)
        optimizer = torch.optim.AdamW([{"params": trained, "lr": self.lr},
                                       {"params": head.parameters(), "lr": self.head_lr}])
        rng = np.random.default_rng(self.random_state)
        y_t = torch.as_tensor(codes, dtype=torch.long, device=self.device_)
        w_t = torch.as_tensor(weight, dtype=torch.float32, device=self.device_)
        self.history_ = []
        started = time.perf_counter()
        for step in range(int(self.steps)):
            rows = rng.choice(len(X), min(self.batch_size, len(X)), replace=False)
            logits = head(net(self._prepare(X[rows])).flatten(1))
            index = torch.as_tensor(rows, device=self.device_)
            losses = torch.nn.functional.cross_entropy(logits, y_t[index], reduction="none")
            loss = (losses * w_t[index]).sum() / w_t[index].sum()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            accuracy = float((logits.argmax(1) == y_t[index]).float().mean())
            self.history_.append({"loss": float(loss.detach()), "accuracy": accuracy})
            if step == 0:
                self._say_cost(time.perf_counter() - started, len(X))
        self.net_, self.head_ = net, head
        return self

    def _say_cost(self, one_step: float, n: int) -> None:
        """On a CPU: the estimate for the whole run, from the first step, before the rest."""
        self.estimate_s_ = round(one_step * int(self.steps), 1)
        if self.device_.type != "cpu" or not self.warn_on_cpu or self.steps <= 1:
            return
        message = (f"fine-tuning on the CPU: {self.steps} steps of {min(self.batch_size, n)} images, "
                   f"about {self.estimate_s_:.0f} s (one forward and backward batch took "
                   f"{one_step:.2f} s); a GPU makes it seconds, and learner=None (the default light "
                   "head on the pretrained features) trains in milliseconds")
        log.warning(message)
        warnings.warn(message, UserWarning, stacklevel=3)

    def _with_pseudo_labels(self, X, codes, X_unlabeled, graph):
        """The labels, and label spreading's confident calls on unlabeled images when the
        pool's neighbour graph is given (rows: the labeled, then the unlabeled), weighted less."""
        weight = np.ones(len(codes), dtype=np.float32)
        if graph is None or X_unlabeled is None or not len(X_unlabeled) or len(self.classes_) < 2:
            return X, codes, weight
        from workbench.learn.spreading import as_graph
        from workbench.learn.spreading import spread as spread_over

        spread = spread_over(as_graph(graph), codes, len(self.classes_))[len(codes):]
        sure = np.flatnonzero(spread.max(axis=1) >= PSEUDO_CONFIDENCE)
        sure = sure[np.argsort(-spread[sure].max(axis=1), kind="stable")][:PSEUDO_PER_LABEL * len(codes)]
        if not len(sure):
            return X, codes, weight
        return (np.concatenate([X, np.asarray(X_unlabeled[sure], dtype=np.float32)]),
                np.concatenate([codes, spread[sure].argmax(axis=1)]),
                np.concatenate([weight, np.full(len(sure), PSEUDO_WEIGHT, np.float32)]))

    def _prepare(self, X):
        import torch

        return self.encoder.prepare(torch.from_numpy(np.ascontiguousarray(X)).to(self.device_))

    def predict_proba(self, X) -> np.ndarray:
        import torch

        X = np.asarray(X, dtype=np.float32)
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), 256):
                logits = self.head_(self.net_(self._prepare(X[start:start + 256])).flatten(1))
                out.append(torch.softmax(logits, 1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.classes_)), np.float32)

    def predict(self, X) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def last_block(net) -> list:
    """The modules fine-tuning trains: the last block of the network's last container of
    blocks (a ResNet's layer4[-1], a ViT's blocks[-1], open_clip's transformer.resblocks[-1]),
    with the children that come after it (a final norm); for a network of plain layers, its
    last layer that has weights."""
    import torch.nn as nn

    children = [m for m in net.children() if _has_weights(m)]
    containers = [i for i, m in enumerate(children) if any(_has_weights(c) for c in m.children())]
    if not containers:
        return [children[-1] if children else net]
    block = children[containers[-1]]
    while True:
        inner = [m for m in block.children() if _has_weights(m)]
        if len(inner) == 1 and any(_has_weights(c) for c in inner[0].children()):
            block = inner[0]  # a wrapper around the blocks (open_clip's transformer)
        elif len(inner) > 1 and isinstance(block, (nn.Sequential, nn.ModuleList)):
            block = inner[-1]
            break
        else:
            break
    return [block, *children[containers[-1] + 1:]]


def _has_weights(module) -> bool:
    return any(True for _ in module.parameters())
