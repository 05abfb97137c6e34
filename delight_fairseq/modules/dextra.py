"""DExTra, the deep and light-weight expand-reduce transformation (DeLighT Sec. 3.1).

Legend: ``*`` leading dims, ``N_in`` input features, ``P`` features of the input
projection (``d_m/2`` in a DeLighT block), ``N_out`` output features, ``w_l``/``g_l``
width/groups of GLT layer ``l``.

Paper, Eq. 2-3: ``N`` GLT layers; the first ``ceil(N/2)`` expand from ``d_m`` to
``w_m * d_m``, the rest reduce to ``d_o``; layer ``l`` has
``g_l = min(2^(l-1), g_max)`` groups (mirrored in the reduction half) and every layer
after the first sees the block's input through the input mixer.

The published parameter counts come from the authors' code, which differs in details
this module follows by default (``schedule="code"``); with these rules a model's count
equals theirs to the unit:

- a dense input layer ``N_in -> P`` and a dense output layer ``(P + N_out) -> N_out``
  (each with norm, activation and dropout) around the ``N`` GLT layers; the block input
  is mixed in before every GLT layer but the first, and concatenated to the last one's
  output for the output layer;
- groups ``g_l = min(2^l, g_max)`` for ``l = 1..ceil(N/2)``, i.e. starting at 2,
  mirrored for the reduction half (the middle one repeated when ``N`` is even);
- raw widths ``floor(linspace(P, w_m * N_in, ceil(N/2)))``, mirrored the same way; layer
  ``l < N`` is rounded up to a multiple of ``max(8, g_l, g_{l+1})`` (its own groups and
  the next layer's, after mirroring, so the two halves may differ); the last GLT layer
  is ``N_out`` wide.

``schedule="paper"`` uses the paper's groups (starting at 1) with everything else the
same.
"""
import math
from dataclasses import asdict, dataclass
from typing import ContextManager, List, Optional, Tuple

import numpy as np
import torch
import torch.nn as nn

from .group_linear import GroupLinear
from .group_linear_fused import norm_act_dropout_kept_once

SCHEDULES = ("code", "paper")


def default_max_groups(embed_dim: int, base: int = 32) -> int:
    """``g_max = 2^ceil(log2(d_m // 32))`` as in the authors' code (d_m 512 -> 16, 384 -> 16)."""
    return 2 ** max(0, math.ceil(math.log2(max(embed_dim // base, 1))))


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple


def dextra_schedule(
    in_features: int,
    proj_features: int,
    out_features: int,
    depth: int,
    width_mult: float,
    max_groups: int,
    schedule: str = "code",
) -> List[Tuple[int, int]]:
    """Widths and groups of the ``depth`` GLT layers: ``[(w_l, g_l)]``, the last ``w_N = N_out``."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown DExTra schedule {schedule!r}: choose one of {SCHEDULES}")
    if depth < 1:
        raise ValueError(f"DExTra depth must be >= 1, got {depth}")
    if max_groups < 1:
        raise ValueError(f"DExTra max groups must be >= 1, got {max_groups}")
    half = math.ceil(depth / 2)
    first = 1 if schedule == "code" else 0
    groups = [min(2 ** (l + first), max_groups) for l in range(half)]
    # numpy's linspace, truncated, as the authors compute it (the float steps matter)
    raw = np.linspace(proj_features, width_mult * in_features, half).astype(np.int64).tolist()
    # mirror: N even repeats the widest layer, N odd does not
    tail = slice(None, None, -1) if depth % 2 == 0 else slice(-2, None, -1)
    groups, raw = groups + groups[tail], raw + raw[tail]
    widths = [_round_up(raw[l], max(8, groups[l], groups[l + 1])) for l in range(depth - 1)] + [out_features]
    return list(zip(widths, groups))


@dataclass(frozen=True)
class DExTraConfig:
    """A DExTra's settings, one object for the blocks and embeddings that build one
    (``DExTra.from_config``); widths come from ``N_in``/``P``/``N_out`` at build time."""

    depth: int  # N
    width_mult: float  # w_m (w_b in block b)
    max_groups: int  # g_max
    activation: str = "swish"
    norm: Optional[str] = "ln"
    dropout: float = 0.0  # after each layer
    shuffle: bool = True
    schedule: str = "code"


class DExTra(nn.Module):
    """``* x N_in -> * x N_out``: input layer, ``depth`` GLT layers with the input
    mixer before each but the first, output layer."""

    @classmethod
    def from_config(cls, in_features: int, proj_features: int, out_features: int, cfg: DExTraConfig) -> "DExTra":
        return cls(in_features, proj_features, out_features, **asdict(cfg))

    def __init__(
        self,
        in_features: int,
        proj_features: int,
        out_features: int,
        depth: int,
        width_mult: float,
        max_groups: int,
        activation: str = "swish",
        norm: Optional[str] = "ln",
        dropout: float = 0.0,
        shuffle: bool = True,
        schedule: str = "code",
    ):
        super().__init__()
        self.layout = dextra_schedule(in_features, proj_features, out_features, depth, width_mult, max_groups, schedule)
        for w, g in self.layout:
            if proj_features % g or out_features % g:
                raise ValueError(
                    f"DExTra: the projection width {proj_features} and output width {out_features} must be "
                    f"divisible by {g} groups; choose a model dim divisible by {2 * g} or lower the max "
                    f"groups ({max_groups})"
                )
        dense = dict(norm=norm, activation=activation, dropout=dropout)
        self.input_layer = GroupLinear(in_features, proj_features, 1, **dense)
        layers, prev = [], proj_features
        for i, (w, g) in enumerate(self.layout):
            n_in = prev if i == 0 else prev + proj_features
            layers.append(GroupLinear(n_in, w, g, shuffle=shuffle, **dense))
            prev = w
        self.glt_layers = nn.ModuleList(layers)
        self.output_layer = GroupLinear(prev + proj_features, out_features, 1, **dense)
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``* x N_in`` -> ``* x N_out``."""
        return self.transform(x)[0]

    def transform(self, x: torch.Tensor) -> Tuple[torch.Tensor, ContextManager]:
        """``forward(x)`` and the context to run its consumer in (``norm_act_dropout_kept_once``): each
        layer's normed and activated output is kept for backward once, not by its consumers too."""
        *lead, _ = x.shape
        y = self.input_layer(x, maps_only=True)  # R x P, before its norm and activation
        inp, kept_once = norm_act_dropout_kept_once(self.input_layer, y)  # R x P, read by every GLT layer (mixer)
        with kept_once:
            y = self.glt_layers[0](inp, maps_only=True)  # R x w_1, before its norm and activation
            for prev, layer in zip(self.glt_layers, self.glt_layers[1:]):
                # group i also sees group i of the input (input mixer); each layer applies the previous
                # one's norm, activation and dropout to its input itself (GroupLinear.forward(pre=...))
                y = layer(y, mixed=inp, pre=prev, maps_only=True)  # R x w_l
            y = self.output_layer(y, mixed=inp, pre=self.glt_layers[-1], maps_only=True)  # sees [inp, x]
        out, kept_once = norm_act_dropout_kept_once(self.output_layer, y)
        return out.reshape(*lead, self.out_features), kept_once
