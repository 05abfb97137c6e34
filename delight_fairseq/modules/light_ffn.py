"""Light-weight feed-forward network (DeLighT Sec. 3.2, "Light-weight FFN").

Legend: ``*`` leading dims, ``C`` model dim (``d_m``), ``r`` reduction factor.

Where the transformer's FFN expands ``C -> 4C -> C``, DeLighT's reduces
``C -> C/r -> C`` (``r = 4``): DExTra already did the expanding, so the FFN has
``2 C^2 / r`` weights instead of ``8 C^2``, 16x fewer.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .norm_act import build_activation, check_dropout
from .recompute import recomputed


class LightFFN(nn.Module):
    def __init__(self, embed_dim: int, reduction: int = 4, activation: str = "swish", activation_dropout: float = 0.0):
        super().__init__()
        if reduction < 1 or embed_dim % reduction:
            raise ValueError(
                f"FFN reduction factor ({reduction}) must be >= 1 and divide the model dim ({embed_dim})"
            )
        check_dropout(activation_dropout, "activation dropout")
        self.fc1 = nn.Linear(embed_dim, embed_dim // reduction)
        self.act = build_activation(activation)
        self.fc2 = nn.Linear(embed_dim // reduction, embed_dim)
        self.activation_dropout = activation_dropout
        for fc in (self.fc1, self.fc2):  # as the authors: Xavier-uniform weights, zero biases
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x``: ``* x C`` -> ``* x C``."""
        z = self.fc1(x)  # * x C/r
        a = self.act(z)
        if self.training and self.activation_dropout > 0:
            return self.fc2(F.dropout(a, p=self.activation_dropout))
        if isinstance(self.act, nn.ReLU):  # keeps its output for backward, the tensor fc2 keeps
            return self.fc2(a)
        with recomputed(a, lambda: self.act(z)):  # swish / GELU keep their input: fc2 recomputes a from it
            return self.fc2(a)
