"""DeLighT decoder with incremental (cached) decoding for beam search.

Legend: ``B`` batch, ``T`` target length, ``S`` source length, ``C`` model dim
``d_m``, ``E`` map dim, ``V`` vocabulary.

Output layer: project ``C -> E`` (without bias; none when ``C == E``), then logits
against the ``V x E`` lookup table (tied) or an output matrix of the same shape (untied).
"""
from typing import Any, Dict, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.models import FairseqIncrementalDecoder

from ..modules.norm_act import build_norm
from .builders import DeLighTDecoderLayer, build_positions, checkpointed, embedding_dropout, output_projection
from .delight_config import block_configs, embedding


class DeLighTDecoder(FairseqIncrementalDecoder):
    def __init__(self, cfg, dictionary, table: nn.Embedding, tie_output: bool):
        super().__init__(dictionary)
        self.embed_dim = cfg.decoder_embed_dim
        self.padding_idx = dictionary.pad()
        self.max_target_positions = cfg.max_target_positions
        self.embed_tokens = embedding(cfg, table, self.embed_dim)
        self.embed_dropout = embedding_dropout(cfg)
        self.embed_positions = build_positions(self.embed_dim, self.padding_idx, cfg.max_target_positions)
        self.layers = nn.ModuleList(
            checkpointed(DeLighTDecoderLayer(c, encoder_dim=cfg.encoder_embed_dim), cfg)
            for c in block_configs(cfg, "decoder")
        )
        self.layer_norm = build_norm(cfg.norm_type, self.embed_dim) if cfg.normalize_before else None
        self.output_proj = None  # C -> E, as the authors only where the widths differ
        if self.embed_dim != table.embedding_dim:
            self.output_proj = output_projection(self.embed_dim, table.embedding_dim)
        self.output_weight = None
        if not tie_output:
            self.output_weight = nn.Parameter(torch.empty(len(dictionary), table.embedding_dim))  # V x E
            nn.init.normal_(self.output_weight, mean=0.0, std=table.embedding_dim ** -0.5)

    def forward(
        self,
        prev_output_tokens: torch.Tensor,
        encoder_out: Optional[Dict[str, Any]] = None,
        incremental_state: Optional[Dict[str, Dict[str, Any]]] = None,
        features_only: bool = False,
        **unused,
    ):
        """``prev_output_tokens``: ``B x T``. Returns ``(B x T x V logits, extra)``."""
        x, extra = self.extract_features(prev_output_tokens, encoder_out, incremental_state)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens, encoder_out=None, incremental_state=None, **unused):
        positions = self.embed_positions(prev_output_tokens, incremental_state=incremental_state)  # B x T x C
        if incremental_state is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]  # only the newest token: B x 1
        x = self.embed_dropout(self.embed_tokens(prev_output_tokens) + positions)  # B x T x C
        x = x.transpose(0, 1)  # B x T x C -> T x B x C
        enc = enc_mask = None
        if encoder_out is not None and len(encoder_out["encoder_out"]) > 0:
            enc = encoder_out["encoder_out"][0]  # S x B x C_enc
            if len(encoder_out["encoder_padding_mask"]) > 0 and encoder_out["encoder_padding_mask"][0].any():
                enc_mask = encoder_out["encoder_padding_mask"][0]  # B x S
        inner_states = [x]
        kept_once = None  # each block's DExTra keeps no copy of the previous block's output (DeLighTLayer)
        for layer in self.layers:
            x, kept_once = layer(x, encoder_out=enc, encoder_padding_mask=enc_mask, incremental_state=incremental_state,
                            x_kept_once=kept_once, return_context=True)
            inner_states.append(x)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        # attention weights are not materialised (scaled_dot_product_attention)
        return x.transpose(0, 1), {"attn": [None], "inner_states": inner_states}  # B x T x C

    def output_layer(self, features: torch.Tensor) -> torch.Tensor:
        """``B x T x C -> B x T x V``."""
        weight = self.embed_tokens.table.weight if self.output_weight is None else self.output_weight
        if self.output_proj is not None:
            features = self.output_proj(features)  # B x T x E
        return F.linear(features, weight)

    def max_positions(self) -> int:
        return self.max_target_positions
