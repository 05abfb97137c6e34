"""AWD-LSTM's regularisers (Merity et al., "Regularizing and Optimizing LSTM Language
Models", ICLR 2018, Sec. 2-4), as plain ``torch.nn`` pieces.

Legend: ``T`` length, ``B`` batch, ``C`` features, ``H`` hidden size.

- ``WeightDropLSTM``: one LSTM layer whose hidden-to-hidden matrix ``W_hh`` is dropped
  out with DropConnect (Sec. 2): one mask over the matrix per forward pass, in training
  only; the stored parameter is never changed, its gradient flows through the mask.
- ``LockedDropout``: variational dropout (Sec. 4.2): one mask per sequence, shared by all
  ``T`` time steps.
- ``word_dropout``: embedding dropout (Sec. 4.3): a word type is dropped (its vector
  zeroed) at every position it occurs in the batch, the others scaled by ``1 / (1 - p)``.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from .norm_act import check_dropout
from .sequence_dropout import SequenceDropout, sequence_dropout

State = Tuple[torch.Tensor, torch.Tensor]  # (h, c), each 1 x B x H


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``x``: ``T x B x C``; one ``1 x B x C`` mask for every time step (``sequence_dropout``)."""
    return sequence_dropout(x, p, training, time_dim=0)


class LockedDropout(SequenceDropout):
    """``locked_dropout`` as a module: ``T x B x C`` in and out."""

    def __init__(self, p: float):
        super().__init__(p, time_dim=0, what="locked dropout")


def word_dropout(x: torch.Tensor, tokens: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``x``: ``B x T x C`` embeddings of ``tokens`` (``B x T``): every occurrence of a
    dropped word type is zeroed. Over a plain lookup this equals dropping the table's rows
    (AWD-LSTM's ``embedded_dropout``); over DeFINE it drops the expanded vector."""
    if not training or p == 0.0:
        return x
    keep = x.new_empty(int(tokens.max()) + 1).bernoulli_(1.0 - p) / (1.0 - p)  # one draw per word type
    return x * keep[tokens].unsqueeze(-1)


class WeightDropLSTM(nn.Module):
    """One LSTM layer ``T x B x C -> T x B x H`` with DropConnect on ``W_hh``."""

    def __init__(self, input_size: int, hidden_size: int, weight_drop: float = 0.0):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size)
        self.weight_drop = check_dropout(weight_drop, "weight drop")

    @property
    def hidden_size(self) -> int:
        return self.lstm.hidden_size

    def forward(self, x: torch.Tensor, state: Optional[State] = None) -> Tuple[torch.Tensor, State]:
        if not self.training or self.weight_drop == 0.0:
            return self.lstm(x, state)
        w_hh = F.dropout(self.lstm.weight_hh_l0, self.weight_drop, training=True)  # 4H x H, one mask
        return functional_call(self.lstm, {"weight_hh_l0": w_hh}, (x, state))

    def extra_repr(self) -> str:
        return f"weight_drop={self.weight_drop}"
