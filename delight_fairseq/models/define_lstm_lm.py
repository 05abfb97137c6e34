"""``define_lstm_lm``: LSTM language models with a selectable input embedding: a lookup,
an adaptive input (Baevski & Auli, 2019), or DeFINE over either (Mehta et al., ICLR 2020,
Sec. 4.1, the LSTM rows of Table 1 and the AWD-LSTM rows of Table 3); and AWD-LSTM's
regularisers (Merity et al., 2018: weight-dropped ``W_hh``, locked dropout, embedding
dropout; ``modules/awd.py``).

What fairseq's own ``lstm_lm`` cannot do and this model does: a DeFINE or adaptive input
tied to the output layer (a tied adaptive softmax, or logits against the lookup through an
``H -> n`` projection), and the AWD regularisers, which need whole-sequence
``nn.LSTM`` layers (fairseq's decoder steps ``LSTMCell``s one position at a time). Like
fairseq's, it carries no hidden state from one training segment to the next.

Legend: ``B`` batch, ``T`` length, ``V`` vocabulary, ``n`` map dim, ``d`` LSTM input dim,
``H`` hidden size, ``O`` width of the last LSTM layer.
"""
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.dataclass import FairseqDataclass
from fairseq.models import FairseqIncrementalDecoder, FairseqLanguageModel, register_model, register_model_architecture
from fairseq.modules import AdaptiveInput, AdaptiveSoftmax
from omegaconf import II

from ..modules.awd import LockedDropout, WeightDropLSTM, word_dropout
from ..modules.delight_embedding import MappedEmbedding
from .adaptive_input import check_adaptive, cutoffs
from .builders import define_embedding, preset_arch
from .checkpoint_fit import check_lm_fits
from .delight_config import DeFINEHostOptions, _flag, check_define_host, check_dropouts, raise_if

DROPOUTS = ("dropout", "dropout_input", "dropout_hidden", "weight_drop", "embed_word_dropout", "define_dropout",
            "adaptive_softmax_dropout")


@dataclass
class DefineLSTMLMConfig(DeFINEHostOptions):
    decoder_input_dim: int = field(default=400, metadata={"help": "width n of the lookup (or of the adaptive input's first band)"})
    decoder_embed_dim: int = field(default=400, metadata={"help": "LSTM input dim d (DeFINE reduces n -> k -> d; a plain "
                                                                  "lookup with n != d is projected n -> d)"})
    decoder_hidden_size: int = field(default=1150, metadata={"help": "hidden size H of every LSTM layer but the last"})
    decoder_output_dim: Optional[int] = field(
        default=None, metadata={"help": "hidden size O of the last LSTM layer (default H; AWD-LSTM sets it to d for tying)"}
    )
    decoder_layers: int = field(default=3, metadata={"help": "number of LSTM layers"})
    share_decoder_input_output_embed: bool = field(
        default=False, metadata={"help": "logits against the lookup table (through an O -> n projection where O != n)"}
    )
    adaptive_input: bool = field(default=False, metadata={"help": "adaptive input instead of a lookup"})
    adaptive_input_factor: float = field(default=4, metadata={"help": "adaptive input factor"})
    adaptive_input_cutoff: Optional[str] = field(default=None, metadata={"help": "adaptive input cutoffs, e.g. 20000,60000"})
    adaptive_softmax_cutoff: Optional[str] = field(
        default=None, metadata={"help": "adaptive softmax cutoffs (with --criterion adaptive_loss)"}
    )
    adaptive_softmax_factor: float = field(default=4, metadata={"help": "adaptive softmax factor"})
    adaptive_softmax_dropout: float = field(default=0.0, metadata={"help": "dropout in the adaptive softmax tails"})
    tie_adaptive_weights: bool = field(default=False, metadata={"help": "tie the adaptive softmax to the adaptive input"})
    tie_adaptive_proj: bool = field(default=False, metadata={"help": "tie their projections too"})
    # AWD-LSTM (Merity et al., 2018): their --dropout, --dropouti, --dropouth, --wdrop, --dropoute
    dropout: float = field(default=0.0, metadata={"help": "locked dropout on the last LSTM layer's output"})
    dropout_input: float = field(default=0.0, metadata={"help": "locked dropout on the embeddings (AWD's dropouti)"})
    dropout_hidden: float = field(default=0.0, metadata={"help": "locked dropout between LSTM layers (AWD's dropouth)"})
    weight_drop: float = field(default=0.0, metadata={"help": "DropConnect on each hidden-to-hidden matrix (AWD's wdrop)"})
    embed_word_dropout: float = field(
        default=0.0, metadata={"help": "drop whole word types from the embeddings (AWD's dropoute)"}
    )
    max_target_positions: Optional[int] = II("task.max_target_positions")


