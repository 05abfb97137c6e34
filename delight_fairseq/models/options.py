"""The options and validators every model of the plugin shares: the DeLighT block's and
embedding's options, DeFINE's, the choices they take, and the checks that turn an impossible
setting into one ``ConfigError`` naming each offending option (``raise_if``)."""
from dataclasses import dataclass, field
from typing import List, Optional

from fairseq.dataclass import ChoiceEnum, FairseqDataclass

from ..modules.define_embedding import CONNECTIONS, TRANSFORMS, hgt_schedule
from ..modules.dextra import SCHEDULES
from ..modules.errors import ConfigError
from ..modules.norm_act import ACTIVATIONS, NORMS
from .builders import BlockStack, embed_dextra, option_flag

ACTIVATION_CHOICES = ChoiceEnum(sorted(ACTIVATIONS))
NORM_CHOICES = ChoiceEnum(sorted(NORMS))
SCHEDULE_CHOICES = ChoiceEnum(list(SCHEDULES))
DEFINE_TRANSFORMS = ChoiceEnum(list(TRANSFORMS))
DEFINE_CONNECTIONS = ChoiceEnum(list(CONNECTIONS))


@dataclass
class DExTraOptions(FairseqDataclass):
    """DeLighT-block options shared by ``delight_transformer`` and ``define_lm``."""

    dextra_dropout: float = field(default=0.0, metadata={"help": "dropout after each DExTra layer"})
    ffn_dropout: float = field(default=0.0, metadata={"help": "dropout on the light FFN output"})
    no_glt_shuffle: bool = field(default=False, metadata={"help": "no feature shuffle between GLT groups"})
    dextra_schedule: SCHEDULE_CHOICES = field(
        default="code",
        metadata={"help": "DExTra groups: 'code' (authors' code, from 2; matches the published counts) or 'paper' (Eq. 3, from 1)"},
    )


@dataclass
class EmbeddingOptions(FairseqDataclass):
    """The DExTra expansion of the lookup table (DeLighT Sec. 4.1) and the dropouts
    around it, shared by both models; ``None`` takes the authors' value."""

    embed_depth: Optional[int] = field(
        default=None, metadata={"help": "DExTra depth of the embedding expansion (0: one Linear map -> d_m; "
                                        "default: N_min of the decoder's blocks, as the authors)"}
    )
    embed_width_mult: Optional[float] = field(
        default=None, metadata={"help": "width multiplier of the embedding DExTra (default: w_m of the blocks)"}
    )
    embed_max_groups: Optional[int] = field(
        default=None, metadata={"help": "max GLT groups of the embedding DExTra (default 2^ceil(log2(d_m // 32)))"}
    )
    embed_dropout: float = field(
        default=0.0, metadata={"help": "dropout on the looked-up map, one mask per sequence (the authors' --delight-emb-dropout)"}
    )
    pos_dropout: Optional[float] = field(
        default=None, metadata={"help": "dropout after adding the positions, one mask per sequence (the authors' "
                                        "--pe-dropout; default: --dropout on every element, as fairseq's transformer)"}
    )


@dataclass
class DeFINEConfig(FairseqDataclass):
    """DeFINE input embedding (map -> hierarchical group transform -> reduce)."""

    define_embedding: bool = field(default=False, metadata={"help": "use a DeFINE input embedding"})
    define_expand_dim: int = field(default=1024, metadata={"help": "DeFINE expanded dim k"})
    define_depth: int = field(default=3, metadata={"help": "DeFINE depth N (layers of the group transform)"})
    define_max_groups: int = field(default=4, metadata={"help": "DeFINE groups of the first layer g_max"})
    define_transform: DEFINE_TRANSFORMS = field(
        default="hgt", metadata={"help": "DeFINE transform: lt, glt, glt_shuffle or hgt (paper's ablation)"}
    )
    define_connection: DEFINE_CONNECTIONS = field(
        default="split_mix", metadata={"help": "DeFINE connection: none, residual, concat or split_mix (paper's ablation)"}
    )
    define_no_reduce: bool = field(
        default=False, metadata={"help": "no k -> d reduction (the model dim must then be k)"}
    )
    cache_embeddings: bool = field(
        default=False, metadata={"help": "inference only: compute every word's DeFINE (or DExTra) embedding once and "
                                         "look it up (DeFINE Sec. 3.4), e.g. fairseq-generate --model-overrides "
                                         "\"{'cache_embeddings': True}\"; refused in training"}
    )


