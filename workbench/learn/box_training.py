"""What the box detector learns from (workbench.learn.box_detector): CenterNet's training
targets on the detector's grid, and its loss."""

from __future__ import annotations

import numpy as np

STRIDE = 8  # input pixels per grid cell
CLASS_CORE = 0.3  # cells whose heatmap target is above this learn the object's class

__all__ = ["CLASS_CORE", "STRIDE", "loss", "targets"]


def targets(box_lists, index: dict, shape) -> list[np.ndarray]:
    """Training targets on the grid of padded images of `shape` (H', W'): the Gaussian centre
    heatmap (n, gh, gw); the class of each cell near a centre and how much it counts (n, gh,
    gw: the nearest centre's Gaussian, 0 far from every object); and per object slot (n, m):
    its centre cell, log size in cells (n, m, 2), centre offset in that cell (n, m, 2) and
    whether the slot holds an object."""
    gh, gw = shape[0] // STRIDE, shape[1] // STRIDE
    n, m = len(box_lists), max(1, max(len(b) for b in box_lists))
    heat, weight = np.zeros((n, gh, gw), np.float32), np.zeros((n, gh, gw), np.float32)
    classes = np.zeros((n, gh, gw), np.int64)
    cell, mask = np.zeros((n, m), np.int64), np.zeros((n, m), np.float32)
    size, offset = np.zeros((n, m, 2), np.float32), np.zeros((n, m, 2), np.float32)
    ys, xs = np.arange(gh, dtype=np.float32)[:, None], np.arange(gw, dtype=np.float32)[None, :]
    for i, boxes in enumerate(box_lists):
        for j, box in enumerate(boxes):
            x, y, w, h = (float(v) for v in box[:4])
            cx, cy = (x + w / 2) / STRIDE, (y + h / 2) / STRIDE
            px, py = min(max(int(cx), 0), gw - 1), min(max(int(cy), 0), gh - 1)
            # sigma a sixth of the box's side, about what CenterNet's radius rule gives
            sx, sy = max(w / STRIDE / 6, 0.3), max(h / STRIDE / 6, 0.3)
            g = np.exp(-((xs - px) ** 2) / (2 * sx * sx) - ((ys - py) ** 2) / (2 * sy * sy))
            np.maximum(heat[i], g, out=heat[i])
            near = g > np.maximum(weight[i], CLASS_CORE)  # the cells nearest this object's centre
            classes[i][near], weight[i][near] = index[str(box[4])], g[near]
            cell[i, j], mask[i, j] = py * gw + px, 1.0
            size[i, j] = np.log(w / STRIDE), np.log(h / STRIDE)
            offset[i, j] = cx - px, cy - py
    return [heat, classes, weight, cell, size, offset, mask]


def loss(maps, heat, classes, weight, cell, size, offset, mask):
    """CenterNet's loss per object: the penalty-reduced focal loss on the centre heatmap, L1
    on the log size and the offset at the centre cells, and the class's cross-entropy at the
    cells near each centre, weighted by their Gaussian."""
    import torch

    pred = torch.sigmoid(maps[:, 0]).clamp(1e-4, 1 - 1e-4)
    positive = heat.eq(1).float()
    pos = -(torch.log(pred) * (1 - pred) ** 2 * positive).sum()
    neg = -(torch.log(1 - pred) * pred ** 2 * (1 - heat) ** 4 * (1 - positive)).sum()
    n_objects = mask.sum().clamp(min=1)
    at = maps.flatten(2).gather(2, cell[:, None].expand(-1, 5, -1)).transpose(1, 2)  # (b, m, 5)
    l1 = (torch.abs(at[..., 1:3] - size) + torch.abs(at[..., 3:5] - offset)).sum(-1)
    ce = torch.nn.functional.cross_entropy(maps[:, 5:], classes, reduction="none")
    return (pos + neg + (ce * weight).sum() + (l1 * mask).sum()) / n_objects
