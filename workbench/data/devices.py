"""Which device torch runs on: "auto" is the GPU when there is one, else the CPU; any other
name ("cpu", "cuda:1", "mps") is taken as it is. One rule for encoders and learners alike."""

from __future__ import annotations


def torch_device(device: str):
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)
