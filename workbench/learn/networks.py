"""The built-in networks: small ensembles fused into one module.

An ensemble of M small networks ranks uncertainty far better than one network, but
training M networks one after another costs M times the Python overhead that dominates
tiny models on a CPU. Here the members are fused: convolutions use `groups=M` and the
dense layers are batched matrix products, so one optimisation step trains all members
at once. Each module maps a batch to logits shaped (batch, members, classes).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GroupedLinear(nn.Module):
    """M independent linear layers applied to (batch, M, in) at once."""

    def __init__(self, members: int, n_in: int, n_out: int):
        super().__init__()
        bound = 1 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(members, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(members, n_out).uniform_(-bound, bound))

    def forward(self, x):
        return torch.einsum("bmi,mio->bmo", x, self.weight) + self.bias


class EnsembleMLP(nn.Module):
    def __init__(self, n_features: int, n_classes: int, hidden: int, dropout: float, members: int):
        super().__init__()
        self.members = members
        # Every member reads the same input, so the first layer is one wide Linear:
        # no copy of the input per member, one matrix product for all of them.
        self.first = nn.Linear(n_features, members * hidden)
        self.rest = nn.Sequential(
            nn.ReLU(), nn.Dropout(dropout),
            GroupedLinear(members, hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            GroupedLinear(members, hidden, n_classes),
        )

    def forward(self, x):
        return self.rest(self.first(x).view(x.shape[0], self.members, -1))


class EnsembleCNN(nn.Module):
    """Two conv blocks and a dense head per member; adaptive pooling makes it work for
    any image size, from 8x8 digits up."""

    def __init__(self, channels: int, n_classes: int, hidden: int, dropout: float, members: int):
        super().__init__()
        m = members
        self.members = members
        self.features = nn.Sequential(
            nn.Conv2d(channels * m, 32 * m, 3, padding=1, groups=m), nn.ReLU(),
            nn.Conv2d(32 * m, 32 * m, 3, padding=1, groups=m), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32 * m, 64 * m, 3, padding=1, groups=m), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Dropout(dropout), GroupedLinear(m, 64 * 4, hidden), nn.ReLU(), nn.Dropout(dropout),
            GroupedLinear(m, hidden, n_classes),
        )

    def forward(self, x):
        x = x.repeat(1, self.members, 1, 1)  # every member sees the same images
        h = self.features(x)  # (batch, M*64, 2, 2), channels grouped by member
        return self.head(h.reshape(h.shape[0], self.members, -1))


class Ensemble(nn.Module):
    """Wraps user-supplied modules (batch -> logits) into the (batch, M, classes) form."""

    def __init__(self, modules):
        super().__init__()
        self.nets = nn.ModuleList(modules)

    def forward(self, x):
        return torch.stack([net(x) for net in self.nets], dim=1)
