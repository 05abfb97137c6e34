"""Parameters and multiply-accumulate operations (MACs) of a model, counted the way the
DeLighT authors count them:

- a Linear or group linear layer costs its number of weights per token (biases, norms and
  activations are free; an embedding lookup is free);
- attention over ``S`` keys costs ``T * S * D`` for ``T`` queries of ``D`` features;
- the decoder is counted as it generates: ``T`` incremental steps, step ``t`` attending to
  ``t`` earlier positions and to the ``S`` source positions (whose keys and values are
  projected once, ``S`` tokens' worth); each step also computes the output logits
  (``d_m -> map_dim`` then ``V`` dot products of ``map_dim``).

Counts come from forward hooks on what actually runs, so they follow the model as built.
"""
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List

import torch
import torch.nn as nn

from ..modules import GroupLinear, SingleHeadAttention


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
