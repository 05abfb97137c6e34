"""Parameters and multiply-accumulate operations (MACs) of a model, counted the way the
DeLighT authors count them (DESIGN.md, "MACs"):

- a Linear or group linear layer costs its number of weights per token (biases, norms and
  activations are free; an embedding lookup is free);
- attention over ``S`` keys costs ``T * S * D`` for ``T`` queries of ``D`` features;
- the decoder is counted as it generates: ``T`` incremental steps, step ``t`` attending to
  ``t`` earlier positions and to the ``S`` source positions (whose keys and values are
  projected once, ``S`` tokens' worth); each step also computes the output logits
  (``d_m -> map_dim`` then ``V`` dot products of ``map_dim``).

Counts come from forward hooks on what actually runs, so they follow the model as built.
"""
from argparse import Namespace
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn

from .errors import ConfigError
from .modules import GroupLinear, SingleHeadAttention
from .safe_load import load_checkpoint


@dataclass
class Stats:
    params: int
    embedding_params: int  # lookup tables (shared ones once)
    block_params: Dict[str, List[int]] = field(default_factory=dict)  # side -> params per block
    macs: Dict[str, int] = field(default_factory=dict)  # part -> MACs

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())


class MacCounter:
    """Forward hooks adding each Linear / GroupLinear / SingleHeadAttention call's MACs to
    the bucket named by ``self.part``."""

    def __init__(self, model: nn.Module):
        self.part = "other"
        self.macs: Dict[str, int] = defaultdict(int)
        self.handles = []
        for m in model.modules():
            if isinstance(m, (nn.Linear, GroupLinear)):
                self.handles.append(m.register_forward_hook(self._weights))
            elif isinstance(m, SingleHeadAttention):
                self.handles.append(m.register_forward_hook(self._attention, with_kwargs=True))

    def _weights(self, module, inputs, output):
        x = inputs[0]  # * x N (a GroupLinear's mixed input, if any, is a keyword)
        tokens = x.numel() // x.shape[-1]
        self.macs[self.part] += tokens * (module.weight.numel())

    def _attention(self, module, args, kwargs, output):
        query = args[0]  # T x B x C
        t, b = query.shape[:2]
        cache = kwargs.get("cache")
        if cache is not None and "k" in cache:
            s = cache["k"].size(1)
        elif module.self_attention:
            s = t
        else:
            key = args[1] if len(args) > 1 else kwargs["key"]
            s = key.size(0)
        self.macs[self.part] += b * t * s * module.proj_features

    def remove(self):
        for h in self.handles:
            h.remove()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _embedding_params(model: nn.Module) -> int:
    seen, n = set(), 0
    for m in model.modules():
        if isinstance(m, nn.Embedding) and id(m.weight) not in seen:
            seen.add(id(m.weight))
            n += m.weight.numel()
    return n


@torch.no_grad()
def translation_stats(model, src_len: int = 20, tgt_len: int = 20) -> Stats:
    """``model``: a ``delight_transformer``; one sentence of ``src_len`` source tokens
    translated into ``tgt_len`` target tokens."""
    model.eval()
    stats = Stats(
        params=count_params(model),
        embedding_params=_embedding_params(model),
        block_params={side: [count_params(l) for l in getattr(model, side).layers] for side in ("encoder", "decoder")},
    )
    counter = MacCounter(model)
    try:
        src = torch.full((1, src_len), model.encoder.dictionary.nspecial, dtype=torch.long)
        counter.part = "encoder"
        enc = model.encoder(src)
        tokens = torch.full((1, 1), model.decoder.dictionary.eos(), dtype=torch.long)
        state: dict = {}
        for _ in range(tgt_len):
            counter.part = "decoder"
            features, _ = model.decoder.extract_features(tokens, enc, incremental_state=state)
            counter.part = "output"
            model.decoder.output_layer(features)
            tokens = torch.cat([tokens, tokens[:, -1:]], dim=1)
    finally:
        counter.remove()
    # the logits are F.linear against the V x map_dim table: V * map_dim MACs per token
    table = model.decoder.embed_tokens.table.weight if model.decoder.output_weight is None else model.decoder.output_weight
    counter.macs["output"] += tgt_len * table.numel()
    stats.macs = dict(counter.macs)
    return stats


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

    from . import models  # noqa: F401  (registers the models)

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

    from .models.delight_transformer import DeLighTTransformerModel

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

    from . import models  # noqa: F401  (registers the models)

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


def format_table(name: str, stats: Stats, src_len: int, tgt_len: int) -> str:
    m = 1e6
    lines = [
        f"{name}",
        f"  parameters        {stats.params:>14,}  ({stats.params / m:.2f}M)",
        f"    embeddings      {stats.embedding_params:>14,}  (lookup tables)",
        f"    rest            {stats.params - stats.embedding_params:>14,}",
    ]
    for side, blocks in stats.block_params.items():
        lines.append(f"    {side} blocks  " + " ".join(f"{b / m:.2f}M" for b in blocks))
    lines.append(f"  MACs, source {src_len} / target {tgt_len} tokens: {stats.total_macs:,} ({stats.total_macs / 1e9:.3f}G)")
    for part, macs in stats.macs.items():
        lines.append(f"    {part:<14}  {macs:>14,}")
    return "\n".join(lines)
