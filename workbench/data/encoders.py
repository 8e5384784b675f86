"""Encoders: what a pool's items are turned into, fitted on the pool and applied to any
items of the same kind, and saved as plain arrays.

- images: single-layer patch features (Coates & Ng 2011), `PatchEncoder`: a dictionary of
  k-means centroids of whitened image patches, applied as a convolution, rectified, pooled
  over the image's quadrants, then PCA with soft whitening. Images larger than `MAX_SIDE`
  pixels are downscaled first, so the cost per image is bounded whatever the photo size.
- vectors and tables: the features standardised (PCA to 128 dimensions above that),
  `VectorEncoder`.
- texts: the pool's own text features, L2-normalised, `UnitEncoder`.

None of it needs a download. `workbench.data.representation` uses them (bump its VERSION
when an encoder changes what it computes: cached representations are keyed by it); a model
bundle carries a fitted one (`workbench.learn.learner_state`, `workbench.learn.onnx_graph`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from workbench.data.devices import torch_device

__all__ = ["ENCODERS", "MAX_SIDE", "Encoder", "PatchEncoder", "Progress", "UnitEncoder", "VectorEncoder",
           "encoder_for"]

MAX_SIDE = 32          # images are downscaled to at most this many pixels a side
Progress = Callable[[float, str], None]


class Encoder:
    """Maps items in the pool's feature space to representation vectors; saved as arrays.

    Two stages, so that a pool of any size is fitted on a sample and encoded part by part
    (`workbench.data.representation.build`, on a cluster or not): the base (`fit_base`,
    `encode_base`: per item, e.g. patch responses) and the top (`fit_top` on the base
    features of the sample, `encode_top`: e.g. a PCA). `fit` learns both from a sample,
    `transform` encodes any items, `fit_transform` does both for items it fits on."""

    name = "encoder"

    def fit(self, X: np.ndarray, progress: Progress | None = None) -> Encoder:
        """Learn from `X`, a sample of the pool (all of it up to 50,000 items)."""
        progress = progress or _quiet
        self.fit_base(X, progress)
        self.fit_top(self.encode_base(X), progress)
        return self

    def fit_transform(self, X: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """`fit(X)` then `transform(X)`, encoding the items once."""
        progress = progress or _quiet
        self.fit_base(X, progress)
        base = self.encode_base(X)
        self.fit_top(base, progress)
        return self.encode_top(base)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.encode_top(self.encode_base(X))

    def fit_base(self, X: np.ndarray, progress: Progress) -> None:
        """Learn what encoding single items needs (nothing, unless an encoder says so)."""

    def encode_base(self, X: np.ndarray) -> np.ndarray:
        """Each item's base features, item by item (what a part's worker computes)."""
        return X.reshape(len(X), -1)

    def fit_top(self, base: np.ndarray, progress: Progress) -> None:
        """Learn the top stage from the sample's base features."""

    def encode_top(self, base: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v) for k, v in vars(self).items()}

    @classmethod
    def from_arrays(cls, arrays: dict) -> Encoder:
        encoder = cls.__new__(cls)
        for k, v in arrays.items():
            setattr(encoder, k, v if v.ndim else v.item())
        return encoder


class _Projection:
    """Standardise, then PCA with soft whitening: component i is scaled by
    1/sqrt(var_i + mean var), so the strong directions (brightness, stroke width) no longer
    dominate distances, while the weakest, mostly noise, are not blown up either (full
    whitening made neighbours worse on small pools)."""

    @staticmethod
    def fit(Z: np.ndarray, dims: int, *, whiten: bool, seed: int) -> dict:
        from sklearn.decomposition import PCA

        mean = Z.mean(axis=0)
        scale = Z.std(axis=0) + 1e-6
        Zs = (Z - mean) / scale
        k = min(dims, Zs.shape[1], max(1, len(Zs) - 1))
        if k >= Zs.shape[1] and not whiten:
            components = np.eye(Zs.shape[1], dtype=np.float32)
            variance = Zs.var(axis=0)
        else:
            pca = PCA(k, random_state=seed).fit(Zs)
            components, variance = pca.components_, pca.explained_variance_
        gain = 1 / np.sqrt(variance + variance.mean()) if whiten else np.ones(len(components))
        return {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
                "components": np.ascontiguousarray(components.T * gain, dtype=np.float32)}

    @staticmethod
    def apply(p: dict, Z: np.ndarray) -> np.ndarray:
        # The product in float64, rounded to float32 after: a float32 product's sums depend on
        # how many rows BLAS gets at once (differences of 3e-6 between parts of 512 and 8,192
        # rows), and a pool encoded in parts on a cluster must equal one encoded here.
        standard = ((Z - p["mean"]) / p["scale"]).astype(np.float64)
        return (standard @ p["components"].astype(np.float64)).astype(np.float32)


