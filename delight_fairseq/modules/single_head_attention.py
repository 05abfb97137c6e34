"""Single-head scaled dot-product attention (DeLighT Sec. 3.2, Eq. 5).

Legend: ``T`` query length, ``S`` key length, ``B`` batch, ``Cq``/``Ck`` query/key
input features, ``D`` projected features (``d_o = d_m/2`` in DeLighT), ``C`` output.

``Attention(K, Q, V) = softmax(Q K^T / sqrt(D)) V`` with one head: DExTra has already
learned wide representations, so DeLighT replaces multi-head attention by a single
head on ``d_o`` features, then projects back to ``d_m``. Computed with
``F.scaled_dot_product_attention``, or ``dropout_attention`` where SDPA has no fused kernel
(attention dropout on the CPU).
"""
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dropout_attention import dropout_attention
from .norm_act import check_dropout

Cache = Dict[str, torch.Tensor]


def reorder_cache(cache: Any, new_order: torch.Tensor) -> Any:
    """Select batch entries ``new_order`` (beam search) in a nested dict of caches,
    every tensor batch-first."""
    if isinstance(cache, torch.Tensor):
        return cache.index_select(0, new_order)
    return {k: reorder_cache(v, new_order) for k, v in cache.items()}


class SingleHeadAttention(nn.Module):
    """Self-attention (``kv_features is None``: one fused q/k/v projection) or
    encoder-decoder attention (separate query and key/value projections).

    ``cache`` (a dict the caller owns) enables incremental decoding: self-attention
    appends this step's keys/values to ``cache['k']``/``cache['v']`` (``B x S x D``)
    and its key padding mask, if any, to ``cache['pad']`` (``B x S``); encoder-decoder
    attention computes its keys/values once and reuses them.
    """

    def __init__(
        self,
        q_features: int,
        proj_features: int,
        out_features: int,
        kv_features: Optional[int] = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        check_dropout(dropout, "attention dropout")
        self.self_attention = kv_features is None
        self.proj_features = proj_features
        if self.self_attention:
            self.qkv_proj = nn.Linear(q_features, 3 * proj_features)
        else:
            self.q_proj = nn.Linear(q_features, proj_features)
            self.kv_proj = nn.Linear(kv_features, 2 * proj_features)
        self.out_proj = nn.Linear(proj_features, out_features)
        self.dropout = dropout
        self.reset_parameters()

    def reset_parameters(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(
        self,
        query: torch.Tensor,
        key: Optional[torch.Tensor] = None,
        key_padding_mask: Optional[torch.Tensor] = None,
        causal: bool = False,
        cache: Optional[Cache] = None,
    ) -> torch.Tensor:
        """``query``: ``T x B x Cq``; ``key``: ``S x B x Ck`` (encoder-decoder only);
        ``key_padding_mask``: ``B x S``, True at padding. Returns ``T x B x C``."""
        # the projections run in the inputs' own T x B layout and the attention on B x T views of
        # their outputs: no transposed copy of an input is made (and kept for backward)
        if self.self_attention:
            q, k, v = (t.transpose(0, 1) for t in self.qkv_proj(query).chunk(3, dim=-1))  # B x T x D each
            if cache is not None:
                prev = cache["k"].size(1) if "k" in cache else 0
                if "k" in cache:
                    k = torch.cat([cache["k"], k], dim=1)  # B x S x D
                    v = torch.cat([cache["v"], v], dim=1)
                cache["k"], cache["v"] = k, v
                if key_padding_mask is not None or "pad" in cache:
                    b, t = q.shape[:2]
                    new = key_padding_mask if key_padding_mask is not None else q.new_zeros(b, t, dtype=torch.bool)
                    old = cache.get("pad", q.new_zeros(b, prev, dtype=torch.bool))
                    key_padding_mask = cache["pad"] = torch.cat([old, new], dim=1)  # B x S
        else:
            q = self.q_proj(query).transpose(0, 1)  # B x T x D
            if cache is not None and "k" in cache:
                k, v = cache["k"], cache["v"]
            else:
                k, v = (t.transpose(0, 1) for t in self.kv_proj(key).chunk(2, dim=-1))  # B x S x D each
                if cache is not None:
                    cache["k"], cache["v"] = k, v
        t, s = q.size(1), k.size(1)
        mask = None
        if key_padding_mask is not None:
            mask = ~key_padding_mask[:, None, None]  # B x 1 x 1 x S, True = may attend
        p = self.dropout if self.training else 0.0
        # SDPA's CPU kernel has no dropout (its math path would keep more): dropout_attention
        own_kernel = p > 0 and q.device.type == "cpu"
        is_causal = causal and t > 1
        if is_causal and (mask is not None or t != s or own_kernel):
            # query i sits at absolute position i + (S - T): it sees keys j <= i + S - T
            allowed = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(s - t)
            mask = allowed if mask is None else mask & allowed
            is_causal = False
        # as one head of B x H x T x D: SDPA's fused kernels (flash / memory-efficient) take only
        # 4-D inputs; given 3-D ones it runs the math path, which materialises (and keeps) more
        q, k, v = q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1)
        if own_kernel:
            out = dropout_attention(q, k, v, mask, p)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=p)
        out = out.squeeze(1)  # B x 1 x T x D -> B x T x D
        # projected in whichever layout the kernel wrote it (CPU flash: T x B, following the query's
        # T x B projection), so that out_proj keeps the tensor the attention keeps, not a copy
        out_tb = out.transpose(0, 1)  # T x B x D
        if out_tb.is_contiguous():
            return self.out_proj(out_tb)  # T x B x C
        return self.out_proj(out).transpose(0, 1)  # B x T x C -> T x B x C
