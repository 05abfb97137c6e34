"""DeLighT input embedding for translation (DeLighT Sec. 4.1, "Architecture").

Legend: ``B`` batch, ``T`` length, ``V`` vocabulary, ``E`` map dim (128 in the
recipes), ``C`` model dim ``d_m``.

A lookup table of width ``E`` (small, shareable between encoder, decoder and output)
scaled by ``sqrt(E)`` (an adaptive input, in the authors' language model, scales its
own bands), dropped out with one mask per sequence for all time steps, then expanded to
``C`` by a DExTra (input projection ``C/2``, its own width multiplier, depth and groups;
the authors use the decoder's ``N_min``, ``w_m`` and ``g_max``). Depth 0 replaces the
DExTra by one Linear ``E -> C`` (or nothing when ``E == C``). Positions are added by the
encoder/decoder.
"""
import math
from typing import Optional

import torch
import torch.nn as nn

from .errors import ConfigError
from .dextra import DExTra, DExTraConfig
from .norm_act import check_dropout
from .sequence_dropout import sequence_dropout


class CacheInTraining(ConfigError):
    def __init__(self):
        super().__init__("the word embeddings are cached (cache_embeddings, DeFINE Sec. 3.4): that is for inference; "
                         "train without it")


class MappedEmbedding(nn.Module):
    """The map of DeFINE and of DeLighT's embedding: a ``V x E`` lookup (``nn.Embedding``,
    scaled by ``sqrt(E)``, or an adaptive input, which scales its own bands), dropped out
    with one mask per sequence. Subclasses expand its output (``embed``).

    Inference-time caching (DeFINE Sec. 3.4): at inference the expanded vector of a token
    depends on the token alone, so ``cache_words()`` makes the module compute every word's
    vector once (``V x C``, on first use, in chunks) and look tokens up in that table,
    which costs what a plain ``V x C`` lookup costs. The table is not saved (the weights
    stay the model's) and is rebuilt after new weights are loaded; training with it is
    refused (dropout and updated weights would make it wrong)."""

    CACHE_CHUNK = 8192  # words expanded at once when the table is built

    def __init__(self, table: nn.Module, dropout: float):
        super().__init__()
        self.table = table
        self.dropout = check_dropout(dropout, "embedding dropout")
        self.scale = math.sqrt(table.embedding_dim) if isinstance(table, nn.Embedding) else 1.0
        self.padding_idx = table.padding_idx
        self.cached = False
        self.register_buffer("word_cache", None, persistent=False)  # V x C once built
        self._register_load_state_dict_pre_hook(self._forget_words)

    def cache_words(self) -> "MappedEmbedding":
        self.cached = True
        return self

    @property
    def vocab_size(self) -> int:
        cutoff = getattr(self.table, "cutoff", None)  # an adaptive input's bands end at V
        return cutoff[-1] if cutoff else self.table.weight.size(0)

    def _forget_words(self, *args, **kwargs):
        self.word_cache = None

    def train(self, mode: bool = True):
        if mode and self.cached:
            raise CacheInTraining()
        return super().train(mode)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Tokens ``B x T`` -> ``B x T x C``."""
        if not self.cached:
            return self.embed(tokens)
        if self.training:
            raise CacheInTraining()
        if self.word_cache is None:
            with torch.no_grad():
                words = torch.arange(self.vocab_size, device=next(self.parameters()).device)
                self.word_cache = torch.cat([self.embed(chunk.unsqueeze(0))[0]  # 1 x W -> W x C
                                             for chunk in words.split(self.CACHE_CHUNK)])  # V x C
        return nn.functional.embedding(tokens, self.word_cache)

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @property
    def weight(self) -> torch.Tensor:
        """The ``V x E`` table, for output layers tied to it."""
        return self.table.weight

    def weights_for_band(self, band: int):
        """fairseq's AdaptiveSoftmax ties its bands to these (adaptive tables only)."""
        return self.table.weights_for_band(band)

    def lookup(self, tokens: torch.Tensor) -> torch.Tensor:
        """``B x T`` -> ``B x T x E``."""
        return sequence_dropout(self.table(tokens) * self.scale, self.dropout, self.training)


class DeLighTEmbedding(MappedEmbedding):
    """Tokens ``B x T`` -> ``B x T x C``: the map, then a DExTra ``E -> C/2 -> ... -> C``
    (``dextra``; None: one Linear ``E -> C``, or nothing when ``E == C``)."""

    def __init__(self, table: nn.Module, embed_dim: int, dextra: Optional[DExTraConfig], dropout: float = 0.0):
        super().__init__(table, dropout)
        map_dim = table.embedding_dim
        self.embedding_dim = embed_dim
        if dextra is not None:
            if embed_dim % 2:
                raise ValueError(f"model dim must be even, got {embed_dim}")
            self.expand = DExTra.from_config(map_dim, embed_dim // 2, embed_dim, dextra)
        elif map_dim != embed_dim:
            self.expand = nn.Linear(map_dim, embed_dim)
        else:
            self.expand = nn.Identity()

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.expand(self.lookup(tokens))  # B x T x E -> B x T x C