class PatchEncoder(Encoder):
    """Single-layer patch features for images (Coates & Ng 2011), then soft-whitened PCA.

    Per image (after downscaling to <= 32 px a side): every p x p patch is brightness- and
    contrast-normalised, whitened, and compared with K dictionary atoms (k-means centroids of
    such patches from the pool), one convolution; the responses are soft-thresholded into
    positive and negative parts and averaged over the image's four quadrants (4 * 2K values),
    then projected to 128 dimensions. At 28 x 28 with p = 6 and K = 256 that is about
    5 M multiply-adds per image; the dictionary is learned from <= 50,000 patches.
    """

    name = "patches"

    def __init__(self, n_atoms: int = 256, dims: int = 128, seed: int = 0, device: str = "auto"):
        self.n_atoms, self.dims, self.seed, self.device = n_atoms, dims, seed, device

    def fit_base(self, X, progress):
        """The dictionary: k-means atoms of whitened patches of 2,000 of the images."""
        import torch
        import torch.nn.functional as F
        from sklearn.cluster import MiniBatchKMeans

        rng = np.random.default_rng(self.seed)
        progress(0.02, "sampling image patches")
        # only the images patches are drawn from are prepared (downscaled) here
        sample = self._prepare(np.asarray(X)[rng.choice(len(X), min(len(X), 2000), replace=False)])
        c, h, w = sample.shape[1:]
        self.patch = int(np.clip(round(min(h, w) / 5), 3, 6))
        cols = F.unfold(sample, self.patch)  # (n, c*p*p, positions)
        patches = cols.transpose(1, 2).reshape(-1, cols.shape[1])
        keep = rng.choice(len(patches), min(len(patches), 50_000), replace=False)
        patches = self._normalise(patches[torch.from_numpy(keep)]).double()
        mean = patches.mean(0)
        eigval, eigvec = torch.linalg.eigh(torch.cov((patches - mean).T))
        zca = eigvec @ torch.diag(1 / torch.sqrt(eigval.clamp_min(0) + 0.1)) @ eigvec.T
        progress(0.06, f"learning {self.n_atoms} patch atoms (k-means)")
        white = ((patches - mean) @ zca).float().numpy()
        atoms = MiniBatchKMeans(min(self.n_atoms, len(white)), n_init=1, batch_size=4096,
                                max_iter=30, random_state=self.seed).fit(white).cluster_centers_
        atoms = torch.from_numpy(atoms).double()
        atoms = atoms / (atoms.norm(dim=1, keepdim=True) + 1e-12)
        # whiten-then-project, folded into one filter bank and a bias per atom
        # contiguous, as they are when read back from a cache or a bundle: a strided filter
        # bank takes another convolution path, whose sums differ in the last bits
        self.filters = np.ascontiguousarray(
            (zca @ atoms.T).T.reshape(len(atoms), c, self.patch, self.patch).float().numpy())
        self.bias = np.ascontiguousarray((mean @ zca @ atoms.T).float().numpy())

    def encode_base(self, X, progress: Callable[[float], None] | None = None):
        """The pooled patch responses (N x 8K), before the PCA."""
        return self._encode(self._prepare(X), progress or (lambda f: None))

    def fit_top(self, pooled, progress):
        """The PCA, fitted on the pooled responses of the sample."""
        progress(0.86, "projecting (PCA)")
        self.projection = _Projection.fit(pooled, self.dims, whiten=True, seed=self.seed)

    def encode_top(self, pooled):
        return _unit(_Projection.apply(self.projection, pooled))

    def _prepare(self, X):
        """Images as a float tensor N x C x H x W, downscaled to <= MAX_SIDE a side."""
        import torch
        import torch.nn.functional as F

        X = np.asarray(X, dtype=np.float32)
        X = X[:, None] if X.ndim == 3 else X.transpose(0, 3, 1, 2)
        x = torch.from_numpy(np.ascontiguousarray(X))
        h, w = x.shape[2:]
        if max(h, w) > MAX_SIDE:
            f = MAX_SIDE / max(h, w)
            x = F.interpolate(x, size=(max(1, round(h * f)), max(1, round(w * f))), mode="area")
        return x

    def _normalise(self, patches):
        import torch

        mean = patches.mean(1, keepdim=True)
        return (patches - mean) / torch.sqrt(patches.var(1, keepdim=True) + 0.01)

    def _encode(self, x, progress, batch: int | None = None):
        import torch
        import torch.nn.functional as F

        device = torch_device(self.device)
        p = self.patch
        n_values = x.shape[1] * p * p
        filters = torch.from_numpy(self.filters).to(device)
        # conv(x, f) - (patch mean) * sum(f) is conv(x, f - mean(f)): one convolution
        # normalises every patch's brightness, no second map to subtract
        centred = filters - filters.mean((1, 2, 3), keepdim=True)
        bias = torch.from_numpy(self.bias).to(device)[None, :, None, None]
        # The response maps (batch x atoms x positions) are the big tensors, and the passes
        # over them are most of the time: a batch whose maps fit in the CPU's cache (about
        # 8 MB) runs 4x faster than one of 256 28 x 28 images (140 MB).
        positions = (x.shape[2] - p + 1) * (x.shape[3] - p + 1)
        batch = batch or max(1, (2 << 20) // max(1, len(filters) * positions))
        out = []
        with torch.inference_mode():
            for start in range(0, len(x), batch):
                xb = x[start:start + batch].to(device)
                # each patch's mean and standard deviation, as pooled maps
                mean = F.avg_pool2d(xb, p, stride=1).mean(1, keepdim=True)
                square = F.avg_pool2d(xb * xb, p, stride=1).mean(1, keepdim=True)
                std = torch.sqrt((square - mean * mean).clamp_min(0) * n_values / (n_values - 1) + 0.01)
                z = F.conv2d(xb, centred).div_(std).sub_(bias)
                # relu(z - a) and relu(-z - a), pooled, without materialising both:
                # their difference is softshrink(z), their sum |softshrink(z)|
                shrunk = F.softshrink(z, 0.25)
                shrink = F.adaptive_avg_pool2d(shrunk, 2)
                magnitude = F.adaptive_avg_pool2d(shrunk.abs_(), 2)
                out.append(torch.cat([magnitude + shrink, magnitude - shrink], 1).flatten(1).cpu() / 2)
                progress(min(1.0, (start + batch) / len(x)))
        return torch.cat(out).numpy() if out else np.empty((0, 8 * len(self.filters)), np.float32)

    def arrays(self):
        return {"patch": np.asarray(self.patch), "filters": self.filters, "bias": self.bias,
                "device": np.asarray("auto"),
                **{f"projection__{k}": v for k, v in self.projection.items()}}

    @classmethod
    def from_arrays(cls, arrays):
        encoder = cls.__new__(cls)
        encoder.patch = int(arrays["patch"])
        encoder.filters, encoder.bias = arrays["filters"], arrays["bias"]
        encoder.device = "auto"
        encoder.projection = {k[len("projection__"):]: v for k, v in arrays.items()
                              if k.startswith("projection__")}
        return encoder


class VectorEncoder(Encoder):
    """Vectors and table rows: standardised (columns come in different units), and reduced
    by PCA to `dims` when there are more."""

    name = "standardised"

    def __init__(self, dims: int = 128, seed: int = 0):
        self.dims, self.seed = dims, seed

    def fit_top(self, flat, progress):
        progress(0.05, "standardising features")
        if flat.shape[1] > self.dims:
            self.projection = _Projection.fit(flat, self.dims, whiten=False, seed=self.seed)
        else:
            mean, scale = flat.mean(axis=0), flat.std(axis=0) + 1e-6
            self.projection = {"mean": mean.astype(np.float32), "scale": scale.astype(np.float32),
                               "components": np.empty((0, 0), np.float32)}

    def encode_top(self, flat):
        p = self.projection
        if p["components"].size:
            return _Projection.apply(p, flat).astype(np.float32)
        return ((flat - p["mean"]) / p["scale"]).astype(np.float32)

    def arrays(self):
        return {f"projection__{k}": v for k, v in self.projection.items()}

    @classmethod
    def from_arrays(cls, arrays):
        encoder = cls.__new__(cls)
        encoder.projection = {k[len("projection__"):]: v for k, v in arrays.items()}
        return encoder


class UnitEncoder(Encoder):
    """Text features (embeddings or LSA) compare by angle: L2-normalised, nothing learned."""

    name = "normalised"

    def encode_top(self, flat):
        return _unit(flat)

    def arrays(self):
        return {}


ENCODERS: dict[str, type[Encoder]] = {e.name: e for e in (PatchEncoder, VectorEncoder, UnitEncoder)}


def encoder_for(pool, *, seed: int = 0) -> Encoder:
    if pool.kind == "image" and pool.X.ndim >= 3:
        return PatchEncoder(seed=seed)
    if pool.kind == "text":
        return UnitEncoder()
    return VectorEncoder(seed=seed)


def _quiet(fraction: float, message: str) -> None:
    pass


def _unit(Z: np.ndarray) -> np.ndarray:
    Z = np.asarray(Z, dtype=np.float32)
    return Z / (np.linalg.norm(Z, axis=1, keepdims=True) + 1e-12)
