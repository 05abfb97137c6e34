"""``define_lm``: decoder-only language models with DeFINE input embeddings (Mehta et
al., ICLR 2020) and/or DeLighT blocks (Mehta et al., ICLR 2021).

Everything else is fairseq's own ``transformer_lm``: the config extends
``TransformerLanguageModelConfig`` (so every transformer-LM option works: adaptive
input/softmax and their tying, positions, layerdrop, …) and the decoder is fairseq's
``TransformerDecoderBase``. Only two things change:

- the input embedding: the map is the usual lookup of width ``--decoder-input-dim``
  (``n``), or an adaptive input with ``--adaptive-input`` (fairseq's, or the DeLighT
  authors' with ``--adaptive-input-style delight``); ``--define-embedding`` expands it with
  DeFINE to ``k`` and reduces it to ``--decoder-embed-dim``, ``--delight-embedding``
  expands it with a DExTra as the DeLighT authors' language model does; tied output
  layers (``--tie-adaptive-weights``, ``--share-decoder-input-output-embed``) then project
  ``d -> n`` first, as the translation model does;
- the blocks (``--block-type delight``): ``--decoder-layers`` DeLighT blocks with
  block-wise scaling, pre-norm as in the authors' language models.

Every model is pre-norm (``decoder_normalize_before``), as fairseq's ``transformer_lm``.
"""
import re
from dataclasses import dataclass, field
from typing import Optional

import torch.nn as nn
from fairseq.dataclass import ChoiceEnum
from fairseq.models import register_model, register_model_architecture
from fairseq.models.transformer import TransformerConfig, TransformerDecoderBase
from fairseq.models.transformer_lm import TransformerLanguageModel, TransformerLanguageModelConfig, base_lm_architecture

from ..modules import SequenceDropout
from ..modules.delight_embedding import MappedEmbedding
from .adaptive_input import ADAPTIVE_INPUT_HELP, ADAPTIVE_INPUT_STYLES, build_adaptive_input, check_adaptive
from .base import PluginModel
from .builders import (
    BlockStack, DeLighTDecoderLayer, cache_word_embeddings, checkpointed, expanded_embedding, lookup_table,
    option_flag, output_projection, preset_arch,
)
from .options import (
    ACTIVATION_CHOICES, DeFINEConfig, DExTraOptions, EmbeddingOptions, check_activation, check_define,
    check_dropouts, check_embedding, check_embedding_dropouts, raise_if,
)

BLOCK_TYPES = ChoiceEnum(["transformer", "delight"])


@dataclass
class DefineLMConfig(TransformerLanguageModelConfig, DExTraOptions, EmbeddingOptions, DeFINEConfig):
    block_type: BLOCK_TYPES = field(
        default="transformer", metadata={"help": "blocks: fairseq's transformer layers or DeLighT blocks"}
    )
    delight_embedding: bool = field(
        default=False, metadata={"help": "expand the map (--decoder-input-dim wide) to --decoder-embed-dim with a "
                                         "DExTra, as the DeLighT authors' language model (--embed-* options)"}
    )
    adaptive_input_style: ADAPTIVE_INPUT_STYLES = field(default="fairseq", metadata={"help": ADAPTIVE_INPUT_HELP})
    delight_min_depth: int = field(default=4, metadata={"help": "DExTra depth N_min of the first DeLighT block"})
    delight_max_depth: int = field(default=12, metadata={"help": "DExTra depth N_max of the last DeLighT block"})
    delight_width_mult: float = field(default=2.0, metadata={"help": "DExTra width multiplier w_m of the first block"})
    delight_max_groups: Optional[int] = field(
        default=None, metadata={"help": "max GLT groups g_max (default 2^ceil(log2(d_m/32)))"}
    )
    delight_ffn_reduction: int = field(default=4, metadata={"help": "light FFN reduction d_m -> d_m/r -> d_m"})
    delight_activation_fn: ACTIVATION_CHOICES = field(
        default="swish", metadata={"help": "activation of DeLighT blocks and DeFINE layers"}
    )


