"""Group linear transform (GLT) and feature shuffle (DeLighT Sec. 3.1, Eq. 1-3).

Legend: ``*`` any leading dims (``T x B`` in a layer), ``R`` their product,
``N`` input features, ``M`` output features, ``G`` groups.

DeLighT (Mehta et al., ICLR 2021), Eq. 1: the input ``X in R^N`` is split into
``G`` groups ``X_1..X_G`` of ``N/G`` features; group ``i`` has its own weight
``W_i in R^{N/G x M/G}`` and bias, and the outputs ``Y_i = X_i W_i + b_i`` are
concatenated to ``Y in R^M``. Parameters: ``N*M/G + M``. ``G = 1`` is a Linear.
Eq. 2-3 (DExTra, ``dextra.py``): every layer after the first sees the block input through the
input mixer (``mixed``: group ``i`` sees ``[B_i, X_i]``, the authors' order; DeFINE Sec. 3.2 /
Fig. 2c), and the ``G`` output groups are interleaved by the feature shuffle.

``GroupLinear.forward`` is written as these equations read. By default (``fused``) it hands the
same computation to ``group_linear_fused.py``, which never builds the mixed input and keeps less
for backward.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .group_linear_fused import fused_group_linear, fused_norm_act_dropout
from .input_mixer import mix_inputs
from .norm_act import build_activation, build_norm, check_dropout


def feature_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``G`` groups (ShuffleNet channel shuffle): ``* x (G*K) -> * x (K*G)``.

    Output feature ``k*G + g`` is input feature ``g*K + k``.
    """
    if groups == 1:
        return x
    *lead, features = x.shape
    # * x G x K -> * x K x G -> * x (K*G)
    return x.reshape(*lead, groups, features // groups).transpose(-1, -2).reshape(*lead, features)


def group_maps(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """Eq. 1: ``x: R x N`` -> ``R x M``, group ``i``'s ``N/G`` features times ``W_i`` (plus ``b_i``)."""
    g, n, k = weight.shape
    y = torch.bmm(x.reshape(-1, g, n).transpose(0, 1), weight)  # G x R x N/G @ G x N/G x K -> G x R x K
    if bias is not None:
        y = y + bias
    return y.transpose(0, 1).reshape(-1, g * k)  # R x M


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
        check_dropout(dropout, "GroupLinear: dropout")
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        self.shuffle = shuffle and groups > 1
        self.weight = nn.Parameter(torch.empty(groups, in_features // groups, out_features // groups))
        self.bias = nn.Parameter(torch.zeros(groups, 1, out_features // groups)) if bias else None
        self.norm = build_norm(norm, out_features // groups)
        self.act = build_activation(activation) if activation is not None else None
        self.dropout = dropout
        # True: compute as group_linear_fused.py does (the same, keeping less); False: as forward() reads
        self.fused = True
        # (fused only) keep only the map's output for backward and recompute the norm and activation
        # there (their inputs and outputs are not saved): less memory, the same result
        self.recompute = True
        self.reset_parameters()

    def reset_parameters(self):
        """As the authors: a dense layer (``G = 1``) is a 2-D Xavier-uniform ``N x M``
        matrix; a group layer gets torch's ``xavier_uniform_`` on the 3-D ``G x N/G x M/G``
        tensor (fan-in ``N/G * M/G``, fan-out ``M``); biases 0."""
        nn.init.xavier_uniform_(self.weight[0] if self.groups == 1 else self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"groups={self.groups}, bias={self.bias is not None}, shuffle={self.shuffle}"
        )

    def forward(self, x: torch.Tensor, mixed: Optional[torch.Tensor] = None, pre: Optional["GroupLinear"] = None,
                maps_only: bool = False) -> torch.Tensor:
        """``x``: ``* x A``, ``mixed``: ``* x B`` or None (then ``A = N``) -> ``* x M``.

        DeLighT Eq. 1-3 in order: input mixer, the ``G`` linear maps, feature shuffle, then the norm
        over each group, the activation and dropout. For chaining layers (DExTra): ``pre``: ``x`` is
        the raw map output of the layer ``pre``, whose norm, activation and dropout come first;
        ``maps_only``: stop before this layer's norm (and return ``R x M``)."""
        *lead, a = x.shape
        n = a + (0 if mixed is None else mixed.shape[-1])
        if n != self.in_features:
            raise ValueError(f"GroupLinear: expected {self.in_features} input features, got {n}")
        if self.fused:
            return fused_group_linear(self, x, mixed, pre, maps_only)  # the same, keeping less for backward
        x = x.reshape(-1, a)  # R x A
        if pre is not None:
            x = pre.norm_act_dropout(x)
        if mixed is not None:
            x = mix_inputs(x, mixed.reshape(-1, mixed.shape[-1]), self.groups)  # group i: [mixed_i, x_i], R x N
        y = group_maps(x, self.weight, self.bias)  # Eq. 1: Y_i = X_i W_i + b_i, R x M
        if self.shuffle:
            y = feature_shuffle(y, self.groups)  # output feature k*G + g is group g's feature k
        if maps_only:
            return y
        return self.norm_act_dropout(y).reshape(*lead, self.out_features)

    def norm_act_dropout(self, y: torch.Tensor) -> torch.Tensor:
        """``R x M`` -> ``R x M``: the norm over each group's ``M/G`` features, the activation and
        dropout (with ``fused``, the norm and activation are recomputed in backward)."""
        if self.fused:
            return fused_norm_act_dropout(self, y)
        return F.dropout(self.norm_act(y), p=self.dropout, training=self.training)

    def norm_act(self, y: torch.Tensor) -> torch.Tensor:
        """``norm_act_dropout`` without the dropout: a function of ``y`` alone."""
        if self.norm is not None:
            y = self.norm(y.reshape(-1, self.groups, self.out_features // self.groups))  # R x G x M/G
        y = y.reshape(-1, self.out_features)
        return y if self.act is None else self.act(y)

    def draws_dropout(self) -> bool:
        """Whether ``norm_act_dropout`` draws a dropout mask (else it can be recomputed)."""
        return self.training and self.dropout > 0

    def maps(self, x: torch.Tensor, mixed: Optional[torch.Tensor] = None, pre: Optional["GroupLinear"] = None
             ) -> torch.Tensor:
        """``forward(x, mixed, pre, maps_only=True)`` without the module's hooks: ``R x M``."""
        return self.forward(x, mixed, pre, maps_only=True)
