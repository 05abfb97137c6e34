"""The builders both models share: the block stack (options, validator, per-block configs),
the embeddings over a lookup table, positions, and the fairseq decoder layer that carries a
DeLighT block's incremental state. ``delight_transformer`` and ``define_lm`` build their
blocks and embeddings only through these.

Legend: ``B`` batch, ``T`` length, ``C`` model dim ``d_m``, ``E`` map dim.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import torch.nn as nn
from fairseq.incremental_decoding_utils import with_incremental_state
from fairseq.modules import SinusoidalPositionalEmbedding
from fairseq.modules.checkpoint_activations import checkpoint_wrapper
from fairseq.utils import safe_getattr

from ..modules import (
    DeFINEEmbedding, DeLighTBlockConfig, DeLighTEmbedding, DeLighTLayer, DExTraConfig, SequenceDropout, block_scaling,
    default_max_groups,
)
from ..modules.errors import ConfigError
from ..modules.delight_embedding import MappedEmbedding
from ..modules.single_head_attention import reorder_cache


def preset_arch(values: Dict[str, object], then=None):
    """An ``--arch`` function for a named preset: each of ``values`` unless given on the
    command line, then ``then(args)`` (fairseq's defaults for the rest), if given."""

    def arch(args):
        for key, value in values.items():
            setattr(args, key, safe_getattr(args, key, value))
        if then is not None:
            then(args)

    return arch


def option_flag(name: str) -> str:
    """The command-line flag of a config field: ``encoder_min_depth`` -> ``--encoder-min-depth``."""
    return "--" + name.replace("_", "-")


@dataclass
class BlockStack:
    """One stack of DeLighT blocks as a model's options give it (block-wise scaling, Eq. 4);
    ``fields`` names each option's config field, for the messages."""

    embed_dim: int
    blocks: int
    min_depth: int
    max_depth: int
    width_mult: float
    max_groups: Optional[int]  # None: 2^ceil(log2(d_m // 32))
    ffn_reduction: int
    fields: Dict[str, str]

    @property
    def groups(self) -> int:
        return default_max_groups(self.embed_dim) if self.max_groups is None else self.max_groups

    @classmethod
    def of(cls, cfg, **fields: str) -> "BlockStack":
        """The stack whose options are the ``cfg`` fields named in ``fields`` (one per attribute)."""
        return cls(**{attr: getattr(cfg, name) for attr, name in fields.items()}, fields=fields)

    def errors(self) -> List[str]:
        """Every impossible option of the stack, each naming its flag (the one validator)."""
        f = {k: option_flag(v) for k, v in self.fields.items()}
        out = []
        if self.embed_dim < 2 or self.embed_dim % 2:
            out.append(f"{f['embed_dim']} must be even (attention uses d_m/2), got {self.embed_dim}")
        if self.blocks < 1:
            out.append(f"{f['blocks']} must be >= 1, got {self.blocks}")
        if self.min_depth < 1 or self.min_depth > self.max_depth:
            out.append(f"{f['min_depth']} ({self.min_depth}) must be >= 1 and <= {f['max_depth']} ({self.max_depth})")
        if self.width_mult <= 0:
            out.append(f"{f['width_mult']} must be > 0, got {self.width_mult}")
        if not self.embed_dim % 2 and (self.groups < 1 or (self.embed_dim // 2) % self.groups):
            out.append(f"{f['embed_dim']} ({self.embed_dim}) / 2 must be divisible by {f['max_groups']} ({self.groups}): "
                       f"pick a model dim that is a multiple of {2 * max(self.groups, 1)} or fewer groups")
        if self.ffn_reduction < 1 or self.embed_dim % self.ffn_reduction:
            out.append(f"{f['ffn_reduction']} ({self.ffn_reduction}) must divide {f['embed_dim']} ({self.embed_dim})")
        return out

    def block_configs(self, cfg, activation: str, norm: str, normalize_before: bool) -> List[DeLighTBlockConfig]:
        """One config per block, depths and widths by block-wise scaling; dropouts and DExTra
        options (``--dextra-dropout``, ``--no-glt-shuffle``, ``--dextra-schedule``) from ``cfg``."""
        return [
            DeLighTBlockConfig(
                embed_dim=self.embed_dim,
                dextra=DExTraConfig(depth, width, self.groups, activation, norm, cfg.dextra_dropout,
                                    not cfg.no_glt_shuffle, cfg.dextra_schedule),
                ffn_reduction=self.ffn_reduction, activation=activation, norm=norm, normalize_before=normalize_before,
                dropout=cfg.dropout, attention_dropout=cfg.attention_dropout,
                activation_dropout=cfg.activation_dropout, ffn_dropout=cfg.ffn_dropout,
            )
            for depth, width in block_scaling(self.blocks, self.min_depth, self.max_depth, self.width_mult)
        ]


# ----- embeddings and positions ------------------------------------------------------------

def lookup_table(dictionary, dim: int) -> nn.Embedding:
    """``V x dim`` lookup table, ``N(0, dim^-1/2)`` with a zero padding row, as fairseq's
    transformer and the authors' DeLighT."""
    table = nn.Embedding(len(dictionary), dim, padding_idx=dictionary.pad())
    nn.init.normal_(table.weight, mean=0.0, std=dim ** -0.5)
    nn.init.zeros_(table.weight[dictionary.pad()])
    return table


def embed_dextra(cfg, embed_dim: int, stack: BlockStack) -> Tuple[int, float, int]:
    """``(depth, width multiplier, max groups)`` of the embedding DExTra expanding to
    ``embed_dim``; unset ``--embed-*`` options take the authors' values: the stack's ``N_min``
    and ``w_m``, and ``g_max`` of ``embed_dim``."""
    return (
        stack.min_depth if cfg.embed_depth is None else cfg.embed_depth,
        stack.width_mult if cfg.embed_width_mult is None else cfg.embed_width_mult,
        default_max_groups(embed_dim) if cfg.embed_max_groups is None else cfg.embed_max_groups,
    )


def expanded_embedding(cfg, table: nn.Module, embed_dim: int, stack: BlockStack, activation: str,
                       norm: Optional[str] = "ln") -> nn.Module:
    """The map ``table`` (a lookup or an adaptive input) expanded to ``embed_dim``: by DeFINE
    with ``--define-embedding``, else by the authors' embedding DExTra; tokens -> ``B x T x C``."""
    if cfg.define_embedding:
        return define_embedding(cfg, table, embed_dim, activation, cfg.dextra_dropout, cfg.embed_dropout, norm)
    depth, width_mult, max_groups = embed_dextra(cfg, embed_dim, stack)
    dextra = None if depth == 0 else DExTraConfig(depth, width_mult, max_groups, activation, norm, cfg.dextra_dropout,
                                                  not cfg.no_glt_shuffle, cfg.dextra_schedule)
    return DeLighTEmbedding(table, embed_dim, dextra, dropout=cfg.embed_dropout)


def define_embedding(cfg, table: nn.Module, embed_dim: int, activation: str, dropout: float,
                     map_dropout: float = 0.0, norm: Optional[str] = "ln") -> DeFINEEmbedding:
    """DeFINE over ``table`` (``--define-*`` options of ``DeFINEConfig``): ``n -> k -> embed_dim``
    (``n -> k`` with ``--define-no-reduce``); tokens -> ``B x T x C``."""
    return DeFINEEmbedding(
        table, cfg.define_expand_dim, None if cfg.define_no_reduce else embed_dim, cfg.define_depth,
        cfg.define_max_groups, cfg.define_transform, cfg.define_connection, activation=activation,
        norm=norm, dropout=dropout, map_dropout=map_dropout,
    )


def cache_word_embeddings(model: nn.Module, cfg) -> nn.Module:
    """With ``--cache-embeddings`` (a model override at inference), every DeFINE / DExTra
    embedding of ``model`` looks words up in a table of their expanded vectors."""
    if getattr(cfg, "cache_embeddings", False):
        mapped = [m for m in model.modules() if isinstance(m, MappedEmbedding)]
        if not mapped:
            raise ConfigError("cache_embeddings: this model has no DeFINE or DExTra embedding to cache "
                              "(its word vectors are a lookup table already)")
        for m in mapped:
            m.cache_words()
    return model


def embedding_dropout(cfg) -> nn.Module:
    """Dropout on ``embeddings + positions`` (``B x T x C``): one mask per sequence with
    ``--pos-dropout`` (the authors'), else ``--dropout`` on every element."""
    return nn.Dropout(cfg.dropout) if cfg.pos_dropout is None else SequenceDropout(cfg.pos_dropout)


def output_projection(in_dim: int, out_dim: int) -> nn.Linear:
    """``in_dim -> out_dim`` before a tied output layer whose table is ``out_dim`` wide: no
    bias, Xavier-uniform, as the authors' and fairseq's ``project_out_dim``."""
    projection = nn.Linear(in_dim, out_dim, bias=False)
    nn.init.xavier_uniform_(projection.weight)
    return projection


def build_positions(embed_dim: int, padding_idx: int, max_positions: int) -> SinusoidalPositionalEmbedding:
    return SinusoidalPositionalEmbedding(embed_dim, padding_idx, init_size=max_positions + padding_idx + 1)


def checkpointed(layer: nn.Module, cfg) -> nn.Module:
    """A block wrapped for activation checkpointing with ``--checkpoint-activations`` (with
    ``--offload-activations`` its checkpoints kept on the CPU), as fairseq's transformer
    wraps each of its layers (``fairseq.modules.checkpoint_activations``); parameter names
    are unchanged."""
    offload = bool(getattr(cfg, "offload_activations", False))
    if offload or getattr(cfg, "checkpoint_activations", False):
        return checkpoint_wrapper(layer, offload_to_cpu=offload)
    return layer


# ----- incremental decoding ------------------------------------------------------------------

@with_incremental_state
class DeLighTDecoderLayer(DeLighTLayer):
    """A DeLighT block behind fairseq's decoder-layer interface, keeping its keys and values
    in fairseq's ``incremental_state`` (beam search reorders them through
    ``reorder_incremental_state``). Both decoders use it: the translation decoder (with
    ``encoder_dim``) and the language model's (fairseq's ``TransformerDecoderBase``)."""

    def forward(self, x, encoder_out=None, encoder_padding_mask=None, incremental_state=None,
                self_attn_mask=None, self_attn_padding_mask=None, x_kept_once=None, return_context=False, **unused):
        """``x``: ``T x B x C``; the block masks the future itself (``self_attn_mask`` is
        that same causal mask). Returns ``(T x B x C, None, None)`` as fairseq's layers; with
        ``return_context`` (``x_kept_once``: see ``DeLighTLayer.forward``) ``(T x B x C, context)``."""
        cache = None
        if incremental_state is not None:
            cache = self.get_incremental_state(incremental_state, "cache") or {}
        out = super().forward(x, padding_mask=self_attn_padding_mask, causal=True, encoder_out=encoder_out,
                              encoder_padding_mask=encoder_padding_mask, cache=cache, x_kept_once=x_kept_once,
                              return_context=return_context)
        if cache is not None:
            self.set_incremental_state(incremental_state, "cache", cache)
        return out if return_context else (out, None, None)

    def reorder_incremental_state(self, incremental_state, new_order):
        cache = self.get_incremental_state(incremental_state, "cache")
        if cache is not None:
            self.set_incremental_state(incremental_state, "cache", reorder_cache(cache, new_order))