def validate_lm_config(cfg, vocab_size: int) -> None:
    errors = check_dropouts(cfg, ("dropout", "attention_dropout", "activation_dropout", "dextra_dropout", "ffn_dropout"))
    errors += check_embedding_dropouts(cfg)
    if cfg.define_embedding or cfg.delight_embedding or cfg.block_type == "delight":
        errors += check_activation(cfg, "delight_activation_fn")
    errors += check_define(cfg, cfg.decoder_input_dim, cfg.decoder_embed_dim, option_flag("decoder_embed_dim"))
    if cfg.define_embedding and cfg.delight_embedding:
        errors.append(f"{option_flag('define_embedding')} and {option_flag('delight_embedding')} are two expansions of the same "
                      "map: choose one")
    if cfg.delight_embedding:
        errors += check_embedding(cfg, cfg.decoder_embed_dim, lm_stack(cfg), option_flag("decoder_embed_dim"))
    errors += check_adaptive(cfg, vocab_size)
    if cfg.block_type == "delight":
        errors += lm_stack(cfg).errors()
    raise_if(errors, "define_lm")


def lm_stack(cfg) -> BlockStack:
    """The DeLighT blocks of a ``--block-type delight`` model: ``--decoder-layers`` blocks."""
    return BlockStack.of(cfg, embed_dim="decoder_embed_dim", blocks="decoder_layers", min_depth="delight_min_depth",
                         max_depth="delight_max_depth", width_mult="delight_width_mult",
                         max_groups="delight_max_groups", ffn_reduction="delight_ffn_reduction")


def lm_block_configs(cfg):
    """The DeLighT blocks (pre-norm, block-wise scaled)."""
    return lm_stack(cfg).block_configs(cfg, cfg.delight_activation_fn, "ln", normalize_before=True)


def build_lm_embedding(cfg, dictionary) -> nn.Module:
    """Standard lookup, adaptive input, or DeFINE / DExTra over either; tokens -> ``B x T x C``."""
    n = cfg.decoder_input_dim
    expanded = cfg.define_embedding or cfg.delight_embedding
    if cfg.adaptive_input:
        table = build_adaptive_input(cfg, dictionary, n if expanded else cfg.decoder_embed_dim)
    else:
        table = lookup_table(dictionary, n)
    if expanded:
        return expanded_embedding(cfg, table, cfg.decoder_embed_dim, lm_stack(cfg), cfg.delight_activation_fn)
    return table


class DefineLMDecoder(TransformerDecoderBase):
    def __init__(self, cfg, dictionary, embed_tokens: nn.Module):
        tcfg = TransformerConfig.from_namespace(cfg)
        tcfg.decoder.normalize_before = True
        if tcfg.max_target_positions is None:
            tcfg.max_target_positions = cfg.tokens_per_sample
        expanded = isinstance(embed_tokens, MappedEmbedding)  # DeFINE or DExTra over the map
        if expanded and (cfg.tie_adaptive_weights or cfg.share_decoder_input_output_embed):
            tcfg.decoder.output_dim = embed_tokens.table.embedding_dim  # logits against the n-wide map
        self._blocks = None
        if cfg.block_type == "delight":
            self._blocks = iter(lm_block_configs(cfg))
        super().__init__(tcfg, dictionary, embed_tokens, no_encoder_attn=True)
        if expanded:
            self.embed_scale = 1.0  # the expansion scales its own map; its output is not a raw lookup
        if cfg.pos_dropout is not None:  # the authors' dropout after the positions: one mask per sequence
            self.dropout_module = SequenceDropout(cfg.pos_dropout)
        if self.project_out_dim is None and self.embed_dim != self.output_embed_dim:
            # fairseq skips this projection when tying adaptive weights; DeFINE needs it
            self.project_out_dim = output_projection(self.embed_dim, self.output_embed_dim)

    def build_decoder_layer(self, cfg, no_encoder_attn=False):
        if self._blocks is None:
            return super().build_decoder_layer(cfg, no_encoder_attn)
        return checkpointed(DeLighTDecoderLayer(next(self._blocks)), cfg)  # as fairseq wraps its own layers


@register_model("define_lm", dataclass=DefineLMConfig)
class DefineLanguageModel(PluginModel, TransformerLanguageModel):
    config_class = DefineLMConfig

    @classmethod
    def build_model(cls, cfg, task):
        cfg = cls.config(cfg)
        validate_lm_config(cfg, len(task.source_dictionary))
        embed_tokens = build_lm_embedding(cfg, task.source_dictionary)
        return cache_word_embeddings(cls(DefineLMDecoder(cfg, task.target_dictionary, embed_tokens)), cfg)

    def upgrade_names(self, state_dict):
        # before 0.1.0's builders, a DeLighT block sat one module deeper (decoder.layers.N.block.*)
        return {re.sub(r"^(decoder\.layers\.\d+\.)block\.", r"\1", k): v for k, v in state_dict.items()}