def validate_lstm_config(cfg, vocab_size: int) -> None:
    errors = check_dropouts(cfg, DROPOUTS)
    for name in ("decoder_input_dim", "decoder_embed_dim", "decoder_hidden_size", "decoder_layers"):
        if getattr(cfg, name) < 1:
            errors.append(f"{_flag(name)} must be >= 1, got {getattr(cfg, name)}")
    if cfg.decoder_output_dim is not None and cfg.decoder_output_dim < 1:
        errors.append(f"{_flag('decoder_output_dim')} must be >= 1, got {cfg.decoder_output_dim}")
    if cfg.define_embedding:
        errors += check_define_host(cfg, cfg.decoder_input_dim, cfg.decoder_embed_dim, _flag("decoder_embed_dim"))
    errors += check_adaptive(cfg, vocab_size)
    if cfg.share_decoder_input_output_embed and cfg.adaptive_input:
        errors.append(f"{_flag('share_decoder_input_output_embed')} ties a lookup: with {_flag('adaptive_input')} "
                      f"use {_flag('tie_adaptive_weights')}")
    raise_if(errors, "define_lstm_lm")


def build_lstm_embedding(cfg, dictionary) -> nn.Module:
    """Tokens ``B x T`` -> ``B x T x d``: a lookup, an adaptive input, or DeFINE over one."""
    n, d = cfg.decoder_input_dim, cfg.decoder_embed_dim
    if cfg.adaptive_input:
        table = AdaptiveInput(len(dictionary), dictionary.pad(), n, cfg.adaptive_input_factor,
                              n if cfg.define_embedding else d, cutoffs(cfg.adaptive_input_cutoff), 0.0, 8)
    else:
        table = nn.Embedding(len(dictionary), n, padding_idx=dictionary.pad())
        nn.init.uniform_(table.weight, -0.1, 0.1)  # AWD-LSTM's initialisation
        nn.init.zeros_(table.weight[dictionary.pad()])
    if cfg.define_embedding:
        return define_embedding(cfg, table, d, cfg.define_activation_fn, cfg.define_dropout)
    if not cfg.adaptive_input and n != d:
        return ProjectedEmbedding(table, d)
    return table


class ProjectedEmbedding(MappedEmbedding):
    """A lookup ``V x n`` and a Linear ``n -> d`` (the "projective" embedding)."""

    def __init__(self, table: nn.Embedding, embed_dim: int):
        super().__init__(table, 0.0)
        self.scale = 1.0
        self.project = nn.Linear(table.embedding_dim, embed_dim, bias=False)
        self.embedding_dim = embed_dim

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.project(self.lookup(tokens))  # B x T x n -> B x T x d


class DefineLSTMDecoder(FairseqIncrementalDecoder):
    def __init__(self, cfg, dictionary, embed_tokens: nn.Module):
        super().__init__(dictionary)
        self.embed_tokens = embed_tokens
        self.max_target_positions = cfg.max_target_positions
        self.embed_word_dropout = cfg.embed_word_dropout
        self.dropout_input = LockedDropout(cfg.dropout_input)
        self.dropout_hidden = LockedDropout(cfg.dropout_hidden)
        self.dropout_out = LockedDropout(cfg.dropout)
        out_dim = cfg.decoder_output_dim or cfg.decoder_hidden_size
        widths = [cfg.decoder_embed_dim] + [cfg.decoder_hidden_size] * (cfg.decoder_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            WeightDropLSTM(w_in, w_out, cfg.weight_drop) for w_in, w_out in zip(widths[:-1], widths[1:])
        )
        self.adaptive_softmax = None
        self.output_proj = None
        self.output_weight = None
        tied = cfg.tie_adaptive_weights or cfg.share_decoder_input_output_embed
        logit_dim = self.table.embedding_dim if tied else out_dim  # n: the width of the tied table's output
        if logit_dim != out_dim:  # O -> n before the tied output layer
            self.output_proj = nn.Linear(out_dim, logit_dim, bias=False)
            nn.init.xavier_uniform_(self.output_proj.weight)
        if cfg.adaptive_softmax_cutoff:
            self.adaptive_softmax = AdaptiveSoftmax(
                len(dictionary), logit_dim, cutoffs(cfg.adaptive_softmax_cutoff), dropout=cfg.adaptive_softmax_dropout,
                adaptive_inputs=embed_tokens if cfg.tie_adaptive_weights else None, factor=cfg.adaptive_softmax_factor,
                tie_proj=cfg.tie_adaptive_proj,
            )
        elif not tied:
            self.output_weight = nn.Parameter(torch.empty(len(dictionary), out_dim))  # V x O
            nn.init.normal_(self.output_weight, mean=0.0, std=out_dim ** -0.5)

    @property
    def table(self) -> nn.Module:
        """The ``V x n`` lookup (or adaptive input) under the embedding."""
        return getattr(self.embed_tokens, "table", self.embed_tokens)

    def forward(self, prev_output_tokens, incremental_state=None, features_only: bool = False, **unused):
        """``prev_output_tokens``: ``B x T``. Returns ``(B x T x V logits, extra)``."""
        x, extra = self.extract_features(prev_output_tokens, incremental_state)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens, incremental_state=None, **unused):
        states: Optional[List] = None
        if incremental_state is not None:
            states = self.get_incremental_state(incremental_state, "states")
            if states is not None:
                prev_output_tokens = prev_output_tokens[:, -1:]  # the newest token: B x 1
        x = self.embed_tokens(prev_output_tokens)  # B x T x d
        x = word_dropout(x, prev_output_tokens, self.embed_word_dropout, self.training)
        x = self.dropout_input(x.transpose(0, 1))  # T x B x d
        new_states = []
        for i, layer in enumerate(self.layers):
            x, state = layer(x, None if states is None else states[i])  # T x B x H
            new_states.append(state)
            x = self.dropout_hidden(x) if i < len(self.layers) - 1 else self.dropout_out(x)
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "states", new_states)
        return x.transpose(0, 1), {"attn": [None], "inner_states": [x]}  # B x T x O

    def output_layer(self, features: torch.Tensor) -> torch.Tensor:
        """``B x T x O -> B x T x V``; with an adaptive softmax ``B x T x n``, which the
        criterion (``adaptive_loss``) and ``get_normalized_probs`` pass through it."""
        if self.output_proj is not None:
            features = self.output_proj(features)  # B x T x n
        if self.adaptive_softmax is not None:
            return features
        return F.linear(features, self.table.weight if self.output_weight is None else self.output_weight)

    def reorder_incremental_state(self, incremental_state, new_order: torch.Tensor):
        states = self.get_incremental_state(incremental_state, "states")
        if states is not None:
            states = [tuple(s.index_select(1, new_order) for s in state) for state in states]  # each 1 x B x H
            self.set_incremental_state(incremental_state, "states", states)

    def max_positions(self) -> int:
        return self.max_target_positions or int(1e5)


