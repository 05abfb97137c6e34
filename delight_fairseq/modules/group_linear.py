"""Group linear transform (GLT) and feature shuffle.

Legend: ``*`` any leading dims (``T x B`` in a layer), ``R`` their product,
``N`` input features, ``M`` output features, ``G`` groups.

DeLighT (Mehta et al., ICLR 2021), Sec. 3.1: the input ``X in R^N`` is split into
``G`` groups ``X_1..X_G`` of ``N/G`` features; group ``i`` has its own weight
``W_i in R^{N/G x M/G}`` and bias, and the outputs ``Y_i = X_i W_i + b_i`` are
concatenated to ``Y in R^M``. Parameters: ``N*M/G + M``. ``G = 1`` is a Linear.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .norm_act import build_activation, build_norm


def feature_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``G`` groups (ShuffleNet channel shuffle): ``* x (G*K) -> * x (K*G)``.

    Output feature ``k*G + g`` is input feature ``g*K + k``.
    """
    if groups == 1:
        return x
    *lead, features = x.shape
    # * x G x K -> * x K x G -> * x (K*G)
    return x.reshape(*lead, groups, features // groups).transpose(-1, -2).reshape(*lead, features)


class GroupLinear(nn.Module):
    """``G`` independent linear maps on ``G`` slices of the features, computed as one
    batched matmul ``G x R x N/G  @  G x N/G x M/G``.

    Optional, in this order (the authors' order): feature shuffle of the ``G`` output
    groups, a norm over each group's ``M/G`` features (one norm module shared by all
    groups), activation, dropout.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        groups: int = 1,
        bias: bool = True,
        shuffle: bool = False,
        norm: Optional[str] = None,
        activation: Optional[str] = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if groups < 1 or in_features % groups or out_features % groups:
            raise ValueError(
                f"GroupLinear: in_features ({in_features}) and out_features "
                f"({out_features}) must be divisible by groups ({groups})"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"GroupLinear: dropout must be in [0, 1), got {dropout}")
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        self.shuffle = shuffle and groups > 1
        self.weight = nn.Parameter(torch.empty(groups, in_features // groups, out_features // groups))
        self.bias = nn.Parameter(torch.zeros(groups, 1, out_features // groups)) if bias else None
        self.norm = build_norm(norm, out_features // groups)
        self.act = build_activation(activation) if activation is not None else None
        self.dropout = dropout
        nn.init.xavier_uniform_(self.weight)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"groups={self.groups}, bias={self.bias is not None}, shuffle={self.shuffle}"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``* x N`` -> ``* x M``."""
        *lead, n = x.shape
        g = self.groups
        if g == 1:
            bias = None if self.bias is None else self.bias.view(-1)
            y = F.linear(x, self.weight[0].t(), bias)  # * x M
        else:
            xg = x.reshape(-1, g, n // g).transpose(0, 1)  # G x R x N/G
            if self.bias is None:
                yg = torch.bmm(xg, self.weight)
            else:
                yg = torch.baddbmm(self.bias, xg, self.weight)  # G x R x M/G
            yg = yg.transpose(0, 1)  # R x G x M/G
            if self.shuffle:
                # R x G x M/G -> R x M/G x G, re-read as G groups of M/G
                yg = yg.transpose(1, 2).reshape(-1, g, self.out_features // g)
            y = yg
        if self.norm is not None:
            y = self.norm(y.reshape(-1, g, self.out_features // g))  # per-group norm
        y = y.reshape(*lead, self.out_features)
        if self.act is not None:
            y = self.act(y)
        return F.dropout(y, p=self.dropout, training=self.training)
