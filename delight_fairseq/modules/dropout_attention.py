"""Scaled dot-product attention with dropout on the weights, keeping for backward only what
it must (used where ``F.scaled_dot_product_attention`` has no fused kernel: dropout on the CPU).

Legend: ``B`` batch, ``H`` heads, ``T`` query length, ``S`` key length, ``D`` features.

``out = dropout(softmax(Q K^T / sqrt(D) + mask)) V`` (DeLighT Eq. 5 with the attention dropout
of the authors' models). On the CPU, SDPA computes this with dropout only on its math path,
which keeps for backward scaled copies of ``Q`` and ``K``, the weights before and after dropout
and the dropout mask in floats. Here, as the fused GPU kernels do, only ``Q``, ``K``, ``V``
(views of their projections, kept by nobody else), the log-sum-exp of each row and the dropout
mask as booleans are kept; the weights are recomputed in backward (``T x S``, cheap next to the
``D``-wide tensors the math path copies).
"""
import math
from typing import Optional

import torch


def _probabilities(q, k, mask, lse=None):
    """``softmax(Q K^T / sqrt(D) + mask)``: ``B x H x T x S`` and its log-sum-exp ``B x H x T x 1``
    (computed, or given to recompute the same weights). A row that may attend to nothing is 0."""
    scores = q @ k.transpose(-1, -2) * (1.0 / math.sqrt(q.size(-1)))  # B x H x T x S
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    if lse is None:
        lse = scores.logsumexp(-1, keepdim=True)
    probs = (scores - lse).exp()
    return probs.masked_fill(lse == float("-inf"), 0.0), lse


class _DropoutAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, mask, keep, p: float):
        probs, lse = _probabilities(q, k, mask)
        ctx.save_for_backward(q, k, v, mask, keep, lse)
        ctx.p = p
        return (probs * keep) @ v * (1.0 / (1.0 - p))  # B x H x T x D

    @staticmethod
    def backward(ctx, grad):
        q, k, v, mask, keep, lse = ctx.saved_tensors
        probs, _ = _probabilities(q, k, mask, lse)  # recomputed: B x H x T x S
        scale = 1.0 / (1.0 - ctx.p)
        grad_v = (probs * keep).transpose(-1, -2) @ grad * scale  # B x H x S x D
        grad_probs = (grad @ v.transpose(-1, -2)) * keep * scale  # B x H x T x S
        grad_scores = probs * (grad_probs - (grad_probs * probs).sum(-1, keepdim=True))  # softmax backward
        grad_scores = grad_scores * (1.0 / math.sqrt(q.size(-1)))
        return grad_scores @ k, grad_scores.transpose(-1, -2) @ q, grad_v, None, None, None


def dropout_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: Optional[torch.Tensor], p: float,
                      keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``q: B x H x T x D``, ``k, v: B x H x S x D``, ``mask``: bool, broadcastable to
    ``B x H x T x S`` (True = may attend) or None; ``p``: dropout probability, in ``(0, 1)``.
    ``keep`` (bool, ``B x H x T x S``): the weights dropout keeps, drawn here if not given.
    Returns ``B x H x T x D``."""
    if keep is None:
        b, h, t, _ = q.shape
        keep = torch.empty(b, h, t, k.size(-2), device=q.device).bernoulli_(1.0 - p).bool()
    return _DropoutAttention.apply(q, k, v, mask, keep, p)
