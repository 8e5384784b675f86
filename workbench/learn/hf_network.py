"""A Hugging Face network around weights already in memory, without drawing random ones first.

`from_config` builds a network by initialising every layer at random: 2.1 s at BERT-base on
2 cores, more than half of loading a spans bundle, for weights the bundle's then replace.
Here the network is built on the meta device (nothing allocated, nothing drawn) and takes
the bundle's tensors as its own (`load_state_dict(assign=True)`). What the weights do not
hold, the non-persistent buffers (a BERT's position ids), is made the way transformers'
`from_pretrained` makes it: each loaded tensor is marked initialised, the buffers get memory,
and the network's own `initialize_weights` fills what is left unmarked. transformers before
5 has no such marks: there, and whenever a step of this is missing, the network is built
with random weights as before (`on_cpu`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

__all__ = ["with_weights"]

log = logging.getLogger(__name__)

SAMPLED = 1009  # every SAMPLED-th element of each weight is compared after the buffers are made


def with_weights(on_meta, state: Mapping, on_cpu: Callable[[], object]):
    """The network `on_meta` (built on the meta device) holding `state`'s tensors (names as in
    its state dict, all of them) as its weights, in place; or, where this transformers cannot
    fill the rest without drawing weights, `on_cpu()` (a network built as usual) given them."""
    try:
        return _in_place(on_meta, state)
    except (AttributeError, TypeError, NotImplementedError) as e:
        log.info("building the network with random weights first (%s: %s)", type(e).__name__, e)
    network = on_cpu()
    network.load_state_dict(state, strict=True, assign=True)
    return network


def _in_place(network, state: Mapping):
    import torch

    if not hasattr(network, "named_non_persistent_buffers") or not hasattr(network, "initialize_weights"):
        raise AttributeError("this transformers cannot initialise only what the weights do not hold")
    buffers = [name for name, _ in network.named_non_persistent_buffers()]
    network.load_state_dict(state, strict=True, assign=True)
    loaded = [*network.parameters(), *(b for n, b in network.named_buffers() if n not in buffers)]
    for tensor in loaded:
        tensor._is_hf_initialized = True  # what initialize_weights skips, as in from_pretrained
    for name in buffers:
        owner, _, leaf = name.rpartition(".")
        module = network.get_submodule(owner)
        module._buffers[leaf] = torch.empty_like(module._buffers[leaf], device="cpu")
    samples = {name: p.detach().reshape(-1)[::SAMPLED].clone() for name, p in network.named_parameters()}
    with torch.no_grad():
        network.initialize_weights()
    left = [n for n, t in [*network.named_parameters(), *network.named_buffers()] if t.is_meta]
    if left:
        raise NotImplementedError(f"{left[0]} was left without memory")
    for name, p in network.named_parameters():
        if not torch.equal(p.detach().reshape(-1)[::SAMPLED], samples[name]):
            # the weights were drawn over: they are the bundle's own arrays, so nothing can be
            # rebuilt from them; say so rather than tag with a network nobody trained
            raise RuntimeError(f"this transformers' initialize_weights overwrote the loaded weight {name!r}; "
                               "load the bundle with transformers 5.x")
    return network
