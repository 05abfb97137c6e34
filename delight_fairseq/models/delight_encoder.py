"""DeLighT encoder: DExTra embedding + sinusoidal positions + block-wise scaled blocks.

Legend: ``B`` batch, ``S`` source length, ``C`` model dim ``d_m``.
"""
from typing import Dict, List, Optional

import torch
import torch.nn as nn
from fairseq.models import FairseqEncoder

from ..modules import DeLighTLayer
from ..modules.norm_act import build_norm
from .builders import build_positions, checkpointed, embedding_dropout
from .delight_config import block_configs, embedding


class DeLighTEncoder(FairseqEncoder):
    def __init__(self, cfg, dictionary, table: nn.Embedding):
        super().__init__(dictionary)
        self.embed_dim = cfg.encoder_embed_dim
        self.padding_idx = dictionary.pad()
        self.max_source_positions = cfg.max_source_positions
        self.embed_tokens = embedding(cfg, table, self.embed_dim)
        self.embed_dropout = embedding_dropout(cfg)
        self.embed_positions = build_positions(self.embed_dim, self.padding_idx, cfg.max_source_positions)
        self.layers = nn.ModuleList(checkpointed(DeLighTLayer(c), cfg) for c in block_configs(cfg, "encoder"))
        # pre-norm stacks end with a norm; post-norm blocks already end normalised
        self.layer_norm = build_norm(cfg.norm_type, self.embed_dim) if cfg.normalize_before else None

    def forward(self, src_tokens: torch.Tensor, src_lengths: Optional[torch.Tensor] = None, return_all_hiddens: bool = False):
        """``src_tokens``: ``B x S``. Returns fairseq's encoder_out dict."""
        padding_mask = src_tokens.eq(self.padding_idx)  # B x S
        x = self.embed_dropout(self.embed_tokens(src_tokens) + self.embed_positions(src_tokens))  # B x S x C
        x = x.transpose(0, 1)  # B x S x C -> S x B x C
        mask = padding_mask if padding_mask.any() else None
        states = [x] if return_all_hiddens else []
        kept_once = None  # each block's DExTra keeps no copy of the previous block's output (DeLighTLayer)
        for layer in self.layers:
            x, kept_once = layer(x, padding_mask=mask, x_kept_once=kept_once, return_context=True)
            if return_all_hiddens:
                states.append(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return {
            "encoder_out": [x],  # S x B x C
            "encoder_padding_mask": [padding_mask],  # B x S
            "encoder_embedding": [],
            "encoder_states": states,  # List[S x B x C]
            "src_tokens": [],
            "src_lengths": [] if src_lengths is None else [src_lengths],
        }

    def reorder_encoder_out(self, encoder_out: Dict[str, List[torch.Tensor]], new_order: torch.Tensor):
        """Select batch entries ``new_order`` (beam search)."""
        batch_dim = {"encoder_out": 1, "encoder_states": 1}
        return {
            key: [t.index_select(batch_dim.get(key, 0), new_order) for t in value]
            for key, value in encoder_out.items()
        }

    def max_positions(self) -> int:
        return self.max_source_positions
