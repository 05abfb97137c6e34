"""The one flat config of ``delight_transformer`` (the same options from the CLI,
``--arch`` presets and Hydra), its validation, and the per-block configs it implies.

Defaults follow the authors' WMT'14 En-De recipe (``../shared/DESIGN.md``); the named
presets in ``delight_transformer.py`` set only what differs.
"""
from dataclasses import dataclass, field
from typing import List, Optional

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..modules import DeLighTBlockConfig, block_scaling, default_max_groups
from ..modules.norm_act import ACTIVATIONS, NORMS

ACTIVATION_CHOICES = ChoiceEnum(sorted(ACTIVATIONS))
NORM_CHOICES = ChoiceEnum(sorted(NORMS))
SCHEDULE_CHOICES = ChoiceEnum(["code", "paper"])


@dataclass
class DeLighTTransformerConfig(FairseqDataclass):
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
    # --- embeddings (lookup of width map_dim, DExTra expansion to d_m) ---
    embed_map_dim: int = field(default=128, metadata={"help": "width of the token lookup table"})
    embed_depth: int = field(
        default=3, metadata={"help": "DExTra depth of the embedding expansion (0: one Linear map_dim -> d_m)"}
    )
    embed_width_mult: float = field(default=2.0, metadata={"help": "width multiplier of the embedding DExTra"})
    embed_max_groups: int = field(default=1, metadata={"help": "max GLT groups of the embedding DExTra"})
    share_all_embeddings: bool = field(
        default=False, metadata={"help": "one lookup table for encoder, decoder and output (needs a joined dictionary)"}
    )
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "tie the decoder's lookup table and output matrix"}
    )
    max_source_positions: int = field(default=1024, metadata={"help": "max source length"})
    max_target_positions: int = field(default=1024, metadata={"help": "max target length"})
    # --- regularisation ---
    dropout: float = field(default=0.1, metadata={"help": "dropout on embeddings and attention outputs"})
    attention_dropout: float = field(default=0.0, metadata={"help": "dropout on attention weights"})
    activation_dropout: float = field(default=0.0, metadata={"help": "dropout after the FFN activation"})
    dextra_dropout: float = field(default=0.0, metadata={"help": "dropout after each DExTra layer"})
    ffn_dropout: float = field(default=0.0, metadata={"help": "dropout on the FFN output"})
    embed_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the looked-up embeddings, one mask per sequence"}
    )
    # --- layer choices ---
    activation_fn: ACTIVATION_CHOICES = field(default="swish", metadata={"help": "activation in DExTra and FFN"})
    norm_type: NORM_CHOICES = field(default="ln", metadata={"help": "normalisation layer"})
    normalize_before: bool = field(default=False, metadata={"help": "pre-norm blocks (default post-norm)"})
    no_glt_shuffle: bool = field(default=False, metadata={"help": "no feature shuffle between GLT groups"})
    dextra_schedule: SCHEDULE_CHOICES = field(
        default="code",
        metadata={"help": "DExTra groups: 'code' (authors' code, from 2; matches the published counts) or 'paper' (Eq. 3, from 1)"},
    )


class ConfigError(ValueError):
    """An impossible option value; the message names the option and the fix. Uncaught,
    it is printed without a traceback (see ``delight_fairseq/__init__.py``)."""


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def max_groups(cfg, side: str) -> int:
    g = getattr(cfg, f"{side}_max_groups")
    return default_max_groups(getattr(cfg, f"{side}_embed_dim")) if g is None else g