WIKITEXT103 = dict(
    adaptive_input=True, adaptive_input_cutoff="20000,60000", adaptive_input_factor=4,
    adaptive_softmax_cutoff="20000,60000", adaptive_softmax_factor=4, adaptive_softmax_dropout=0.2,
    tie_adaptive_weights=True, tie_adaptive_proj=True,
)
LM_PRESETS = {
    # DeLighT paper, WikiText-103 (99M params, 24.14 test ppl): the authors' model, as
    # `lm_wikitext_103.py --d-m 1024` builds it with their delight_transformer_lm_wiki103 arch:
    # B = N_max = 12 blocks, N 4 -> 12, w_m 2, pre-norm, no final norm; their adaptive input
    # (128 wide, factor 2, bands scaled by sqrt(dim)) expanded by a DExTra 128 -> 1024
    # (N 4, w 2, g_max 32); 1024 -> 128 before the tied adaptive softmax; dropouts 0.1.
    # 99,247,668 params with the WikiText-103 dictionary of 267,744.
    "define_lm_wiki103_delight": dict(
        adaptive_input=True, adaptive_input_style="delight", adaptive_input_cutoff="20000,60000",
        adaptive_input_factor=2, adaptive_softmax_cutoff="20000,60000", adaptive_softmax_factor=2,
        adaptive_softmax_dropout=0.1, tie_adaptive_weights=True, tie_adaptive_proj=True,
        delight_embedding=True, block_type="delight", decoder_embed_dim=1024, decoder_input_dim=128,
        decoder_output_dim=128, decoder_layers=12, delight_min_depth=4, delight_max_depth=12, delight_width_mult=2.0,
        no_decoder_final_norm=True, dropout=0.1, attention_dropout=0.1, dextra_dropout=0.1, ffn_dropout=0.1,
        activation_dropout=0.0, embed_dropout=0.1, pos_dropout=0.1,
    ),
    # DeFINE paper, WikiText-103, Transformer-XL column (n 384: 139.33M -> with DeFINE 141.25M,
    # 24.17 ppl): Transformer-XL "standard" (16 x 410-dim layers, 10 heads, FFN 2100; every
    # word mapped to n = 384 features, adaptive softmax cutoffs 20000,40000,200000) as a
    # fairseq transformer LM (no recurrence memory), with a DeFINE embedding n 384 -> k 1024 -> 410.
    "define_lm_wiki103_transformer": dict(
        WIKITEXT103, adaptive_input_cutoff="20000,40000,200000", adaptive_softmax_cutoff="20000,40000,200000",
        adaptive_input_factor=1, adaptive_softmax_factor=1, define_embedding=True, decoder_embed_dim=410,
        decoder_input_dim=384, decoder_output_dim=410, decoder_layers=16, decoder_attention_heads=10,
        decoder_ffn_embed_dim=2100, define_expand_dim=1024, define_depth=3, define_max_groups=4, dropout=0.1,
        activation_fn="relu",
    ),
    # small, for quick experiments on a CPU
    "define_lm_small": dict(
        define_embedding=True, block_type="delight", decoder_embed_dim=128, decoder_input_dim=64,
        decoder_output_dim=128, decoder_layers=4, delight_min_depth=2, delight_max_depth=4,
        define_expand_dim=256, define_depth=2, define_max_groups=2, decoder_attention_heads=4,
        decoder_ffn_embed_dim=256, dropout=0.1,
    ),
}
# the DeFINE column's baseline row, without DeFINE (139.33M, 27.06 ppl)
LM_PRESETS["define_lm_wiki103_transformer_baseline"] = {
    k: v for k, v in LM_PRESETS["define_lm_wiki103_transformer"].items() if not k.startswith("define_")
}
for _name, _values in LM_PRESETS.items():
    # then fairseq's transformer-LM defaults for the rest (input/output dims from the model dim)
    register_model_architecture("define_lm", _name)(preset_arch(_values, then=base_lm_architecture))
