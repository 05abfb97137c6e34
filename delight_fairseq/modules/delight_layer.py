"""The DeLighT block, shared by encoder and decoder (DeLighT Sec. 3.2, Fig. 1b).

Legend: ``T`` target/query length, ``S`` source length, ``B`` batch, ``C`` model dim
``d_m``, ``D = d_m/2`` attention dim ``d_o``.

    x -> DExTra (C -> D) -> single-head self-attention (D, out C) -> dropout -> + x -> norm
      [decoder] -> single-head attention over the encoder output -> dropout -> + -> norm
      -> light FFN (C -> C/4 -> C) -> dropout -> + -> norm

Post-norm as in the authors' translation models; ``normalize_before`` moves each
norm before its sub-layer (pre-norm, the authors' language models). A norm's output is not
kept twice for backward: the norm keeps its input, and the sub-layer that reads its output
recomputes it (``recompute.recomputed``) instead of keeping its own copy.
"""
from contextlib import nullcontext
from dataclasses import dataclass
from typing import ContextManager, Dict, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dextra import DExTra, DExTraConfig
from .light_ffn import LightFFN
from .norm_act import build_norm, check_dropout
from .recompute import recomputed
from .single_head_attention import SingleHeadAttention


@dataclass
class DeLighTBlockConfig:
    """Everything one block needs; its DExTra's depth and width come from block-wise scaling."""

    embed_dim: int
    dextra: DExTraConfig
    ffn_reduction: int = 4
    activation: str = "swish"  # of the light FFN
    norm: str = "ln"
    normalize_before: bool = False
    dropout: float = 0.1  # on the attention outputs, before the residual
    attention_dropout: float = 0.0  # on the attention weights
    activation_dropout: float = 0.0  # inside the FFN, after the activation
    ffn_dropout: float = 0.0  # on the FFN output, before the residual


