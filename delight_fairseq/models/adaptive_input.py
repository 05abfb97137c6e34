"""The DeLighT authors' adaptive input (Baevski & Auli, 2019), as a subclass of fairseq's.

Legend: ``V`` vocabulary, ``n`` output dim, ``d_i = n / factor^i`` the width of band ``i``.
"""
import math

import torch
from fairseq.modules import AdaptiveInput


class DeLighTAdaptiveInput(AdaptiveInput):
    """fairseq's ``AdaptiveInput`` computed as the authors' fork computes it: band ``i``'s
    lookup is scaled by ``sqrt(d_i)`` before its projection ``d_i -> n`` (fairseq 0.12 does
    not scale). Their initialisation also starts every band after the first at zero (their
    constructor zeroes ``weight[padding_idx]`` after setting ``padding_idx`` to None, which
    selects the whole table); so does this one, so that a run starts where theirs did. The
    parameters keep fairseq's names, so fairseq's ``AdaptiveSoftmax`` ties to them as usual."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.band_scales = [math.sqrt(band[0].embedding_dim) for band in self.embeddings]
        with torch.no_grad():
            for band in self.embeddings[1:]:
                band[0].weight.zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``B x T`` -> ``B x T x n``."""
        out = self._float_tensor.new(tokens.shape + (self.embedding_dim,))
        lower = 0
        for i, upper in enumerate(self.cutoff):
            mask = tokens.ge(lower) & tokens.lt(upper)
            if mask.any():
                lookup, projection = self.embeddings[i]
                out[mask] = projection(lookup(tokens[mask] - lower) * self.band_scales[i])  # * x d_i -> * x n
            lower = upper
        return out