def validate_config(cfg) -> None:
    """Raise ``ConfigError`` naming the option for every impossible setting, before
    anything is built."""
    errors = []
    for name in ("dropout", "attention_dropout", "activation_dropout", "dextra_dropout", "ffn_dropout", "embed_dropout"):
        p = getattr(cfg, name)
        if not 0.0 <= p < 1.0:
            errors.append(f"{_flag(name)} must be in [0, 1), got {p}")
    if cfg.activation_fn not in ACTIVATIONS:
        errors.append(f"{_flag('activation_fn')} {cfg.activation_fn!r} is unknown: choose one of {sorted(ACTIVATIONS)}")
    if cfg.norm_type not in NORMS:
        errors.append(f"{_flag('norm_type')} {cfg.norm_type!r} is unknown: choose one of {sorted(NORMS)}")
    if cfg.dextra_schedule not in ("code", "paper"):
        errors.append(f"{_flag('dextra_schedule')} {cfg.dextra_schedule!r} is unknown: choose 'code' or 'paper'")
    for side in ("encoder", "decoder"):
        dim = getattr(cfg, f"{side}_embed_dim")
        lo, hi = getattr(cfg, f"{side}_min_depth"), getattr(cfg, f"{side}_max_depth")
        if dim < 2 or dim % 2:
            errors.append(f"{_flag(side + '_embed_dim')} must be even (attention uses d_m/2), got {dim}")
        if lo < 1 or lo > hi:
            errors.append(
                f"{_flag(side + '_min_depth')} ({lo}) must be >= 1 and <= {_flag(side + '_max_depth')} ({hi})"
            )
        if getattr(cfg, f"{side}_blocks") < 1:
            errors.append(f"{_flag(side + '_blocks')} must be >= 1")
        if getattr(cfg, f"{side}_width_mult") <= 0:
            errors.append(f"{_flag(side + '_width_mult')} must be > 0")
        g = max_groups(cfg, side)
        if g < 1 or (dim // 2) % g:
            errors.append(
                f"{_flag(side + '_embed_dim')} ({dim}) / 2 must be divisible by {_flag(side + '_max_groups')} ({g}): "
                f"pick a model dim that is a multiple of {2 * max(g, 1)} or fewer groups"
            )
        r = getattr(cfg, f"{side}_ffn_reduction")
        if r < 1 or dim % r:
            errors.append(f"{_flag(side + '_ffn_reduction')} ({r}) must divide {_flag(side + '_embed_dim')} ({dim})")
        if cfg.embed_depth > 0 and (cfg.embed_max_groups < 1 or (dim // 2) % cfg.embed_max_groups or cfg.embed_map_dim % 2):
            errors.append(
                f"{_flag('embed_max_groups')} ({cfg.embed_max_groups}) must divide {_flag(side + '_embed_dim')} / 2 ({dim // 2})"
            )
    if cfg.embed_depth < 0:
        errors.append(f"{_flag('embed_depth')} must be >= 0, got {cfg.embed_depth}")
    if cfg.embed_map_dim < 1:
        errors.append(f"{_flag('embed_map_dim')} must be >= 1, got {cfg.embed_map_dim}")
    if errors:
        raise ConfigError("invalid delight_transformer config:\n  " + "\n  ".join(errors))


def block_configs(cfg, side: str) -> List[DeLighTBlockConfig]:
    """One ``DeLighTBlockConfig`` per block of the encoder or decoder (Eq. 4)."""
    p = side + "_"
    return [
        DeLighTBlockConfig(
            embed_dim=getattr(cfg, p + "embed_dim"),
            depth=depth,
            width_mult=width,
            max_groups=max_groups(cfg, side),
            ffn_reduction=getattr(cfg, p + "ffn_reduction"),
            activation=cfg.activation_fn,
            norm=cfg.norm_type,
            normalize_before=cfg.normalize_before,
            shuffle=not cfg.no_glt_shuffle,
            schedule=cfg.dextra_schedule,
            dropout=cfg.dropout,
            attention_dropout=cfg.attention_dropout,
            activation_dropout=cfg.activation_dropout,
            dextra_dropout=cfg.dextra_dropout,
            ffn_dropout=cfg.ffn_dropout,
        )
        for depth, width in block_scaling(
            getattr(cfg, p + "blocks"), getattr(cfg, p + "min_depth"), getattr(cfg, p + "max_depth"),
            getattr(cfg, p + "width_mult"),
        )
    ]
