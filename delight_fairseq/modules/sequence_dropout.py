"""Dropout with one mask per sequence, shared by all its time steps (variational dropout; Gal &
Ghahramani 2016). DeLighT's and DeFINE's embeddings drop the ``B x T x E`` lookup so (``time_dim=1``);
AWD-LSTM's locked dropout (Merity et al., ICLR 2018, Sec. 4.2) drops ``T x B x C`` activations so
(``time_dim=0``)."""
import torch
import torch.nn as nn

from .norm_act import check_dropout


def sequence_dropout(x: torch.Tensor, p: float, training: bool, time_dim: int = 1) -> torch.Tensor:
    """``x`` with one mask drawn per sequence and feature, the same at every step along ``time_dim``
    (``B x T x C``: 1, the default; ``T x B x C``: 0); kept units scaled by ``1 / (1 - p)``."""
    if not training or p == 0.0:
        return x
    shape = list(x.shape)
    shape[time_dim] = 1  # e.g. B x 1 x C
    mask = x.new_empty(shape).bernoulli_(1.0 - p) / (1.0 - p)
    return x * mask


class SequenceDropout(nn.Module):
    """``sequence_dropout`` as a module (``B x T x C`` in and out by default)."""

    def __init__(self, p: float, time_dim: int = 1, what: str = "dropout"):
        super().__init__()
        self.p = check_dropout(p, what)
        self.time_dim = time_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sequence_dropout(x, self.p, self.training, self.time_dim)

    def extra_repr(self) -> str:
        return f"p={self.p}"