class DeLighTLayer(nn.Module):
    """One DeLighT block; with ``encoder_dim`` set it is a decoder block."""

    def __init__(self, cfg: DeLighTBlockConfig, encoder_dim: Optional[int] = None):
        super().__init__()
        if cfg.embed_dim % 2:
            raise ValueError(f"model dim must be even (attention uses d_m/2), got {cfg.embed_dim}")
        for name in ("dropout", "ffn_dropout"):
            check_dropout(getattr(cfg, name), name)
        c, d = cfg.embed_dim, cfg.embed_dim // 2
        self.normalize_before = cfg.normalize_before
        self.dropout, self.ffn_dropout = cfg.dropout, cfg.ffn_dropout
        self.dextra = DExTra.from_config(c, d, d, cfg.dextra)  # C -> D
        self.self_attn = SingleHeadAttention(d, d, c, dropout=cfg.attention_dropout)
        self.self_attn_norm = build_norm(cfg.norm, c)
        self.encoder_attn = self.encoder_attn_norm = None
        if encoder_dim is not None:
            self.encoder_attn = SingleHeadAttention(c, d, c, kv_features=encoder_dim, dropout=cfg.attention_dropout)
            self.encoder_attn_norm = build_norm(cfg.norm, c)
        self.ffn = LightFFN(c, cfg.ffn_reduction, cfg.activation, cfg.activation_dropout)
        self.ffn_norm = build_norm(cfg.norm, c)

    def forward(
        self,
        x: torch.Tensor,
        padding_mask: Optional[torch.Tensor] = None,
        causal: bool = False,
        encoder_out: Optional[torch.Tensor] = None,
        encoder_padding_mask: Optional[torch.Tensor] = None,
        cache: Optional[Dict[str, Dict[str, torch.Tensor]]] = None,
        x_kept_once: Optional[ContextManager] = None,
        return_context: bool = False,
    ):
        """``x``: ``T x B x C``; ``padding_mask``: ``B x T``; ``encoder_out``:
        ``S x B x C_enc``; ``encoder_padding_mask``: ``B x S``; ``cache``: per-block
        incremental state (``{'self': {...}, 'cross': {...}}``). Returns ``T x B x C`` (with
        ``return_context``, and the context in which its consumer keeps no copy of it).

        In a stack of post-norm blocks, ``x`` is the previous block's last norm's output and
        ``x_kept_once`` the context it returned with ``return_context``, in which this block's DExTra
        keeps no copy of ``x``."""
        if self.encoder_attn is not None and encoder_out is None:
            raise ValueError("a decoder block needs encoder_out")
        self_cache = cross_cache = None
        if cache is not None:
            self_cache, cross_cache = cache.setdefault("self", {}), cache.setdefault("cross", {})
        # entered once, by the first sub-layer; no other reference kept (it holds x until it is released)
        kept_once, x_kept_once = x_kept_once or nullcontext(), None
        x, kept_once = self._sublayer(x, kept_once, self.self_attn_norm, self.dropout, self._dextra_attention,
                                      key_padding_mask=padding_mask, causal=causal, cache=self_cache)
        if self.encoder_attn is not None:
            x, kept_once = self._sublayer(x, kept_once, self.encoder_attn_norm, self.dropout, self._encoder_attention,
                                          encoder_out, key_padding_mask=encoder_padding_mask, cache=cross_cache)
        x, kept_once = self._sublayer(x, kept_once, self.ffn_norm, self.ffn_dropout, self._light_ffn)
        return (x, kept_once) if return_context else x

    # the sub-layers: ``h`` (``T x B x C``) is read in ``kept_once``, the context in which its first
    # reader keeps a recipe for it rather than a copy (``recompute.recomputed``)

    def _dextra_attention(self, h: torch.Tensor, kept_once: ContextManager, **attention) -> torch.Tensor:
        """DExTra (``C -> D``), then single-head self-attention (``D -> C``)."""
        with kept_once:
            h, kept_once = self.dextra.transform(h)  # T x B x D
        with kept_once:
            return self.self_attn(h, **attention)  # T x B x C

    def _encoder_attention(self, h: torch.Tensor, kept_once: ContextManager, encoder_out: torch.Tensor,
                           **attention) -> torch.Tensor:
        with kept_once:
            return self.encoder_attn(h, encoder_out, **attention)  # T x B x C

    def _light_ffn(self, h: torch.Tensor, kept_once: ContextManager) -> torch.Tensor:
        with kept_once:
            return self.ffn(h)  # T x B x C

    def _sublayer(self, x: torch.Tensor, kept_once: ContextManager, norm: nn.Module, p: float, sublayer,
                  *args, **kwargs) -> Tuple[torch.Tensor, ContextManager]:
        """One sub-layer with its residual connection: ``norm(x + dropout(sublayer(x)))`` (post-norm;
        ``x`` is read in ``kept_once``, its own norm's context) or ``x + dropout(sublayer(norm(x)))``
        (pre-norm). Returns the result and the context its reader runs in."""
        h, kept_once = _norm_kept_once(norm, x) if self.normalize_before else (x, kept_once)
        x = x + F.dropout(sublayer(h, kept_once, *args, **kwargs), p=p, training=self.training)
        return (x, nullcontext()) if self.normalize_before else _norm_kept_once(norm, x)


def _norm_kept_once(norm: nn.Module, x: torch.Tensor) -> Tuple[torch.Tensor, ContextManager]:
    """``norm(x)`` and the context to run its consumer in: the consumer does not keep its own
    copy of ``norm(x)`` for backward (recomputed there from ``x``, which the norm keeps)."""
    y = norm(x)
    # decided here, not inside ``recomputed``: without gradients (a checkpointed block's first pass)
    # the context must be a plain one, which the next block's recomputation in backward re-enters
    return y, (recomputed(y, lambda: norm(x)) if torch.is_grad_enabled() else nullcontext())