@dataclass
class DeFINEHostOptions(DeFINEConfig):
    """DeFINE in a model without DeLighT blocks (``define_lstm_lm``, ``define_transformer``):
    the dropout and activation of its layers are its own options."""

    define_dropout: float = field(default=0.0, metadata={"help": "dropout after each DeFINE layer"})
    define_activation_fn: ACTIVATION_CHOICES = field(default="swish", metadata={"help": "activation of the DeFINE layers"})


def check_embedding(cfg, embed_dim: int, blocks: BlockStack, dim_flag: str) -> List[str]:
    """The embedding DExTra's options against the model dim it expands to."""
    depth, width, groups = embed_dextra(cfg, embed_dim, blocks)
    errors = []
    if depth < 0:
        errors.append(f"{option_flag('embed_depth')} must be >= 0, got {depth}")
    if depth > 0 and not embed_dim % 2 and (groups < 1 or (embed_dim // 2) % groups):  # odd: said by the stack
        errors.append(f"{option_flag('embed_max_groups')} ({groups}) must divide {dim_flag} / 2 ({embed_dim / 2:g})")
    if width <= 0:
        errors.append(f"{option_flag('embed_width_mult')} must be > 0, got {width}")
    return errors


def check_embedding_dropouts(cfg) -> List[str]:
    return check_dropouts(cfg, ("embed_dropout",) + (() if cfg.pos_dropout is None else ("pos_dropout",)))


def check_dropouts(cfg, names) -> List[str]:
    return [
        f"{option_flag(name)} must be in [0, 1), got {getattr(cfg, name)}"
        for name in names
        if not 0.0 <= getattr(cfg, name) < 1.0
    ]


def check_activation(cfg, name: str) -> List[str]:
    value = getattr(cfg, name)
    if value in ACTIVATIONS:
        return []
    return [f"{option_flag(name)} {value!r} is unknown: choose one of {sorted(ACTIVATIONS)}"]


def check_define(cfg, map_dim: int, model_dim: int, model_dim_flag: str) -> List[str]:
    """DeFINE options against the map dim ``n`` and model dim ``d`` they feed."""
    if not cfg.define_embedding:
        return []
    try:
        layout = hgt_schedule(map_dim, cfg.define_expand_dim, cfg.define_depth, cfg.define_max_groups,
                              cfg.define_transform, cfg.define_connection)
    except ValueError as e:
        return [f"{option_flag('define_expand_dim')}/{option_flag('define_depth')}/{option_flag('define_max_groups')}/"
                f"{option_flag('define_transform')}/{option_flag('define_connection')}: {e}"]
    width = layout[-1][0]  # k, or k/2 with the residual connection
    if cfg.define_no_reduce and width != model_dim:
        return [f"{option_flag('define_no_reduce')} feeds the {width} expanded features straight to the model: "
                f"set {model_dim_flag} {width} or drop {option_flag('define_no_reduce')}"]
    return []


def check_define_host(cfg, map_dim: int, model_dim: int, model_dim_flag: str) -> List[str]:
    """A ``DeFINEHostOptions`` model's DeFINE: its own dropout and activation, then
    ``check_define`` against the map dim ``n`` and model dim ``d``."""
    errors = check_dropouts(cfg, ("define_dropout",)) + check_activation(cfg, "define_activation_fn")
    return errors + check_define(cfg, map_dim, model_dim, model_dim_flag)


def raise_if(errors: List[str], model: str) -> None:
    if errors:
        raise ConfigError(f"invalid {model} config:\n  " + "\n  ".join(dict.fromkeys(errors)))
