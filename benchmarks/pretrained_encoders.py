"""What a pretrained encoder costs on this machine, and how honest fine-tuning's CPU estimate is
(issue 20, items 4 and 5).

timm, torchvision and open_clip cannot be installed beside this project's CPU torch, so the
network is a ResNet-shaped one built here with random weights (the cost of a forward pass
does not depend on the weights): a stem and two residual stages, 64 x 64 inputs, 64-d output.
On 2,000 jittered 28 x 28 digits (standins.py), measured in the same run:

- the pool's representation with it (`Session(representation=module)`'s build: resize to
  64 x 64, three channels, ImageNet normalisation, batched, the neighbour graph), against the
  default patch representation of the same pool;
- batched = one by one (max difference on 64 items);
- `learner="finetune"`: the estimate it warns with (one forward and backward batch times the
  planned steps) against the time the training took.

    python benchmarks/pretrained_encoders.py  ->  results/pretrained_encoders.json
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import standins  # noqa: E402
from report import machine, now, save  # noqa: E402

from workbench import Pool  # noqa: E402
from workbench.data import representation as R  # noqa: E402
from workbench.data.pretrained import pretrained  # noqa: E402
from workbench.learn.finetune import FineTune  # noqa: E402


class Residual(torch.nn.Module):
    def __init__(self, channels: int, stride: int):
        super().__init__()
        c_in = channels // stride if stride > 1 else channels
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(c_in, channels, 3, stride, 1, bias=False), torch.nn.BatchNorm2d(channels),
            torch.nn.ReLU(), torch.nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            torch.nn.BatchNorm2d(channels))
        self.skip = (torch.nn.Conv2d(c_in, channels, 1, stride, bias=False) if stride > 1
                     else torch.nn.Identity())

    def forward(self, x):
        return torch.relu(self.body(x) + self.skip(x))


def resnet_shaped() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, 2, 1, bias=False), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
        torch.nn.Sequential(Residual(32, 1), Residual(32, 1)),
        torch.nn.Sequential(Residual(64, 2), Residual(64, 1)),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval()


def main() -> None:
    images8, y8 = standins.digits_base()
    X, y = standins.digits_28(images8, y8, 2000, seed=0)
    pool = Pool.from_arrays(X, y)
    network = resnet_shaped()
    encoder = pretrained(network, size=64)
    started = time.perf_counter()
    rep = R.build(pool, encoder=encoder)
    pretrained_s = time.perf_counter() - started
    started = time.perf_counter()
    R.build(pool)
    patches_s = time.perf_counter() - started
    one_by_one = np.concatenate([encoder.encode(X[i:i + 1]) for i in range(64)])
    batched_gap = float(np.abs(one_by_one - rep.features[:64]).max())

    steps = 20
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        started = time.perf_counter()
        model = FineTune(encoder, steps=steps, batch_size=32).fit(X[:200], y[:200])
        finetune_s = time.perf_counter() - started
    warned = [str(w.message) for w in caught if "fine-tuning on the CPU" in str(w.message)]

    result = {
        "date": now(),
        "machine": machine(load_average_at_start=True, torch=torch.__version__,
                           cuda=torch.cuda.is_available()),
        "setup": "2,000 jittered 28 x 28 digits; a ResNet-shaped random network (stem, two "
                 "residual stages, 64-d), inputs resized to 64 x 64; fine-tuning: 20 steps of 32 "
                 "images from 200 labeled ones, its last residual block and a head",
        "representation_pretrained_s": round(pretrained_s, 2),
        "representation_pretrained_items_per_s": round(len(pool) / pretrained_s),
        "representation_patches_s_same_run": round(patches_s, 2),
        "ratio_pretrained_to_patches": round(pretrained_s / patches_s, 2),
        "batched_vs_one_by_one_max_abs_diff": batched_gap,
        "finetune_estimate_s": model.estimate_s_,
        "finetune_actual_s": round(finetune_s, 2),
        "finetune_estimate_to_actual": round(model.estimate_s_ / finetune_s, 2),
        "finetune_warning": warned[0] if warned else None,
    }
    save("pretrained_encoders.json", result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
