"""The plugin's models built outside fairseq's command line, for scripts and tests: from
an ``--arch`` name and dictionary sizes, or from a checkpoint (its config and the dictionary
sizes its tables imply, without the data)."""
from argparse import Namespace
from typing import Dict, Optional

from ..checkpoints.safe_load import load_checkpoint
from ..modules.errors import ConfigError


PLUGIN_MODELS = ("delight_transformer", "define_transformer", "define_lm", "define_lstm_lm", "define_transformer_xl")


def dictionary_of_size(size: int, prefix: str = "w"):
    """A fairseq dictionary of exactly ``size`` entries (its 4 specials included), the
    words ``{prefix}0``, ``{prefix}1``, ..."""
    from fairseq.data import Dictionary

    d = Dictionary()
    for i in range(size - len(d)):
        d.add_symbol(f"{prefix}{i}")
    assert len(d) == size
    return d


def preset_config(arch: str, overrides: Optional[Dict] = None):
    """The config dataclass of one of the plugin's models that ``--arch ARCH`` and the
    ``overrides`` give, as fairseq's command line builds it."""
    from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_NAME_REGISTRY, MODEL_DATACLASS_REGISTRY

    model = ARCH_MODEL_NAME_REGISTRY.get(arch)
    if model not in PLUGIN_MODELS:
        raise ConfigError(f"{arch!r} is not an architecture of {', '.join(PLUGIN_MODELS)}")
    cfg = MODEL_DATACLASS_REGISTRY[model]()
    unknown = [k for k in (overrides or {}) if not hasattr(cfg, k)]
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)} for {arch}")
    args = Namespace(**(overrides or {}))
    ARCH_CONFIG_REGISTRY[arch](args)
    for k, v in vars(args).items():
        if hasattr(cfg, k):  # arch functions also set fairseq's legacy fields
            setattr(cfg, k, v)
    return cfg


def build_from_arch(arch: str, src_vocab: int, tgt_vocab: Optional[int] = None, overrides: Optional[Dict] = None):
    """A ``delight_transformer`` preset with dictionaries of the given sizes."""
    from types import SimpleNamespace

    from fairseq.models import ARCH_MODEL_REGISTRY

    from .delight_transformer import DeLighTTransformerModel

    if ARCH_MODEL_REGISTRY.get(arch) is not DeLighTTransformerModel:
        raise ConfigError(f"{arch!r} is not a delight_transformer architecture")
    cfg = preset_config(arch, overrides)
    src = dictionary_of_size(src_vocab)
    tgt = src if (tgt_vocab is None or cfg.share_all_embeddings) else dictionary_of_size(tgt_vocab)
    return DeLighTTransformerModel.build_model(cfg, SimpleNamespace(source_dictionary=src, target_dictionary=tgt))


def build_from_checkpoint(path: str):
    """The model of a checkpoint written by fairseq-train (any of the plugin's models),
    built from its config and the dictionary sizes its tables imply, without
    the data; its weights loaded."""
    from types import SimpleNamespace

    from fairseq.models import ARCH_MODEL_REGISTRY
    from omegaconf import OmegaConf

    state = load_checkpoint(path)
    if not state.get("cfg") or not isinstance(state.get("model"), dict):
        raise ConfigError(f"{path} has no fairseq 0.12 config and model (a checkpoint of the authors' fork? convert "
                          "it first with scripts/convert_authors_checkpoint.py)")
    if isinstance(state["cfg"].get("model"), Namespace):  # a model without a dataclass (define_transformer) via the CLI
        state["cfg"]["model"] = vars(state["cfg"]["model"])
    cfg = OmegaConf.create(state["cfg"])
    weights = state["model"]
    enc = next((k for k in ("encoder.embed_tokens.table.weight", "encoder.embed_tokens.weight") if k in weights), None)
    if enc is not None:  # translation
        src = dictionary_of_size(weights[enc].size(0))
        tgt = src if cfg.model.get("share_all_embeddings") else dictionary_of_size(
            weights[enc.replace("encoder.", "decoder.", 1)].size(0), "t")
    else:  # language model: a lookup table, or the bands of an adaptive input
        bands = [v for k, v in weights.items() if k.startswith("decoder.embed_tokens.") and ".embeddings." in k
                 and k.endswith(".0.weight")]
        table = next((weights[k] for k in ("decoder.embed_tokens.table.weight", "decoder.embed_tokens.weight",
                                           "decoder.model.crit.out_layers.0.weight")  # Transformer-XL's tied softmax
                      if k in weights), None)
        if not bands and table is None:
            raise ConfigError(f"{path}: no lookup table to size the dictionary by")
        src = tgt = dictionary_of_size(sum(b.size(0) for b in bands) if bands else table.size(0))
    model = ARCH_MODEL_REGISTRY[cfg.model._name].build_model(
        cfg.model, SimpleNamespace(source_dictionary=src, target_dictionary=tgt))
    model.load_state_dict(weights)
    return model
