"""Input mixer (the split-and-mix skip connection of DeFINE and DeLighT).

Legend: ``*`` leading dims, ``A`` features of the current layer's input, ``B``
features of the block's original input, ``G`` groups of the next layer.

DeFINE (Mehta et al., ICLR 2020), Sec. 3.2 / Fig. 2c and DeLighT Sec. 3.1: before GLT
layer ``l`` (``l >= 2``) with ``G`` groups, split both the block input and the layer
input into ``G`` groups and concatenate group ``i`` of one with group ``i`` of the
other, so that every group of the next layer sees its slice of the original input.
The block input comes first in each group, as in the authors' code (so that their
weights load unchanged).
"""
import torch


def mix_inputs(x: torch.Tensor, inp: torch.Tensor, groups: int) -> torch.Tensor:
    """``x``: ``* x A``, ``inp``: ``* x B`` -> ``* x (B+A)``; group ``i`` of the result
    is ``[inp_i, x_i]`` with ``B/G`` then ``A/G`` features."""
    a, b = x.shape[-1], inp.shape[-1]
    if a % groups or b % groups:
        raise ValueError(
            f"mix_inputs: both inputs' features ({a}, {b}) must be divisible by "
            f"groups ({groups})"
        )
    lead = x.shape[:-1]
    if groups == 1:
        return torch.cat([inp, x], dim=-1)
    # * x G x B/G  ++  * x G x A/G  ->  * x G x (B+A)/G
    mixed = torch.cat([inp.reshape(*lead, groups, b // groups), x.reshape(*lead, groups, a // groups)], dim=-1)
    return mixed.reshape(*lead, a + b)
