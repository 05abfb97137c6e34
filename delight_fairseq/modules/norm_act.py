"""Normalisation and activation layers selected by name, and the dropout check.

Shared by every DeLighT module so that one option (``norm_type``, ``activation_fn``)
means the same thing everywhere.
"""
from typing import Optional

import torch.nn as nn

ACTIVATIONS = {"swish": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU}
NORMS = {"ln": nn.LayerNorm, "rms": nn.RMSNorm}


def build_activation(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {name!r}: choose one of {sorted(ACTIVATIONS)}"
        )
    return ACTIVATIONS[name]()


def check_dropout(p: float, what: str = "dropout") -> float:
    """``p`` if it is a dropout probability in [0, 1), else ValueError naming ``what``."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{what} must be in [0, 1), got {p}")
    return p


def build_norm(name: Optional[str], dim: int) -> Optional[nn.Module]:
    """``name`` None means no normalisation."""
    if name is None:
        return None
    if name not in NORMS:
        raise ValueError(f"unknown norm type {name!r}: choose one of {sorted(NORMS)}")
    return NORMS[name](dim)
