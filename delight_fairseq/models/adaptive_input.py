"""The DeLighT authors' adaptive input (Baevski & Auli, 2019), as a subclass of fairseq's.

Legend: ``V`` vocabulary, ``n`` output dim, ``d_i = n / factor^i`` the width of band ``i``.
"""
import math
from typing import List

import torch
from fairseq import options
from fairseq.dataclass import ChoiceEnum
from fairseq.modules import AdaptiveInput

from .builders import option_flag


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


class DeFINEAdaptiveInput(AdaptiveInput):
    """fairseq's ``AdaptiveInput`` without the first band's projection when that band is
    already ``n`` wide (``d_0 = n``): what the DeFINE paper's LSTM counts imply (Table 1: the
    tied adaptive input and softmax of R2 are 9.25M over WikiText-103 with cutoffs 20000,
    40000, 200000 and factor 4; fairseq's ``n x n`` projection of the first band would make
    them 9.32M). The tails keep their projections ``d_i -> n``, which a tied adaptive softmax
    shares (``--tie-adaptive-proj``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.embeddings[0][0].embedding_dim == self.embedding_dim:
            self.embeddings[0][1] = torch.nn.Identity()

    def weights_for_band(self, band: int):
        lookup, projection = self.embeddings[band]
        return lookup.weight, getattr(projection, "weight", None)


ADAPTIVE_INPUTS = {"fairseq": AdaptiveInput, "delight": DeLighTAdaptiveInput, "define": DeFINEAdaptiveInput}
ADAPTIVE_INPUT_STYLES = ChoiceEnum(list(ADAPTIVE_INPUTS))
ADAPTIVE_INPUT_HELP = ("fairseq: fairseq's AdaptiveInput; delight: the DeLighT authors' (each band scaled by "
                       "sqrt(band dim) before its projection); define: no projection of a first band already n wide "
                       "(the DeFINE paper's LSTM counts)")


def cutoffs(value) -> List[int]:
    """``"20000,60000"`` -> ``[20000, 60000]`` (empty for None or "")."""
    return options.eval_str_list(value, type=int) if value else []


def check_adaptive(cfg, vocab_size: int) -> List[str]:
    """The adaptive input / softmax options (fairseq's names) against the dictionary and
    each other, one message per problem naming its flag."""
    errors = []
    for name in ("adaptive_input_cutoff", "adaptive_softmax_cutoff"):
        cut = cutoffs(getattr(cfg, name))
        if cut and (cut != sorted(set(cut)) or cut[0] <= 0 or cut[-1] > vocab_size or cut[:-1] and cut[-2] >= vocab_size):
            errors.append(
                f"{option_flag(name)} {','.join(map(str, cut))} does not fit the dictionary of {vocab_size} entries: "
                f"give increasing cutoffs below {vocab_size}"
            )
    if cfg.tie_adaptive_weights:
        tie = option_flag("tie_adaptive_weights")
        if not cfg.adaptive_input or not cfg.adaptive_softmax_cutoff:
            errors.append(f"{tie} needs {option_flag('adaptive_input')} and {option_flag('adaptive_softmax_cutoff')}")
        elif cutoffs(cfg.adaptive_input_cutoff) != cutoffs(cfg.adaptive_softmax_cutoff):
            errors.append(f"{tie} needs {option_flag('adaptive_input_cutoff')} == {option_flag('adaptive_softmax_cutoff')}")
        elif cfg.adaptive_input_factor != cfg.adaptive_softmax_factor:
            errors.append(f"{tie} needs {option_flag('adaptive_input_factor')} == {option_flag('adaptive_softmax_factor')}")
    return errors


def build_adaptive_input(cfg, dictionary, output_dim: int) -> AdaptiveInput:
    """``--adaptive-input-style``'s adaptive input over ``dictionary``: bands
    ``--decoder-input-dim`` wide (divided by ``--adaptive-input-factor`` band by band), each
    projected to ``output_dim``."""
    return ADAPTIVE_INPUTS[cfg.adaptive_input_style](
        len(dictionary), dictionary.pad(), cfg.decoder_input_dim, cfg.adaptive_input_factor, output_dim,
        cutoffs(cfg.adaptive_input_cutoff), getattr(cfg, "quant_noise_pq", 0.0), getattr(cfg, "quant_noise_pq_block_size", 8),
    )
