"""DeLighT input embedding for translation (DeLighT Sec. 4.1, "Architecture").

Legend: ``B`` batch, ``T`` length, ``V`` vocabulary, ``E`` map dim (128 in the
recipes), ``C`` model dim ``d_m``.

A lookup table of width ``E`` (small, shareable between encoder, decoder and output)
scaled by ``sqrt(E)``, dropped out with one mask per sequence for all time steps,
then expanded to ``C`` by a DExTra (input projection ``C/2``, its own width
multiplier, depth and groups). Depth 0 replaces the DExTra by one Linear ``E -> C``
(or nothing when ``E == C``). Positions are added by the encoder/decoder.
"""
import math
from typing import Optional

import torch
import torch.nn as nn

from .dextra import DExTra


def sequence_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Dropout with one mask per sequence shared by all time steps (variational
    dropout). ``x``: ``B x T x C``."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.size(0), 1, x.size(2)).bernoulli_(1.0 - p) / (1.0 - p)  # B x 1 x C
    return x * mask


class DeLighTEmbedding(nn.Module):
    """Tokens ``B x T`` -> ``B x T x C``."""

    def __init__(
        self,
        table: nn.Embedding,
        embed_dim: int,
        depth: int,
        width_mult: float,
        max_groups: int,
        dropout: float = 0.0,
        activation: str = "swish",
        norm: Optional[str] = "ln",
        dextra_dropout: float = 0.0,
        shuffle: bool = True,
        schedule: str = "code",
    ):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"embedding dropout must be in [0, 1), got {dropout}")
        if depth < 0:
            raise ValueError(f"embedding DExTra depth must be >= 0, got {depth}")
        self.table = table
        map_dim = table.embedding_dim
        self.scale = math.sqrt(map_dim)
        self.dropout = dropout
        self.embedding_dim, self.padding_idx = embed_dim, table.padding_idx
        if depth > 0:
            if embed_dim % 2:
                raise ValueError(f"model dim must be even, got {embed_dim}")
            self.expand = DExTra(
                map_dim, embed_dim // 2, embed_dim, depth, width_mult, max_groups, activation=activation,
                norm=norm, dropout=dextra_dropout, shuffle=shuffle, schedule=schedule,
            )
        elif map_dim != embed_dim:
            self.expand = nn.Linear(map_dim, embed_dim)
        else:
            self.expand = nn.Identity()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.table(tokens) * self.scale  # B x T x E
        x = sequence_dropout(x, self.dropout, self.training)
        return self.expand(x)  # B x T x C
