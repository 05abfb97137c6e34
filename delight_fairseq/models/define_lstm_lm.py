"""``define_lstm_lm``: LSTM language models with a selectable input embedding: a lookup,
an adaptive input (Baevski & Auli, 2019), or DeFINE over either (Mehta et al., ICLR 2020,
Sec. 4.1, the LSTM rows of Table 1a and the AWD-LSTM rows of Table 1c); and AWD-LSTM's
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
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from fairseq.models import FairseqIncrementalDecoder, FairseqLanguageModel, register_model, register_model_architecture
from fairseq.modules import AdaptiveSoftmax
from omegaconf import II

from ..modules.awd import LockedDropout, WeightDropLSTM, word_dropout
from ..modules.delight_embedding import MappedEmbedding
from .adaptive_input import ADAPTIVE_INPUT_HELP, ADAPTIVE_INPUT_STYLES, build_adaptive_input, check_adaptive, cutoffs
from .base import PluginModel
from .builders import cache_word_embeddings, define_embedding, option_flag, output_projection, preset_arch
from .options import DeFINEHostOptions, check_define_host, check_dropouts, raise_if

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
    adaptive_input_style: ADAPTIVE_INPUT_STYLES = field(default="fairseq", metadata={"help": ADAPTIVE_INPUT_HELP})
    adaptive_input_cutoff: Optional[str] = field(default=None, metadata={"help": "adaptive input cutoffs, e.g. 20000,60000"})
    adaptive_softmax_cutoff: Optional[str] = field(
        default=None, metadata={"help": "adaptive softmax cutoffs (with --criterion adaptive_loss)"}
    )
    adaptive_softmax_factor: float = field(default=4, metadata={"help": "adaptive softmax factor"})
    adaptive_softmax_dropout: float = field(default=0.0, metadata={"help": "dropout in the adaptive softmax tails"})
    tie_adaptive_weights: bool = field(default=False, metadata={"help": "tie the adaptive softmax to the adaptive input"})
    tie_adaptive_proj: bool = field(default=False, metadata={"help": "tie their projections too"})
    output_bias: bool = field(
        default=False, metadata={"help": "a bias on the output logits (AWD-LSTM's decoder; the DeFINE paper's "
                                         "standard tied lookup, R1); not with an adaptive softmax"}
    )
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
            errors.append(f"{option_flag(name)} must be >= 1, got {getattr(cfg, name)}")
    if cfg.decoder_output_dim is not None and cfg.decoder_output_dim < 1:
        errors.append(f"{option_flag('decoder_output_dim')} must be >= 1, got {cfg.decoder_output_dim}")
    if cfg.define_embedding:
        errors += check_define_host(cfg, cfg.decoder_input_dim, cfg.decoder_embed_dim, option_flag("decoder_embed_dim"))
    errors += check_adaptive(cfg, vocab_size)
    if cfg.output_bias and cfg.adaptive_softmax_cutoff:
        errors.append(f"{option_flag('output_bias')} is for a full softmax: the adaptive softmax has none")
    if cfg.share_decoder_input_output_embed and cfg.adaptive_input:
        errors.append(f"{option_flag('share_decoder_input_output_embed')} ties a lookup: with {option_flag('adaptive_input')} "
                      f"use {option_flag('tie_adaptive_weights')}")
    raise_if(errors, "define_lstm_lm")


def build_lstm_embedding(cfg, dictionary) -> nn.Module:
    """Tokens ``B x T`` -> ``B x T x d``: a lookup, an adaptive input, or DeFINE over one."""
    n, d = cfg.decoder_input_dim, cfg.decoder_embed_dim
    if cfg.adaptive_input:
        table = build_adaptive_input(cfg, dictionary, n if cfg.define_embedding else d)
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

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
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
            self.output_proj = output_projection(out_dim, logit_dim)
        if cfg.adaptive_softmax_cutoff:
            self.adaptive_softmax = AdaptiveSoftmax(
                len(dictionary), logit_dim, cutoffs(cfg.adaptive_softmax_cutoff), dropout=cfg.adaptive_softmax_dropout,
                adaptive_inputs=embed_tokens if cfg.tie_adaptive_weights else None, factor=cfg.adaptive_softmax_factor,
                tie_proj=cfg.tie_adaptive_proj,
            )
        elif not tied:
            self.output_weight = nn.Parameter(torch.empty(len(dictionary), out_dim))  # V x O
            nn.init.normal_(self.output_weight, mean=0.0, std=out_dim ** -0.5)
        self.output_bias = nn.Parameter(torch.zeros(len(dictionary))) if cfg.output_bias else None
        self._carried = {}  # training / evaluation: the state the last call with ``carry`` left, detached

    @property
    def table(self) -> nn.Module:
        """The ``V x n`` lookup (or adaptive input) under the embedding."""
        return getattr(self.embed_tokens, "table", self.embed_tokens)

    def forward(self, prev_output_tokens, incremental_state=None, features_only: bool = False,
                carry: Optional[bool] = None, **unused):
        """``prev_output_tokens``: ``B x T``. Returns ``(B x T x V logits, extra)``.

        ``carry`` (set by ``--task bptt_lm``, which feeds a text as consecutive segments):
        start from the state the previous call left (AWD-LSTM's truncated BPTT: the
        hidden state flows from one segment to the next, gradients do not), or, when
        ``False``, from zeros; either way keep the final state for the next call. Training
        and evaluation keep separate states."""
        x, extra = self.extract_features(prev_output_tokens, incremental_state, carry=carry)
        if not features_only:
            x = self.output_layer(x)
        return x, extra

    def extract_features(self, prev_output_tokens, incremental_state=None, carry: Optional[bool] = None, **unused):
        states: Optional[List] = None
        if incremental_state is not None:
            states = self.get_incremental_state(incremental_state, "states")
            if states is not None:
                prev_output_tokens = prev_output_tokens[:, -1:]  # the newest token: B x 1
        elif carry:
            states = self._carried.get(self.training)
            if states is not None and states[0][0].size(1) != prev_output_tokens.size(0):
                states = None  # another batch size: another stream
        x = self.embed_tokens(prev_output_tokens)  # B x T x d
        x = word_dropout(x, prev_output_tokens, self.embed_word_dropout, self.training)
        x = self.dropout_input(x.transpose(0, 1))  # T x B x d
        new_states = []
        for i, layer in enumerate(self.layers):
            raw, state = layer(x, None if states is None else states[i])  # T x B x H
            new_states.append(state)
            x = self.dropout_hidden(raw) if i < len(self.layers) - 1 else self.dropout_out(raw)
        if incremental_state is not None:
            self.set_incremental_state(incremental_state, "states", new_states)
        elif carry is not None:
            self._carried[self.training] = [tuple(s.detach() for s in state) for state in new_states]
        # the last layer's output before and after its dropout (T x B x O): AWD-LSTM's TAR and AR act on them
        return x.transpose(0, 1), {"attn": [None], "inner_states": [x], "last_raw": raw, "last_dropped": x}  # B x T x O

    def output_layer(self, features: torch.Tensor) -> torch.Tensor:
        """``B x T x O -> B x T x V``; with an adaptive softmax ``B x T x n``, which the
        criterion (``adaptive_loss``) and ``get_normalized_probs`` pass through it."""
        if self.output_proj is not None:
            features = self.output_proj(features)  # B x T x n
        if self.adaptive_softmax is not None:
            return features
        return F.linear(features, self.table.weight if self.output_weight is None else self.output_weight,
                        self.output_bias)

    def reorder_incremental_state(self, incremental_state, new_order: torch.Tensor):
        states = self.get_incremental_state(incremental_state, "states")
        if states is not None:
            states = [tuple(s.index_select(1, new_order) for s in state) for state in states]  # each 1 x B x H
            self.set_incremental_state(incremental_state, "states", states)

    def max_positions(self) -> int:
        return self.max_target_positions or int(1e5)


@register_model("define_lstm_lm", dataclass=DefineLSTMLMConfig)
class DefineLSTMLanguageModel(PluginModel, FairseqLanguageModel):
    config_class = DefineLSTMLMConfig

    @classmethod
    def build_model(cls, cfg, task):
        cfg = cls.config(cfg)
        validate_lstm_config(cfg, len(task.source_dictionary))
        decoder = DefineLSTMDecoder(cfg, task.target_dictionary, build_lstm_embedding(cfg, task.source_dictionary))
        return cache_word_embeddings(cls(decoder), cfg)


# AWD-LSTM on Penn Treebank (Merity et al., 2018; their PTB command): 3 layers, H 1150, the
# last one 400 wide for the tied output (with a bias: their decoder is a Linear), embeddings
# 400; dropout .4, dropouti .4, dropouth .25, wdrop .5, dropoute .1. 24M params published
# (24,221,600 on their 10,000 words).
AWD_PTB = dict(
    decoder_input_dim=400, decoder_embed_dim=400, decoder_hidden_size=1150, decoder_output_dim=400, decoder_layers=3,
    share_decoder_input_output_embed=True, output_bias=True, dropout=0.4, dropout_input=0.4, dropout_hidden=0.25,
    weight_drop=0.5, embed_word_dropout=0.1,
)
# DeFINE paper, Table 1a, WikiText-103 LSTM rows R1-R5 (sizes derived to its counts: 4 LSTM
# layers of 1024, the last m = n wide -> context 23.36 / 24.73 / 26.24M for n 256 / 384 / 512).
# Dropouts: the paper's appendix A.3 was not at hand; ours, 0.1 each.
WIKITEXT103_LSTM = dict(
    decoder_input_dim=256, decoder_embed_dim=256, decoder_hidden_size=1024, decoder_output_dim=256, decoder_layers=4,
    dropout=0.1, dropout_input=0.1, dropout_hidden=0.1,
)
# R2's tied adaptive input and softmax: cutoffs 20000, 40000, 200000, factor 4, the first band
# n wide without a projection ("define" style) -> 9.25 / 13.90 / 18.55M for n 256 / 384 / 512
WIKITEXT103_ADAPTIVE = dict(
    WIKITEXT103_LSTM, adaptive_input=True, adaptive_input_style="define", adaptive_input_cutoff="20000,40000,200000",
    adaptive_input_factor=4, adaptive_softmax_cutoff="20000,40000,200000", adaptive_softmax_factor=4,
    tie_adaptive_weights=True, tie_adaptive_proj=True, adaptive_softmax_dropout=0.1,
)


def _define_rows(n: int, depth: int, max_groups: int, expand_dim: int = 1024) -> dict:
    """R3-R5: DeFINE n -> k -> m = n over the adaptive input, the LSTM n wide at both ends.
    g_max is not stated: ``scripts/fit_define_sizes.py`` picks the one whose DeFINE count is
    nearest the published (no single setting gives all three)."""
    return dict(WIKITEXT103_ADAPTIVE, decoder_input_dim=n, decoder_embed_dim=n, decoder_output_dim=n,
                define_embedding=True, define_expand_dim=expand_dim, define_depth=depth, define_max_groups=max_groups)


LSTM_PRESETS: Dict[str, dict] = {
    # R1: a standard 256-wide lookup tied to the output (with a bias): 92.17M published (2 GPUs)
    "define_lstm_lm_wiki103_r1": dict(WIKITEXT103_LSTM, share_decoder_input_output_embed=True, output_bias=True),
    "define_lstm_lm_wiki103_r2": WIKITEXT103_ADAPTIVE,  # adaptive input/softmax: 32.61M, 44.87 ppl
    "define_lstm_lm_wiki103_r3": _define_rows(256, 3, 32),  # + DeFINE N 3: 33.02M, 41.17 ppl
    "define_lstm_lm_wiki103_r4": _define_rows(384, 7, 128),  # + DeFINE N 7: 40.46M, 38.01 ppl
    "define_lstm_lm_wiki103_r5": _define_rows(512, 11, 512),  # + DeFINE N 11: 48.69M, 35.94 ppl
    "define_lstm_lm_ptb_awd": AWD_PTB,  # AWD-LSTM: 24M, 58.8 ppl (before fine-tuning)
    # DeFINE paper, Table 1c: AWD-LSTM with DeFINE n 128 -> k 1024 -> m 400, N 7 (g_max as R4's):
    # 20M published, 54.2 ppl
    "define_lstm_lm_ptb": dict(AWD_PTB, decoder_input_dim=128, define_embedding=True, define_expand_dim=1024,
                               define_depth=7, define_max_groups=128),
    # small, for quick experiments on a CPU: DeFINE 64 -> 256 -> 128, two LSTM layers of 256
    "define_lstm_lm_small": dict(
        decoder_input_dim=64, decoder_embed_dim=128, decoder_hidden_size=256, decoder_output_dim=128, decoder_layers=2,
        share_decoder_input_output_embed=True, define_embedding=True, define_expand_dim=256, define_depth=2,
        define_max_groups=2, dropout=0.1, dropout_input=0.1, dropout_hidden=0.1, weight_drop=0.2, embed_word_dropout=0.05,
    ),
}
for _name, _values in LSTM_PRESETS.items():
    register_model_architecture("define_lstm_lm", _name)(preset_arch(_values))
