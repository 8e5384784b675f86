"""The default learner of a boxes pool: a small CenterNet-style detector trained from scratch
(or fine-tuned from another's network: `fit_boxes(start_from=)`, how a session started from a
boxes bundle keeps what it knew).

CenterNet ("Objects as Points", Zhou et al. 2019) finds an object as the peak of a heatmap
over a coarse grid, and reads its box from more maps at that cell: the size and the centre's
offset inside the cell. No anchors and no non-maximum suppression: a 3x3 max-pool keeps the
local peaks, the K best are the candidate boxes. That makes it the lightest honest detector
to train from nothing, which is what an active-learning round does.

One change from the paper: one class-agnostic centre heatmap plus a softmax over the classes
at each cell, instead of a heatmap per class. With a heatmap per class each class learned
"where" from its own few boxes; shared, every box teaches where objects are (class-agnostic
AP on the digit scenes went from 0.79 to 0.98 at 200 images) and the class is learned by
cross-entropy at the cells near each centre (not the centre alone: 0.76 -> 0.84 mAP). A
peak's box is offered with its GUESSES likeliest classes, scored centre x class probability,
so a second guess still finds the box at a lower score.

The network: the image averaged down 2x (a digit of 16 pixels keeps its 8x8 detail) and cut
into 2x2 blocks as channels, two 3x3 convolutions to the grid of stride 8, three more there
(one dilated: a cell sees about 80 pixels, the largest object and around), then a 1x1 head.
The heatmap learns from Gaussian targets with CenterNet's focal loss; size (log width and
height in cells) and offset by L1 at the centre cells.

Cost is the constraint: a round fits on up to 200 labeled images and scores 1,000 more in
about 5 s on 2 cores. So the training length is a fixed number of optimisation steps (not
epochs: 200 labels cost what 50 do; small batches, because more updates learned more than
bigger batches for the same time), the channels are few, torch runs one thread (as the other
learners: on a shared CPU spinning threads made training many times slower), and inference
runs in batches under `torch.inference_mode`. Measured on 2 cores, 128x128 images: a fit
takes about 3.2 s (CPU time) at any number of images, boxes or uncertainty for 1,000 images
0.35 s each, or both in one pass with `predict_with_uncertainty`.

Uncertainty per image comes from its candidate boxes (score >= 0.05): the least confident
box, max of 1 - |2s - 1| (1 for a box the model is as likely to keep as to drop at the 0.5
threshold), and the box entropy, the sum of their binary entropies (nats).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from workbench.data.devices import torch_device
from workbench.learn import box_training
from workbench.learn.box_training import STRIDE
from workbench.learn.torch_rng import _own_rng, _seed

__all__ = ["BoxDetector", "UNCERTAINTY"]

UNCERTAINTY = ("least_confident_box", "box_entropy")  # the columns of `uncertainty`
CANDIDATE_SCORE = 0.05  # peaks at least this sure are candidate boxes, for uncertainty too
PREDICT_PIXELS = 128 * 128 * 128  # pixels per inference batch: 128 images of 128x128
GUESSES = 3  # classes per peak: second guesses at lower scores still find boxes (mAP's recall)


def _network(in_channels: int, n_classes: int, width: int):
    import torch
    from torch import nn

    def block(c_in, c_out, stride=1, dilation=1):
        return [nn.Conv2d(c_in, c_out, 3, stride, padding=dilation, dilation=dilation, bias=False),
                nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

    c2, c3 = max(8, width // 2), width
    body = nn.Sequential(nn.AvgPool2d(2), nn.PixelUnshuffle(2), *block(4 * in_channels, c2),
                         *block(c2, c3, 2), *block(c3, c3), *block(c3, c3, dilation=2), *block(c3, c3))
    head = nn.Conv2d(c3, 5 + n_classes, 1)  # centre heatmap, log size (w, h), offset (x, y), classes
    with torch.no_grad():  # the heatmap starts near 0.1 everywhere, as CenterNet's: a stable start
        head.bias[0].fill_(-math.log((1 - 0.1) / 0.1))
        head.bias[1:].zero_()
    return nn.Sequential(body, head)


class BoxDetector(BaseEstimator):
    """A CenterNet-style box detector (see the module doc), trained from scratch on each fit
    unless given a fitted one to start from.

    Parameters
    ----------
    labels: the class names it detects (None: the labels of the boxes it is fitted on).
    threshold: boxes scored at least this are what a suggestion shows.
    steps, batch_size, lr, weight_decay: the training length in optimisation steps (the same
        for any number of images) and the AdamW settings, with a one-cycle learning rate.
    width: channels at the grid (the first convolution has half of it).
    max_boxes: the most candidate peaks per image (K of the top-K).
    max_side: images larger than this on their longer side are averaged down to it (their
        boxes too) before the network sees them, and its boxes scaled back: the cost of a
        round stays that of a 256-pixel image for photos of any size, at the price of
        objects under about 16 pixels there (a 640-pixel photo: 40 pixels) going unseen.
    device: "auto" (CUDA when available), "cpu" or "cuda".
    random_state: int (exactly reproducible), None or a numpy RandomState.

    Images are (n, H, W) or (n, H, W, C) floats, any H and W (padded to a multiple of 8
    inside). After fit: `labels_`, `n_channels_`, `net_`, `history_` (loss per 10 steps).
    """

    def __init__(self, labels: Sequence[str] | None = None, threshold: float = 0.5, steps: int = 360,
                 batch_size: int = 8, lr: float = 1e-2, weight_decay: float = 1e-4, width: int = 32,
                 max_boxes: int = 30, max_side: int = 256, device: str = "auto", random_state=0):
        self.labels = labels
        self.threshold = threshold
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.width = width
        self.max_boxes = max_boxes
        self.max_side = max_side
        self.device = device
        self.random_state = random_state

    # -- fitting ----------------------------------------------------------------------------
    def fit_boxes(self, images, box_lists, *, start_from: BoxDetector | None = None) -> BoxDetector:
        """Train on `images` marked with `box_lists`: one sequence of (x, y, w, h, label) per
        image (an empty one: the image holds no object). `start_from`, a fitted BoxDetector of
        the same labels (in the same order), channels, width and image scale: training starts
        from its network and reads images as it did (fine-tuning), not from random weights."""
        import torch

        images = self._check_images(images)
        box_lists = [list(boxes) for boxes in box_lists]
        if len(box_lists) != len(images):
            raise ValueError(f"got {len(images)} images but {len(box_lists)} box lists; "
                             "expected one list of boxes per image")
        if not len(images):
            raise ValueError("BoxDetector needs at least one image to fit on")
        self.labels_ = self._fit_labels(box_lists)
        index = {label: i for i, label in enumerate(self.labels_)}
        for boxes in box_lists:
            for box in boxes:
                _check_box(box, index)
        self.n_channels_ = images.shape[3]
        self.scale_ = _scale(images.shape[1:3], self.max_side)
        if self.scale_ < 1:
            images = _resized(images, self.scale_)
            box_lists = [[(*(float(v) * self.scale_ for v in box[:4]), *box[4:]) for box in boxes]
                         for boxes in box_lists]
        if start_from is not None:
            self._check_start(start_from)
            self.mean_, self.std_ = start_from.mean_, start_from.std_
        else:
            self.mean_, self.std_ = float(images.mean()), float(images.std()) + 1e-6
        self.device_ = torch_device(self.device)
        self._seed = _seed(self.random_state)
        inputs = torch.from_numpy(self._prepare(images))
        targets = [torch.from_numpy(t) for t in box_training.targets(box_lists, index, inputs.shape[2:])]
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with _own_rng(self._seed, self.device_):
                self._train(inputs, targets, start_from)
        finally:
            torch.set_num_threads(threads)
        return self

    def _fit_labels(self, box_lists) -> list[str]:
        seen = sorted({str(box[4]) for boxes in box_lists for box in boxes if len(box) >= 5})
        if self.labels is None:
            if not seen:
                raise ValueError("BoxDetector got no labels and no boxes to learn them from; "
                                 "pass labels=[...] (the class names) or some boxes")
            return seen
        labels = [str(label) for label in self.labels]
        if not labels:
            raise ValueError("BoxDetector got labels=[]; expected the class names it detects")
        if len(set(labels)) != len(labels):
            raise ValueError(f"BoxDetector labels hold duplicates: {labels}")
        return labels

    def _check_start(self, start: BoxDetector) -> None:
        if not hasattr(start, "net_"):
            raise ValueError("start_from= takes a fitted BoxDetector; this one is not fitted")
        mine = (self.labels_, self.n_channels_, self.width, self.scale_)
        theirs = (start.labels_, start.n_channels_, start.width, start.scale_)
        if mine != theirs:
            raise ValueError(f"start_from= takes a BoxDetector of the same labels, channels, width and "
                             f"image scale; it has {theirs}, this fit {mine}")

    def _train(self, inputs, targets, start: BoxDetector | None = None) -> None:
        import copy

        import torch

        generator = torch.Generator().manual_seed(self._seed)
        net = (copy.deepcopy(start.net_) if start is not None else
               _network(self.n_channels_, len(self.labels_), self.width)).to(self.device_)
        if len(inputs) == 1:  # BatchNorm trains on 2 values per channel at least: an 8 x 8 image has 1
            inputs, targets = torch.cat([inputs, inputs]), [torch.cat([t, t]) for t in targets]
        inputs = inputs.to(self.device_)
        targets = [t.to(self.device_) for t in targets]
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=max(self.steps, 2))
        n, batch = len(inputs), min(self.batch_size, len(inputs))
        order, at, history, running = torch.randperm(n, generator=generator), 0, [], 0.0
        net.train()
        for step in range(self.steps):
            if at + batch > n:  # a fresh shuffle each pass over the images
                order, at = torch.randperm(n, generator=generator), 0
            idx = order[at:at + batch].to(self.device_)
            at += batch
            loss = box_training.loss(net(inputs[idx]), *(t[idx] for t in targets))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            running += float(loss.detach())
            if (step + 1) % 10 == 0 or step + 1 == self.steps:
                history.append({"step": step + 1, "loss": running / ((step % 10) + 1)})
                running = 0.0
        net.eval()
        self.net_, self.history_ = net, history

    # -- prediction -------------------------------------------------------------------------
    def predict_boxes(self, images, min_score: float = CANDIDATE_SCORE) -> list[list[tuple]]:
        """For each image, its boxes (x, y, w, h, label, score) with score >= min_score, inside
        the image (coordinates rounded to 2 decimals), by descending score."""
        return self._boxes(self._peaks(images), min_score)

    def uncertainty(self, images) -> np.ndarray:
        """(n, 2): how unsure the model is of each image, by the measures of UNCERTAINTY (see
        the module doc); an image without a candidate box is 0 by both."""
        return _uncertainty(self._peaks(images)[0])

    def predict_with_uncertainty(self, images, min_score: float = CANDIDATE_SCORE):
        """(predict_boxes(images, min_score), uncertainty(images)) from one pass of the network:
        a round that wants both for a pool pays for the network once."""
        peaks = self._peaks(images)
        return self._boxes(peaks, min_score), _uncertainty(peaks[0])

    def _boxes(self, peaks, min_score: float) -> list[list[tuple]]:
        out = []
        for s, c, b in zip(*peaks):
            boxes = []
            for k in np.flatnonzero(s >= min_score):
                # rounded corners first, then the size: x + w stays inside the image as the
                # BoxList (2 decimals) will hold it
                x0, y0, x1, y1 = (round(float(v), 2) for v in b[k])
                w, h = round(x1 - x0, 2), round(y1 - y0, 2)
                if w > 0 and h > 0:
                    boxes.append((x0, y0, w, h, self.labels_[c[k]], float(s[k])))
            out.append(boxes)  # top-K order: already by descending score
        return out

    def _peaks(self, images) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every image's candidate boxes (see `_decode`), in batches of about PREDICT_PIXELS."""
        import torch

        if not hasattr(self, "net_"):  # sklearn's check_is_fitted wants a `fit` method
            raise NotFittedError("this BoxDetector is not fitted yet; call fit_boxes(images, box_lists) "
                                 "first")
        images = self._check_images(images)
        if images.shape[3] != self.n_channels_:
            raise ValueError(f"images have {images.shape[3]} channels; the detector was fitted "
                             f"on {self.n_channels_}")
        height, width = images.shape[1:3]
        scale = _scale((height, width), self.max_side)  # as fitted: images of one size
        out = ([], [], [])
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            batch = max(1, PREDICT_PIXELS // (height * width))
            with torch.inference_mode():
                for start in range(0, len(images), batch):
                    part = images[start:start + batch]
                    part = _resized(part, scale) if scale < 1 else part
                    x = torch.from_numpy(self._prepare(part)).to(self.device_)
                    scores, classes, corners = _decode(self.net_(x), self.max_boxes, *part.shape[1:3])
                    if scale < 1:  # back to the image's own pixels
                        limit = torch.tensor([width, height, width, height], dtype=corners.dtype)
                        corners = torch.minimum(corners / scale, limit)
                    for part_out, value in zip(out, (scores, classes, corners)):
                        part_out.append(value.cpu().numpy())
        finally:
            torch.set_num_threads(threads)
        if not out[0]:
            k = self.max_boxes
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64), np.zeros((0, k, 4), np.float32)
        return tuple(np.concatenate(part) for part in out)

    # -- inputs -----------------------------------------------------------------------------
    def _check_images(self, images) -> np.ndarray:
        """Images as float32 (n, H, W, C), finite."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or min(images.shape[1:3], default=0) < 1:
            raise ValueError(f"expected images (n, H, W) or (n, H, W, C); got shape {images.shape}")
        if not np.isfinite(images).all():
            raise ValueError("images hold NaN or infinite pixels; expected finite numbers")
        return images

    def _prepare(self, images: np.ndarray) -> np.ndarray:
        """Standardised (n, C, H', W') with H', W' padded (bottom, right) up to a multiple of
        the stride with the mean (0 once standardised), so any image size fits the grid."""
        x = (images - self.mean_) / self.std_
        n, h, w, c = x.shape
        ph, pw = -h % STRIDE, -w % STRIDE
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, ph), (0, pw), (0, 0)))
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def _scale(size, max_side: int) -> float:
    """What an image of `size` (height, width) is scaled by before the network: 1, or down to
    `max_side` pixels on its longer side."""
    longest = max(size)
    return 1.0 if not max_side or longest <= max_side else max_side / longest


def _resized(images: np.ndarray, scale: float) -> np.ndarray:
    """(n, H, W, C) images averaged down by `scale` (area interpolation: every pixel counts)."""
    import torch
    import torch.nn.functional as F

    n, h, w, c = images.shape
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return F.interpolate(x, size=size, mode="area").numpy().transpose(0, 2, 3, 1)


def _decode(maps, max_boxes: int, height: int, width: int):
    """Candidate boxes from a batch of network maps: scores (b, K), class indices (b, K) and
    corners x0, y0, x1, y1 clipped to the image (b, K, 4), K = max_boxes or fewer, by
    descending score."""
    import torch
    import torch.nn.functional as F

    heat = torch.sigmoid(maps[:, 0])
    heat = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)  # local peaks only
    gh, gw = heat.shape[1:]
    k = min(max_boxes, gh * gw)
    centre, cell = heat.flatten(1).topk(k)
    at = maps.flatten(2).gather(2, cell[:, None].expand(-1, maps.shape[1], -1))  # (b, 5 + C, k)
    # each peak is a box of its likeliest GUESSES classes, scored centre x class probability
    p, cls = torch.softmax(at[:, 5:], dim=1).topk(min(GUESSES, maps.shape[1] - 5), dim=1)
    score, order = (centre[:, None] * p).flatten(1).topk(k)  # the best k of guesses x peaks
    cls, peak = cls.flatten(1).gather(1, order), order % k
    cell, at = cell.gather(1, peak), at[:, 1:5].gather(2, peak[:, None].expand(-1, 4, -1))
    half_w, half_h = (torch.exp(at[:, :2].clamp(max=8)) * (STRIDE / 2)).unbind(1)
    cx = ((cell % gw).float() + at[:, 2]) * STRIDE
    cy = ((cell // gw).float() + at[:, 3]) * STRIDE
    corners = torch.stack([(cx - half_w).clamp(0, width), (cy - half_h).clamp(0, height),
                           (cx + half_w).clamp(0, width), (cy + half_h).clamp(0, height)], -1)
    return score, cls, corners


def _uncertainty(scores: np.ndarray) -> np.ndarray:
    """(n, 2) least confident box and box entropy from candidate scores (n, K)."""
    scores = scores.astype(np.float64)
    candidate = scores >= CANDIDATE_SCORE
    least = np.where(candidate, 1 - np.abs(2 * scores - 1), 0.0).max(axis=1, initial=0.0)
    s = np.clip(scores, 1e-12, 1 - 1e-12)
    entropy = np.where(candidate, -(s * np.log(s) + (1 - s) * np.log(1 - s)), 0.0).sum(axis=1)
    return np.stack([least, entropy], axis=1)


def _check_box(box, index: dict) -> None:
    if len(box) < 5:
        raise ValueError(f"a box needs (x, y, w, h, label); got {tuple(box)!r}")
    x, y, w, h, label = box[:5]
    numbers_ok = all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                     for v in (x, y, w, h))
    if not numbers_ok or w <= 0 or h <= 0:
        raise ValueError(f"box {tuple(box)!r} needs finite numbers and w, h > 0")
    if str(label) not in index:
        raise ValueError(f"box {tuple(box)!r} has label {label!r}, not among the detector's labels "
                         f"{list(index)}")