@register_model("define_lstm_lm", dataclass=DefineLSTMLMConfig)
class DefineLSTMLanguageModel(FairseqLanguageModel):
    @classmethod
    def build_model(cls, cfg, task):
        if isinstance(cfg, Namespace):  # fairseq's legacy API (parse_args_and_arch without Hydra)
            cfg = DefineLSTMLMConfig.from_namespace(cfg)
        validate_lstm_config(cfg, len(task.source_dictionary))
        return cls(DefineLSTMDecoder(cfg, task.target_dictionary, build_lstm_embedding(cfg, task.source_dictionary)))

    def load_state_dict(self, state_dict, strict=True, model_cfg=None, args=None):
        if strict:
            check_lm_fits(self, state_dict)
        return super().load_state_dict(state_dict, strict=strict, model_cfg=model_cfg, args=args)


# AWD-LSTM on Penn Treebank (Merity et al., 2018; their PTB command): 3 layers, H 1150, the
# last one 400 wide for the tied output, embeddings 400; dropout .4, dropouti .4, dropouth
# .25, wdrop .5, dropoute .1. 24M params published.
AWD_PTB = dict(
    decoder_input_dim=400, decoder_embed_dim=400, decoder_hidden_size=1150, decoder_output_dim=400, decoder_layers=3,
    share_decoder_input_output_embed=True, dropout=0.4, dropout_input=0.4, dropout_hidden=0.25, weight_drop=0.5,
    embed_word_dropout=0.1,
)
# WikiText-103 LSTM with adaptive input and a tied adaptive softmax (DeFINE Table 1).
WIKITEXT103_LSTM = dict(
    adaptive_input=True, adaptive_input_cutoff="20000,60000", adaptive_input_factor=4,
    adaptive_softmax_cutoff="20000,60000", adaptive_softmax_factor=4, tie_adaptive_weights=True, tie_adaptive_proj=True,
    decoder_input_dim=256, decoder_embed_dim=256, decoder_hidden_size=1024, decoder_output_dim=256, decoder_layers=4,
    dropout=0.1, dropout_input=0.1, dropout_hidden=0.1, adaptive_softmax_dropout=0.1,
)
LSTM_PRESETS: Dict[str, dict] = {
    "define_lstm_lm_wiki103_adaptive": WIKITEXT103_LSTM,
    "define_lstm_lm_wiki103": dict(WIKITEXT103_LSTM, define_embedding=True, define_expand_dim=1024, define_depth=3,
                                   define_max_groups=4),
    "define_lstm_lm_ptb_awd": AWD_PTB,
    "define_lstm_lm_ptb": dict(AWD_PTB, decoder_input_dim=128, define_embedding=True, define_expand_dim=1024,
                               define_depth=3, define_max_groups=4),
    # small, for quick experiments on a CPU: DeFINE 64 -> 256 -> 128, two LSTM layers of 256
    "define_lstm_lm_small": dict(
        decoder_input_dim=64, decoder_embed_dim=128, decoder_hidden_size=256, decoder_output_dim=128, decoder_layers=2,
        share_decoder_input_output_embed=True, define_embedding=True, define_expand_dim=256, define_depth=2,
        define_max_groups=2, dropout=0.1, dropout_input=0.1, dropout_hidden=0.1, weight_drop=0.2, embed_word_dropout=0.05,
    ),
}
for _name, _values in LSTM_PRESETS.items():
    register_model_architecture("define_lstm_lm", _name)(preset_arch(_values))
