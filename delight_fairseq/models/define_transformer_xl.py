"""``define_transformer_xl``: fairseq's Transformer-XL (``examples/truncated_bptt``, which
wraps Hugging Face's ``TransfoXLLMHeadModel``; trained with ``--task truncated_bptt_lm``)
with DeFINE input embeddings (Mehta et al., ICLR 2020, Table 2).

Without ``--define-embedding`` it is fairseq's ``transformer_xl`` with one more option,
``--d-embed`` (``n``): every word is looked up ``n`` wide and projected ``n -> d`` (the
paper's baseline "n = 384"); the adaptive softmax is tied to the lookup and projects
``d -> n``. With ``--define-embedding`` the lookup (``n`` wide, scaled by ``sqrt(n)``) is
expanded by DeFINE ``n -> k -> d``; the tied adaptive softmax projects ``d -> n`` with one
matrix shared by its clusters.

Legend: ``V`` vocabulary, ``n`` map dim, ``k`` expanded dim, ``d`` model dim.
"""
from dataclasses import dataclass, field
from typing import List, Optional

import torch
import torch.nn as nn
from fairseq.examples.truncated_bptt import truncated_bptt_lm_task  # noqa: F401  (registers --task truncated_bptt_lm)
from fairseq.examples.truncated_bptt.transformer_xl_model import (
    TransformerXLConfig, TransformerXLDecoder, TransformerXLLanguageModel,
)
from fairseq.models import FairseqIncrementalDecoder, register_model, register_model_architecture

from ..modules.errors import ConfigError
from .base import PluginModel
from .builders import cache_word_embeddings, checkpointed, define_embedding, option_flag, preset_arch
from .options import DeFINEHostOptions, check_define_host, raise_if

TRANSFORMERS_NEEDED = ("define_transformer_xl needs Hugging Face transformers with Transformer-XL (>= 4.30, < 4.36: "
                       "4.36 moved it to models/deprecated/, 5.0 removed it): pip install 'transformers>=4.30,<4.36'")


@dataclass
class DefineTransformerXLConfig(TransformerXLConfig, DeFINEHostOptions):
    d_embed: Optional[int] = field(
        default=None, metadata={"help": "map dim n: words are looked up n wide (default: the model dim d)"}
    )
    untie_r: bool = field(
        default=True, metadata={"help": "a relative-position bias per layer (Hugging Face's default); false: one "
                                        "shared by all layers"}
    )
    tie_projs: List[int] = field(
        default_factory=lambda: [0, 1, 1, 1], metadata={
            "help": "per adaptive-softmax cluster, 1: its d -> n projection is the input's n -> d one "
                    "(Transformer-XL's --tied: 0,1,1,1); without DeFINE and with n < d only"}
    )


def transfo_xl():
    """Hugging Face's Transformer-XL classes, or a ConfigError saying which transformers to install."""
    try:
        from transformers.models.transfo_xl import TransfoXLConfig, TransfoXLLMHeadModel
    except ImportError as e:
        raise ConfigError(f"{TRANSFORMERS_NEEDED} ({e})") from None
    return TransfoXLConfig, TransfoXLLMHeadModel


class TransfoXLTable(nn.Module):
    """Hugging Face's ``AdaptiveEmbedding`` (``n`` wide, no projection, scaled by ``sqrt(n)``)
    behind the interface DeFINE's map expects: tokens ``*`` -> ``* x n``."""

    def __init__(self, emb: nn.Module):
        super().__init__()
        self.emb = emb
        self.embedding_dim = emb.d_proj
        self.padding_idx = None

    @property
    def weight(self) -> torch.Tensor:
        """The ``V x n`` table (one band: ``div_val`` 1)."""
        return self.emb.emb_layers[0].weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.emb(tokens)


