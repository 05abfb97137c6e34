"""The one flat config of ``delight_transformer`` (the same options from the CLI,
``--arch`` presets and Hydra), its validation, and the block stacks and embeddings it implies.

Defaults follow the authors' WMT'14 En-De recipe (their nmt_wmt14_en2de.py); the named
presets in ``delight_transformer.py`` set only what differs.
"""
from dataclasses import dataclass, field
from typing import Optional

import torch.nn as nn

from ..modules.dextra import SCHEDULES
from ..modules.norm_act import NORMS
from .builders import BlockStack, expanded_embedding, option_flag
from .options import (
    ACTIVATION_CHOICES, NORM_CHOICES, DeFINEConfig, DExTraOptions, EmbeddingOptions, check_activation,
    check_define, check_dropouts, check_embedding, check_embedding_dropouts, raise_if,
)

SIDES = ("encoder", "decoder")


@dataclass
class DeLighTTransformerConfig(DExTraOptions, EmbeddingOptions, DeFINEConfig):
    # --- encoder (d_m, block-wise scaling of Sec. 3.3) ---
    encoder_embed_dim: int = field(default=512, metadata={"help": "encoder model dim d_m"})
    encoder_blocks: int = field(default=8, metadata={"help": "number of encoder blocks B"})
    encoder_min_depth: int = field(default=4, metadata={"help": "DExTra depth N_min of the first encoder block"})
    encoder_max_depth: int = field(default=8, metadata={"help": "DExTra depth N_max of the last encoder block"})
    encoder_width_mult: float = field(default=2.0, metadata={"help": "DExTra width multiplier w_m of the first encoder block"})
    encoder_max_groups: Optional[int] = field(
        default=None, metadata={"help": "max GLT groups g_max in encoder blocks (default 2^ceil(log2(d_m/32)))"}
    )
    encoder_ffn_reduction: int = field(default=4, metadata={"help": "light FFN reduction d_m -> d_m/r -> d_m"})
    # --- decoder ---
    decoder_embed_dim: int = field(default=512, metadata={"help": "decoder model dim d_m"})
    decoder_blocks: int = field(default=8, metadata={"help": "number of decoder blocks B"})
    decoder_min_depth: int = field(default=4, metadata={"help": "DExTra depth N_min of the first decoder block"})
    decoder_max_depth: int = field(default=8, metadata={"help": "DExTra depth N_max of the last decoder block"})
    decoder_width_mult: float = field(default=2.0, metadata={"help": "DExTra width multiplier w_m of the first decoder block"})
    decoder_max_groups: Optional[int] = field(
        default=None, metadata={"help": "max GLT groups g_max in decoder blocks (default 2^ceil(log2(d_m/32)))"}
    )
    decoder_ffn_reduction: int = field(default=4, metadata={"help": "light FFN reduction d_m -> d_m/r -> d_m"})
    # --- embeddings (lookup of width map_dim, DExTra expansion to d_m: EmbeddingOptions;
    # --define-embedding replaces the DExTra by DeFINE's expansion) ---
    embed_map_dim: int = field(default=128, metadata={"help": "width of the token lookup table"})
    share_all_embeddings: bool = field(
        default=False, metadata={"help": "one lookup table for encoder, decoder and output (needs a joined dictionary)"}
    )
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "tie the decoder's lookup table and output matrix"}
    )
    max_source_positions: int = field(default=1024, metadata={"help": "max source length"})
    max_target_positions: int = field(default=1024, metadata={"help": "max target length"})
    # --- regularisation ---
    dropout: float = field(
        default=0.1, metadata={"help": "dropout on the attention outputs (and on the embeddings unless --pos-dropout is set)"}
    )
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    # --- layer choices ---
    activation_fn: ACTIVATION_CHOICES = field(default="swish", metadata={"help": "activation in DExTra and FFN"})
    norm_type: NORM_CHOICES = field(default="ln", metadata={"help": "normalisation layer"})
    normalize_before: bool = field(default=False, metadata={"help": "pre-norm blocks (default post-norm)"})
    # --- memory (as fairseq's transformer) ---
    checkpoint_activations: bool = field(
        default=False, metadata={"help": "checkpoint activations at each block: recompute them in the backward pass "
                                         "instead of keeping them (less memory, more compute)"}
    )
    offload_activations: bool = field(
        default=False, metadata={"help": "checkpoint activations at each block and keep the checkpoints on the CPU "
                                         "(sets --checkpoint-activations)"}
    )


def stack(cfg, side: str) -> BlockStack:
    """The translation model's encoder or decoder blocks."""
    return BlockStack.of(cfg, **{attr: f"{side}_{attr}" for attr in (
        "embed_dim", "blocks", "min_depth", "max_depth", "width_mult", "max_groups", "ffn_reduction")})


def block_configs(cfg, side: str):
    """The blocks of the translation encoder or decoder."""
    return stack(cfg, side).block_configs(cfg, cfg.activation_fn, cfg.norm_type, cfg.normalize_before)


def embedding_stack(cfg) -> BlockStack:
    """The stack both sides' embedding DExTra is sized from: the decoder's, for the encoder's
    embedding too, as the authors' fork builds it (its encoder embedding reads the decoder's
    N_min, w_m and g_max), so that a shared table expands alike on both sides and every
    published parameter count holds."""
    return stack(cfg, "decoder")


def embedding(cfg, table: nn.Module, embed_dim: int) -> nn.Module:
    """The encoder's or decoder's own expansion (the authors' DExTra, or DeFINE with
    ``--define-embedding``) over a (possibly shared) table: tokens -> ``B x T x C``."""
    return expanded_embedding(cfg, table, embed_dim, embedding_stack(cfg), cfg.activation_fn, cfg.norm_type)


def validate_config(cfg) -> None:
    """Raise ``ConfigError`` naming the option for every impossible setting, before
    anything is built."""
    errors = check_dropouts(
        cfg, ("dropout", "attention_dropout", "activation_dropout", "dextra_dropout", "ffn_dropout")
    ) + check_embedding_dropouts(cfg)
    errors += check_activation(cfg, "activation_fn")
    if cfg.norm_type not in NORMS:
        errors.append(f"{option_flag('norm_type')} {cfg.norm_type!r} is unknown: choose one of {sorted(NORMS)}")
    if cfg.dextra_schedule not in SCHEDULES:
        errors.append(f"{option_flag('dextra_schedule')} {cfg.dextra_schedule!r} is unknown: choose one of {list(SCHEDULES)}")
    if cfg.embed_map_dim < 1:
        errors.append(f"{option_flag('embed_map_dim')} must be >= 1, got {cfg.embed_map_dim}")
    for side in SIDES:  # each side's blocks, and its embedding: DeFINE's over the map, or the DExTra
        dim, dim_flag = getattr(cfg, f"{side}_embed_dim"), option_flag(f"{side}_embed_dim")
        errors += stack(cfg, side).errors()
        if cfg.define_embedding:
            errors += check_define(cfg, cfg.embed_map_dim, dim, dim_flag)
        else:
            errors += check_embedding(cfg, dim, embedding_stack(cfg), dim_flag)
    raise_if(errors, "delight_transformer")


