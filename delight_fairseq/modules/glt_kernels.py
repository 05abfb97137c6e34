"""Equivalent ways to compute the grouped matmul of a group linear transform, for the
benchmark that picks the default (``benchmarks/glt_kernels.py``).

Legend: ``R`` rows (tokens), ``N``/``M`` in/out features, ``G`` groups.
Each takes ``x: R x N``, ``weight: G x N/G x M/G`` and returns ``R x M`` (no bias).
"""
import torch
import torch.nn.functional as F


def glt_bmm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Batched matmul over groups: ``G x R x N/G @ G x N/G x M/G`` (what GroupLinear does)."""
    g, n, m = weight.shape
    return torch.bmm(x.reshape(-1, g, n).transpose(0, 1), weight).transpose(0, 1).reshape(-1, g * m)


def glt_einsum(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    g, n, m = weight.shape
    return torch.einsum("rgn,gnm->rgm", x.reshape(-1, g, n), weight).reshape(-1, g * m)


def glt_conv1d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A grouped 1x1 convolution over the rows."""
    g, n, m = weight.shape
    w = weight.transpose(1, 2).reshape(g * m, n, 1)  # (G*M/G) x N/G x 1
    return F.conv1d(x.unsqueeze(-1), w, groups=g).squeeze(-1)


def glt_block_diagonal(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One dense matmul against the block-diagonal N x M matrix (G times the FLOPs)."""
    return x @ torch.block_diag(*weight)


def glt_loop(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One matmul per group, concatenated."""
    g, n, m = weight.shape
    return torch.cat([xi @ wi for xi, wi in zip(x.split(n, dim=-1), weight)], dim=-1)


KERNELS = {
    "bmm": glt_bmm,
    "einsum": glt_einsum,
    "conv1d": glt_conv1d,
    "block_diagonal": glt_block_diagonal,
    "loop": glt_loop,
}