class DefineTransformerXLDecoder(TransformerXLDecoder):
    def __init__(self, cfg, task):
        FairseqIncrementalDecoder.__init__(self, task.target_dictionary)  # the HF model is built here, with d_embed
        TransfoXLConfig, TransfoXLLMHeadModel = transfo_xl()
        self.cfg = cfg
        vocab = len(task.target_dictionary)
        n = cfg.d_embed or cfg.d_model
        cutoffs = [c for c in cfg.cutoffs if c < vocab]
        ties = [bool(cfg.tie_projs[min(i, len(cfg.tie_projs) - 1)]) for i in range(len(cutoffs) + 1)]  # per cluster
        config = TransfoXLConfig(
            vocab_size=vocab, cutoffs=cutoffs, d_model=cfg.d_model, d_embed=n,
            n_head=cfg.n_head, d_head=cfg.d_head, d_inner=cfg.d_inner, div_val=cfg.div_val, n_layer=cfg.n_layer,
            mem_len=cfg.mem_len, clamp_len=cfg.clamp_len, same_length=cfg.same_length, dropout=cfg.dropout,
            dropatt=cfg.dropatt, untie_r=cfg.untie_r, tie_projs=ties,
        )
        self.model = TransfoXLLMHeadModel(config)
        if cfg.define_embedding:
            self._use_define(cfg, config, TransfoXLLMHeadModel)
        layers = self.model.transformer.layers
        for i in range(len(layers)):
            layers[i] = checkpointed(layers[i], cfg)
        self._mems = None

    def _use_define(self, cfg, config, model_cls):
        """Lookup ``V x n`` -> DeFINE ``n -> k -> d``; the adaptive softmax's word matrix is that
        lookup, each cluster with its own ``d -> n`` projection (there is no input projection
        to tie them to; the DeFINE paper's Table 2 keeps the in-out count of the model without
        DeFINE, four ``d x n`` matrices)."""
        from transformers.models.transfo_xl.modeling_transfo_xl import AdaptiveEmbedding

        n = config.d_embed
        table = TransfoXLTable(AdaptiveEmbedding(config.vocab_size, n, n, config.cutoffs, div_val=1))
        nn.init.normal_(table.weight, 0.0, config.init_std)  # as HF initialises its embeddings
        self.model.transformer.word_emb = define_embedding(cfg, table, cfg.d_model, cfg.define_activation_fn,
                                                           cfg.define_dropout)
        crit = self.model.crit
        crit.out_layers[0].weight = table.weight  # tied: logits against the V x n lookup
        if n != cfg.d_model:
            for i in range(len(crit.out_projs)):  # d -> n each
                crit.out_projs[i] = nn.Parameter(torch.empty(cfg.d_model, n).normal_(0.0, config.proj_init_std))


@register_model("define_transformer_xl", dataclass=DefineTransformerXLConfig)
class DefineTransformerXLLanguageModel(PluginModel, TransformerXLLanguageModel):
    @classmethod
    def build_model(cls, cfg, task):
        errors = []
        if cfg.define_embedding:
            if cfg.div_val != 1:
                errors.append(f"{option_flag('define_embedding')} expands one n-wide lookup: set {option_flag('div_val')} 1")
            errors += check_define_host(cfg, cfg.d_embed or cfg.d_model, cfg.d_model, option_flag("d_model"))
        raise_if(errors, "define_transformer_xl")
        return cache_word_embeddings(cls(DefineTransformerXLDecoder(cfg, task)), cfg)


# DeFINE paper, Table 2 (WikiText-103, Transformer-XL), sizes derived to its counts: 16 layers
# of d 384 with 10 heads of 41 (one relative-position bias for all layers), inner 1920 -> context
# 36.25M; words looked up n wide, every adaptive band n wide (cutoffs 20000, 40000, 200000,
# div_val 1), the input projection n -> 384 tied to the first cluster's output projection and
# the other three clusters' own -> in-out 103.08 / 69.20 / 34.73 / 17.50M for n 384 / 256 / 128 /
# 64. DeFINE: N 3, k 4096, m 384 (g_max not stated: the nearest to the published 1.92M,
# scripts/fit_define_sizes.py). TXL* is Transformer-XL base (d 410, inner 2100): 151.11M.
TXL_TABLE2 = dict(
    n_layer=16, d_model=384, n_head=10, d_head=41, d_inner=1920, dropout=0.1, dropatt=0.0, mem_len=150,
    cutoffs=[20000, 40000, 200000], div_val=1, untie_r=False, tie_projs=[1, 0, 0, 0],
)
TXL_DEFINE = dict(define_embedding=True, define_expand_dim=4096, define_depth=3)


def _table2_rows():
    rows = {"define_transformer_xl_wiki103_base": dict(TXL_TABLE2, d_model=410, d_inner=2100, d_embed=410)}
    for n, max_groups in ((384, 128), (256, 256), (128, 128), (64, 64)):
        rows[f"define_transformer_xl_wiki103_n{n}"] = dict(TXL_TABLE2, d_embed=n)
        rows[f"define_transformer_xl_wiki103_n{n}_define"] = dict(TXL_TABLE2, d_embed=n, define_max_groups=max_groups,
                                                                  **TXL_DEFINE)
    return rows


TRANSFORMER_XL_PRESETS = {
    **_table2_rows(),
    # small, for quick experiments on a CPU
    "define_transformer_xl_small": dict(
        n_layer=2, d_model=64, n_head=4, d_head=16, d_inner=128, dropout=0.0, mem_len=32, cutoffs=[50, 120],
        div_val=1, d_embed=32, define_embedding=True, define_expand_dim=128, define_depth=2, define_max_groups=2,
    ),
}
for _name, _values in TRANSFORMER_XL_PRESETS.items():
    register_model_architecture("define_transformer_xl", _name)(preset_arch(_values))
