"""TorchClassifier: a small PyTorch network as a learner, retrained as labels grow.

It is a scikit-learn estimator (clone-able, hyperparameters only in `__init__`, `fit`
returns self) around a small PyTorch network, a CNN for images and an MLP for vectors,
trained from scratch on every `fit` so that results never depend on the order labels
arrived in. It runs on CUDA when present.

Small-data choices, because active learning lives at 20-200 labels: a fixed minimum
number of optimisation steps (not epochs) so 20 labels still train properly; random
1-pixel shifts for images (cheap, label-preserving, a large win on few labels); and a
small ensemble of networks (`n_members`) whose averaged probabilities rank uncertainty
far better than one network's over-confident softmax.

It also learns from the items nobody labeled yet: given `X_unlabeled`, `fit` trains once on
the labels, takes the unlabeled items the ensemble is sure of (`pseudo_label_threshold`)
as pseudo-labels, and trains again on both (self-training). Predictions come from that
second model; uncertainty for choosing what to ask (`query_proba`, MC-dropout samples) comes
from the first, which knows only what people labeled: the second has been taught its own
guesses and is confidently wrong exactly where a label would help. On the digits the two
together cut the labels the default strategy needs from 60 to 40; the session passes the
unlabeled pool.

Randomness is the estimator's own: every random draw (weight init, shuffling, shifts,
dropout) comes from `random_state`, and neither `fit` nor `predict_proba_samples` changes
torch's global random state, so seeding them never reseeds the notebook around them
(`workbench.learn.torch_rng`).
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from workbench.data.devices import torch_device
from workbench.learn.torch_rng import _own_rng, _seed

__all__ = ["TorchClassifier"]


class TorchClassifier(ClassifierMixin, BaseEstimator):
    """A small PyTorch classifier with the scikit-learn contract.

    Parameters
    ----------
    hidden: width of the hidden layer.
    dropout: dropout rate (also what MC-dropout samples for BALD).
    min_steps, max_epochs: training length: at least `min_steps` steps and 5 epochs, at
        most `max_epochs` epochs (see `_schedule`).
    n_members: networks in the ensemble, each seeded differently; probabilities averaged.
    pseudo_label_threshold: self-training on `X_unlabeled` items whose averaged probability
        reaches this (None: labels only).
    max_unlabeled: at most this many unlabeled items (a seeded sample) are considered, so
        that a huge pool does not make retraining slow.
    augment: random 1-pixel shifts of images during training.
    device: "auto" (CUDA when available), "cpu" or "cuda".
    module: optional callable (n_features_or_shape, n_classes) -> nn.Module to use instead
        of the built-in networks.
    random_state: int (exactly reproducible), None or a numpy RandomState (a seed is drawn
        from it on each fit, as scikit-learn estimators do).

    Inputs are vectors (N x F) or images (N x H x W, or N x H x W x C), finite numbers only.
    After `fit`: `classes_`, `input_shape_` (one item's shape), `n_features_in_` (values
    per item: F, or H*W*C for images), `history_`, `n_pseudo_labels_`, `net_`, `query_net_`.
    """

    accepts_images = True

    def __init__(self, hidden=128, dropout=0.25, lr=1e-2, weight_decay=1e-4, batch_size=32,
                 min_steps=300, max_epochs=300, n_members=3, augment=True, device="auto",
                 module=None, pseudo_label_threshold=0.95, max_unlabeled=2000, random_state=0):
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.min_steps = min_steps
        self.max_epochs = max_epochs
        self.n_members = n_members
        self.augment = augment
        self.device = device
        self.module = module
        self.pseudo_label_threshold = pseudo_label_threshold
        self.max_unlabeled = max_unlabeled
        self.random_state = random_state

    # -- fitting --------------------------------------------------------------------------
    def fit(self, X, y, X_unlabeled=None):
        """Train on (X, y); with `X_unlabeled`, then self-train on its confident items."""
        import torch

        n_X, n_y = _n_rows(X), _n_rows(y)
        if n_X is not None and n_y is not None and n_X != n_y:
            raise ValueError(f"X has {n_X} rows but y has {n_y} labels")
        # scikit-learn's own validation: finite numbers only (a NaN pixel used to train
        # into NaN probabilities without a word), images allowed (allow_nd), feature names
        # and n_features_in_ recorded for the checks at predict time.
        X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float32)
        check_classification_targets(y)
        self._seed = _seed(self.random_state)
        self._encoder = LabelEncoder().fit(y)
        self.classes_ = self._encoder.classes_
        targets = self._encoder.transform(y)
        self.is_image_ = X.ndim > 2
        self.input_shape_ = X.shape[1:]
        # validate_data counts X.shape[1] (an image's rows); what an item holds is all of it.
        self.n_features_in_ = int(np.prod(self.input_shape_))
        # Standardised inputs: without this the CNN sat at chance for the first third of a
        # short schedule and underfit 35 labels (train accuracy 0.7); per-feature for
        # vectors, one scalar for images (pixels share a scale).
        axis = None if self.is_image_ else 0
        self.mean_ = X.mean(axis=axis)
        self.std_ = X.std(axis=axis) + 1e-6
        self.device_ = torch_device(self.device)
        # Networks this small gain nothing from intra-op threads, and on a busy or
        # quota-limited CPU (Binder, CI, a kernel beside a browser) spinning threads made
        # training 10-20x slower; one thread for the duration of fit, then restored.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._fit_network(X, targets)
            self.query_net_ = self.net_  # trained on human labels only: ranks uncertainty
            self.n_pseudo_labels_ = 0
            if X_unlabeled is not None and self.pseudo_label_threshold:
                self._self_train(X, targets, X_unlabeled)
        finally:
            torch.set_num_threads(threads)
        return self

    def _self_train(self, X, targets, X_unlabeled) -> None:
        """Pseudo-label the unlabeled items the ensemble is sure of and retrain from scratch
        on labels plus pseudo-labels. Active learning asks about the items the model is
        unsure of; the confident rest would otherwise teach it nothing."""
        unlabeled = check_array(X_unlabeled, allow_nd=True, ensure_2d=False, dtype=np.float32,
                                ensure_min_samples=0, input_name="X_unlabeled")
        if unlabeled.shape[1:] != X.shape[1:]:
            raise ValueError(f"X_unlabeled items have shape {unlabeled.shape[1:]}, "
                             f"but the labeled items have {X.shape[1:]}")
        if len(unlabeled) > self.max_unlabeled:
            sample = np.random.default_rng(self._seed).choice(len(unlabeled), self.max_unlabeled,
                                                              replace=False)
            unlabeled = unlabeled[sample]
        if len(unlabeled) == 0:
            return
        proba = self._member_proba(unlabeled, train_mode=False).mean(axis=1)
        confident = proba.max(axis=1) >= self.pseudo_label_threshold
        if not confident.any():
            return
        self._fit_network(np.concatenate([X, unlabeled[confident]]),
                          np.concatenate([targets, proba[confident].argmax(axis=1)]))
        self.n_pseudo_labels_ = int(confident.sum())

    def _fit_network(self, X, targets) -> None:
        import torch

        inputs = torch.from_numpy(self._prepare(X)).to(self.device_)
        targets = torch.from_numpy(targets.astype(np.int64)).to(self.device_)
        batch_size, epochs = self._schedule(len(targets))
        self.net_, curve = self._train(inputs, targets, epochs, batch_size)
        self.history_ = [{"epoch": e + 1, "loss": loss, "accuracy": acc}
                         for e, (loss, acc) in enumerate(curve)]

    def _schedule(self, n: int) -> tuple[int, int]:
        """(batch size, epochs) for n training items. Few labels: at least `min_steps`
        optimisation steps, however many epochs that takes (20 labels still train). Many:
        at least 5 epochs, and twice the batch once an epoch has 16 batches or more,
        because per item a batch of 64 costs a third less CPU time than one of 32; with
        it, retraining on all 1,257 digits pool labels takes about half as long."""
        base_batches = math.ceil(n / self.batch_size)
        epochs = int(min(self.max_epochs, max(5, math.ceil(self.min_steps / base_batches))))
        batch_size = self.batch_size * 2 if base_batches >= 16 else self.batch_size
        return batch_size, epochs

    def _train(self, inputs, targets, epochs, batch_size):
        import torch

        generator = torch.Generator(device="cpu").manual_seed(self._seed)
        # Weight init and dropout draw from torch's global generators; they get our seed
        # inside a fork that puts the caller's state back afterwards.
        with _own_rng(self._seed, self.device_):
            return self._train_steps(inputs, targets, epochs, batch_size, generator)

    def _train_steps(self, inputs, targets, epochs, batch_size, generator):
        import torch
        import torch.nn.functional as F

        net = self._build(len(self.classes_)).to(self.device_)
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps = epochs * math.ceil(len(targets) / batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
        curve = []
        net.train()
        for _ in range(epochs):
            order = torch.randperm(len(targets), generator=generator).to(self.device_)
            total_loss, correct = 0.0, 0
            for start in range(0, len(targets), batch_size):
                idx = order[start:start + batch_size]
                xb, yb = inputs[idx], targets[idx]
                if self.is_image_ and self.augment:
                    xb = _random_shift(xb, generator)
                logits = net(xb)  # (batch, members, classes)
                members = logits.shape[1]
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                       yb.repeat_interleave(members))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total_loss += loss.detach() * len(idx)
                correct += (logits.detach().softmax(-1).mean(1).argmax(1) == yb).sum()
            curve.append((float(total_loss) / len(targets), int(correct) / len(targets)))
        net.eval()
        return net, curve

    # -- prediction -------------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        check_is_fitted(self, "net_")
        return self._member_proba(self._validate_items(X), train_mode=False).mean(axis=1)

    def predict(self, X) -> np.ndarray:
        proba = self.predict_proba(X)  # first: it raises NotFittedError before classes_ exists
        return self.classes_[proba.argmax(axis=1)]

    def query_proba(self, X) -> np.ndarray:
        """Probabilities to rank uncertainty by: from the networks trained on the labels
        alone, before self-training (the same as predict_proba without it)."""
        check_is_fitted(self, "net_")
        X = self._validate_items(X)
        return self._member_proba(X, train_mode=False, net=self.query_net_).mean(axis=1)

    def predict_proba_samples(self, X, n_samples: int = 20) -> np.ndarray:
        """MC-dropout samples (n_samples, N, C) for BALD: dropout stays on at inference;
        each pass yields one sample per ensemble member (of the labels-only networks, as
        for `query_proba`). The same for the same fitted model and X: dropout is seeded
        from `random_state`, in a fork of torch's generators."""
        check_is_fitted(self, "net_")
        X = self._validate_items(X)
        samples = []
        with _own_rng(self._seed, self.device_):
            while len(samples) < n_samples:
                per_member = self._member_proba(X, train_mode=True, net=self.query_net_)  # (N, M, C)
                samples.extend(per_member.transpose(1, 0, 2))
        return np.stack(samples[:n_samples])

    def _validate_items(self, X) -> np.ndarray:
        """X as float32 items shaped like the training items, finite; zero rows allowed
        (the session scores whatever is left of a pool)."""
        # ensure_2d=False keeps validate_data from comparing X.shape[1] (an image's rows)
        # with n_features_in_; the whole item shape is compared below instead.
        X = validate_data(self, X, reset=False, allow_nd=True, ensure_2d=False, dtype=np.float32,
                          ensure_min_samples=0)
        if X.ndim < 2:
            raise ValueError(f"Expected a 2D array (or images), got a {X.ndim}D array instead. "
                             "Reshape your data: one item x as x[None] or x.reshape(1, -1).")
        if X.shape[1:] != tuple(self.input_shape_):
            # scikit-learn's wording when the counts differ (its checks look for it), then ours
            n_features = int(np.prod(X.shape[1:]))
            counts = "" if n_features == self.n_features_in_ else (
                f"X has {n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input; ")
            shape = ", ".join(map(str, self.input_shape_))
            raise ValueError(f"{counts}expected inputs of shape (N, {shape}), got {X.shape}")
        return X

    def _member_proba(self, X, *, train_mode: bool, net=None) -> np.ndarray:
        import torch

        net = self.net_ if net is None else net
        X = self._prepare(X)
        net.train(train_mode)
        out = []
        with torch.inference_mode():
            for start in range(0, len(X), 8192):
                xb = torch.from_numpy(X[start:start + 8192]).to(self.device_)
                out.append(torch.softmax(net(xb), dim=-1).cpu().numpy())
        net.eval()
        if not out:
            return np.empty((0, 1, len(self.classes_)), np.float32)
        return np.concatenate(out)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True  # images: N x H x W (x C)
        tags.input_tags.allow_nan = False
        return tags

    # -- networks ---------------------------------------------------------------------------
    def _prepare(self, X: np.ndarray) -> np.ndarray:
        X = (X - self.mean_) / self.std_
        if not self.is_image_:
            return np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim == 3:  # N x H x W -> N x 1 x H x W
            return np.ascontiguousarray(X[:, None])
        return np.ascontiguousarray(X.transpose(0, 3, 1, 2))  # N x H x W x C -> N x C x H x W

    def _build(self, n_classes: int):
        from workbench.learn.networks import Ensemble, EnsembleCNN, EnsembleMLP

        if self.module is not None:
            return Ensemble([self.module(self.input_shape_, n_classes) for _ in range(self.n_members)])
        if not self.is_image_:
            return EnsembleMLP(self.input_shape_[0], n_classes, self.hidden, self.dropout, self.n_members)
        channels = 1 if len(self.input_shape_) == 2 else self.input_shape_[-1]
        return EnsembleCNN(channels, n_classes, self.hidden, self.dropout, self.n_members)



def _n_rows(a) -> int | None:
    """Rows of an array-like, if it plainly has them (for a clearer message than sklearn's)."""
    shape = getattr(a, "shape", None)
    if shape is not None:
        return shape[0] if len(shape) else None
    return len(a) if isinstance(a, list | tuple) else None



def _random_shift(x, generator, max_shift: int = 1):
    """Shift each image by up to one pixel (zero padding): label-preserving for digits,
    characters and most photos, and it multiplies what few labels teach."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = x.shape
    windows = F.pad(x, (max_shift,) * 4).unfold(2, h, 1).unfold(3, w, 1)  # n, c, dy, dx, h, w
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(x.device)
    return windows[torch.arange(n, device=x.device), :, dy, dx]
