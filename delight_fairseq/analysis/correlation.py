"""Correlation maps of word embeddings (DeFINE, Mehta et al., ICLR 2020, Sec. 5 / Fig. 15).

Legend: ``V`` vocabulary, ``d`` embedding dims.

For an embedding matrix ``E in R^{V x d}`` (every word's vector), the map is ``E^T E`` after
each column (dimension) is scaled to unit length: entry ``(i, j)`` is the cosine between
dimensions ``i`` and ``j`` over the vocabulary. Independent dimensions give the identity;
``distance_to_identity`` measures how far a map is from it, so maps can be compared in
numbers: ``||C - I||_F / d`` (0 for the identity, 1 when every pair of dimensions is
perfectly correlated, e.g. a rank-1 embedding).

Works on any embedding module of the package: a plain lookup, a projective one (lookup
then ``n -> d`` Linear), the DExTra embedding and DeFINE; for DeFINE also one map per
layer of its hierarchical group transform.
"""
from typing import Dict, List

import torch
import torch.nn as nn


def correlation_map(matrix: torch.Tensor) -> torch.Tensor:
    """``V x d`` -> ``d x d``: the columns scaled to unit length, then ``E^T E``."""
    e = matrix.double()
    e = e / e.norm(dim=0, keepdim=True).clamp_min(1e-12)
    return e.t() @ e


def distance_to_identity(corr: torch.Tensor) -> float:
    d = corr.shape[0]
    return (torch.linalg.matrix_norm(corr - torch.eye(d, dtype=corr.dtype)) / d).item()


@torch.no_grad()
def embedding_maps(embedding: nn.Module, vocab_size: int, first: int = 0) -> Dict[str, torch.Tensor]:
    """``{name: d x d map}`` of the word vectors an embedding module gives every token
    ``first .. V-1`` (``first`` skips fairseq's specials): ``'embedding'`` for its output,
    and for a DeFINE embedding ``'hgt layer L'`` for each layer of its group transform and
    ``'map'`` for its lookup."""
    was_training = embedding.training
    embedding.eval()
    tokens = torch.arange(first, vocab_size).unsqueeze(0)  # 1 x V
    outputs: Dict[str, torch.Tensor] = {}
    hooks = []
    expand = getattr(embedding, "expand", None)
    layers = getattr(expand, "layers", None)  # HierarchicalGroupTransform
    if layers is not None:
        for i, layer in enumerate(layers):
            hooks.append(layer.register_forward_hook(
                lambda m, args, out, i=i: outputs.__setitem__(f"hgt layer {i + 1}", out[0])))
    try:
        if hasattr(embedding, "lookup"):  # DeFINE / DExTra embedding: the map too
            outputs["map"] = embedding.lookup(tokens)[0]
        outputs["embedding"] = embedding(tokens)[0]  # V x d
    finally:
        for h in hooks:
            h.remove()
        embedding.train(was_training)
    return {name: correlation_map(m) for name, m in outputs.items()}


def word_embedding(model: nn.Module, side: str = "encoder"):
    """``(embedding module, dictionary)`` of a fairseq model of the plugin: the ``side``'s
    ``embed_tokens`` (a language model has only the decoder's; Transformer-XL keeps its
    embedding inside Hugging Face's model)."""
    coder = model.decoder if getattr(model, "encoder", None) is None else getattr(model, side)
    embedding = getattr(coder, "embed_tokens", None)
    if embedding is None:
        embedding = coder.model.transformer.word_emb
    return embedding, coder.dictionary


def projective_embedding(table: nn.Embedding, projection: nn.Linear) -> nn.Module:
    """A lookup followed by an ``n -> d`` Linear (the "projective" embedding of DeFINE's study)."""
    return nn.Sequential(table, projection)


def summary(maps: Dict[str, torch.Tensor]) -> List[str]:
    return [f"{name:<14} {tuple(m.shape)}  distance to identity {distance_to_identity(m):.4f}" for name, m in maps.items()]
