"""DeFINE: deep factorized input token embeddings (Mehta et al., ICLR 2020).

Legend: ``B`` batch, ``T`` length, ``V`` vocabulary, ``n`` map dim, ``k`` expanded
dim, ``d`` model dim, ``g_l`` groups of layer ``l``, ``N`` depth.

Map-Expand-Reduce (Sec. 3, Fig. 2): a cheap lookup ``V -> n`` (an ``nn.Embedding`` or
fairseq's ``AdaptiveInput``), a hierarchical group transform (HGT) expanding
``n -> k`` over ``N`` layers, and a Linear reducing ``k -> d``.

HGT (Sec. 3.1, Eq. 1-2): layer ``l`` has ``g_l = max(g_max / 2^(l-1), 1)`` groups (the
first layer has the most, each next one half as many); its width grows linearly from
``n`` to ``k`` (``n + (k - n) * l / N``, rounded up to a multiple of ``g_l``). The
ablations of Tables 5-6 are selectable:

- ``transform``: ``lt`` (every ``g_l = 1``), ``glt`` (every ``g_l = g_max``),
  ``glt_shuffle`` (``glt`` + feature shuffle), ``hgt`` (the hierarchy above);
- ``connection`` between the map output ``e`` and layer ``l >= 2``'s input ``h``:
  ``none`` (``h``), ``residual`` (``h`` added to the layer output; every layer is then
  ``k/2`` wide so that the shapes agree, as the paper's Table 6a), ``concat`` (``[e, h]``), ``split_mix``
  (DeFINE's: group ``i`` of ``h`` next to group ``i`` of ``e``, see ``input_mixer``);
- ``reduce``: the final ``k -> d`` Linear, or none (then ``d = k``).

Each HGT layer is a group linear transform with norm and activation.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

from .delight_embedding import MappedEmbedding
from .group_linear import GroupLinear

TRANSFORMS = ("lt", "glt", "glt_shuffle", "hgt")
CONNECTIONS = ("none", "residual", "concat", "split_mix")


def hgt_schedule(
    in_features: int, out_features: int, depth: int, max_groups: int, transform: str = "hgt", connection: str = "split_mix"
) -> List[Tuple[int, int]]:
    """``[(width w_l, groups g_l)]`` of the ``depth`` layers; the last width is ``k`` (``k/2``
    for every layer with the ``residual`` connection)."""
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown DeFINE transform {transform!r}: choose one of {TRANSFORMS}")
    if connection not in CONNECTIONS:
        raise ValueError(f"unknown DeFINE connection {connection!r}: choose one of {CONNECTIONS}")
    if depth < 1 or max_groups < 1:
        raise ValueError(f"DeFINE depth and max groups must be >= 1, got {depth} and {max_groups}")
    if in_features > out_features:
        raise ValueError(f"DeFINE expands: map dim n ({in_features}) must be <= expanded dim k ({out_features})")
    groups = {
        "lt": [1] * depth,
        "glt": [max_groups] * depth,
        "glt_shuffle": [max_groups] * depth,
        "hgt": [max(max_groups // 2**l, 1) for l in range(depth)],
    }[transform]
    if connection == "residual":
        widths = [out_features // 2] * depth
    else:
        widths = [in_features + (out_features - in_features) * (l + 1) / depth for l in range(depth)]
        widths = [int(math.ceil(w / g - 1e-9) * g) for w, g in zip(widths, groups)]
        widths[-1] = out_features
    for l, (w, g) in enumerate(zip(widths, groups)):
        if w % g or (l == 0 and in_features % g) or (connection == "split_mix" and in_features % g):
            raise ValueError(
                f"DeFINE layer {l + 1} has {g} groups: the map dim n ({in_features}) and expanded dim "
                f"k ({out_features}) must be divisible by it; change n, k or the max groups ({max_groups})"
            )
    return list(zip(widths, groups))


class HierarchicalGroupTransform(nn.Module):
    """``* x n -> * x k``."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        depth: int,
        max_groups: int,
        transform: str = "hgt",
        connection: str = "split_mix",
        activation: str = "swish",
        norm: Optional[str] = "ln",
        dropout: float = 0.0,
    ):
        super().__init__()
        self.layout = hgt_schedule(in_features, out_features, depth, max_groups, transform, connection)
        self.connection = connection
        self.out_features = self.layout[-1][0]
        layers, prev = [], in_features
        for l, (w, g) in enumerate(self.layout):
            n_in = prev + in_features if l > 0 and connection in ("concat", "split_mix") else prev
            layers.append(GroupLinear(n_in, w, g, shuffle=transform == "glt_shuffle", norm=norm, activation=activation, dropout=dropout))
            prev = w
        self.layers = nn.ModuleList(layers)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        """``e``: ``* x n`` (the map output) -> ``* x k``."""
        h = e
        for l, layer in enumerate(self.layers):
            if l == 0 or self.connection in ("none", "residual"):
                out = layer(h)
            elif self.connection == "concat":
                out = layer(torch.cat([e, h], dim=-1))  # * x (n + w_{l-1})
            else:
                out = layer(h, mixed=e)  # sees mix_inputs(h, e, groups): * x (n + w_{l-1}), interleaved
            h = out + h if self.connection == "residual" and l > 0 else out
        return h


class DeFINEEmbedding(MappedEmbedding):
    """Tokens ``B x T`` -> ``B x T x d`` (``d = k`` without reduce).

    ``table`` maps tokens to ``n`` features (``nn.Embedding`` or an adaptive input, which
    both expose ``embedding_dim`` and ``padding_idx``). The map output is scaled by
    ``sqrt(n)`` when the table is a plain embedding (as fairseq scales embeddings) and
    dropped out with one mask per sequence (``map_dropout``); ``dropout`` acts after
    each group transform layer.
    """

    def __init__(
        self,
        table: nn.Module,
        expand_dim: int,
        out_dim: Optional[int],
        depth: int,
        max_groups: int,
        transform: str = "hgt",
        connection: str = "split_mix",
        activation: str = "swish",
        norm: Optional[str] = "ln",
        dropout: float = 0.0,
        map_dropout: float = 0.0,
    ):
        super().__init__(table, map_dropout)
        n = table.embedding_dim
        self.expand = HierarchicalGroupTransform(n, expand_dim, depth, max_groups, transform, connection, activation, norm, dropout)
        self.reduce = nn.Linear(self.expand.out_features, out_dim) if out_dim is not None else None
        self.embedding_dim = out_dim if out_dim is not None else self.expand.out_features

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.lookup(tokens))  # B x T x n -> B x T x k (k/2: residual)
        return x if self.reduce is None else self.reduce(x)  # B x T x d
