"""Torch's randomness as an estimator's own: one seed per fit drawn from `random_state`,
torch's global generators forked around the work that draws from them (so seeding a fit
never reseeds the notebook around it), and the device the work runs on."""

from __future__ import annotations

import numbers
from contextlib import contextmanager

import numpy as np
from sklearn.utils.validation import check_random_state


def _seed(random_state) -> int:
    """The torch seed for one fit: an int is used as is (so results stay exactly what
    they were for a given int); None or a RandomState gives a seed drawn from it."""
    rng = check_random_state(random_state)  # also rejects what is not a valid random_state
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(rng.randint(np.iinfo(np.int32).max))


@contextmanager
def _own_rng(seed: int, device):
    """Run the block with torch's global generators seeded with `seed`, and restore them
    after: the CPU generator (weight init) and, on CUDA, the training device's (dropout).

    Seeding torch globally (`torch.manual_seed`) made every fit reseed the caller's
    randomness. The fork is per process, not per thread: a caller drawing from torch on
    another thread while a background fit runs still shares the generator meanwhile."""
    import torch

    cuda = [] if device.type != "cuda" else [
        device.index if device.index is not None else torch.cuda.current_device()]
    if device.type not in ("cpu", "cuda"):  # other accelerators: fork and seed them all
        with torch.random.fork_rng(device_type=device.type):
            torch.manual_seed(seed)
            yield
        return
    with torch.random.fork_rng(devices=cuda, device_type="cuda"):
        torch.random.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield
