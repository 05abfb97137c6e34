#!/usr/bin/env python
"""Correlation maps of a trained model's word embeddings, as DeFINE's Fig. 15 draws them
(``delight_fairseq/analysis.py``): one map of the embedding's output, and for a DeFINE
embedding one per layer of its hierarchical group transform and one of its lookup. Prints
each map's distance to the identity so that figures can be compared in numbers.

    python scripts/correlation_map.py CHECKPOINT --out map.png [--side encoder|decoder]
"""
import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from delight_fairseq import ConfigError  # noqa: E402
from delight_fairseq.analysis import embedding_maps, summary  # noqa: E402


def load_model(path: str):
    """The model of a checkpoint written by fairseq-train (its config and dictionary sizes)."""
    from types import SimpleNamespace

    from fairseq.models import ARCH_MODEL_REGISTRY
    from omegaconf import OmegaConf

    import delight_fairseq.models  # noqa: F401  (registers the models)
    from delight_fairseq.convert import _placeholder_dictionary

    if not Path(path).is_file():
        raise ConfigError(f"no checkpoint at {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not state.get("cfg"):
        raise ConfigError(f"{path} has no fairseq 0.12 config (a checkpoint of the authors' fork? convert it first)")
    cfg = OmegaConf.create(state["cfg"])
    weights = state["model"]

    def rows(*keys):
        key = next((k for k in keys if k in weights), None)
        if key is None:
            raise ConfigError(f"{path}: no lookup table among {keys}")
        return weights[key].shape[0]

    lm = "decoder.layers.0.encoder_attn_norm.weight" not in weights and "encoder.embed_tokens.table.weight" not in weights
    if lm:
        bands = [k for k in weights if k.startswith("decoder.embed_tokens.") and k.endswith(".0.weight") and ".embeddings." in k]
        size = sum(weights[k].shape[0] for k in bands) if bands else rows("decoder.embed_tokens.table.weight", "decoder.embed_tokens.weight")
        dicts = {"source": _placeholder_dictionary(size), "target": _placeholder_dictionary(size)}
    else:
        dicts = {"source": _placeholder_dictionary(rows("encoder.embed_tokens.table.weight")),
                 "target": _placeholder_dictionary(rows("decoder.embed_tokens.table.weight"))}
        if cfg.model.get("share_all_embeddings"):
            dicts["target"] = dicts["source"]
    model = ARCH_MODEL_REGISTRY[cfg.model._name].build_model(cfg.model, SimpleNamespace(
        source_dictionary=dicts["source"], target_dictionary=dicts["target"]))
    model.load_state_dict(weights)
    return model, lm, dicts


def draw(maps, out: Path, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.4), squeeze=False)
    for ax, (name, m) in zip(axes[0], maps.items()):
        im = ax.imshow(m.float().numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(out, dpi=120)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--side", choices=["encoder", "decoder"], default="encoder",
                   help="whose embedding (translation models; language models have only the decoder's)")
    args = p.parse_args(argv)
    try:
        model, lm, dicts = load_model(args.checkpoint)
    except ConfigError as e:
        print(f"correlation_map: {e}", file=sys.stderr)
        return 1
    side = "decoder" if lm else args.side
    embedding = getattr(model, side).embed_tokens
    vocab = len(dicts["target" if side == "decoder" else "source"])
    maps = embedding_maps(embedding, vocab, first=dicts["target"].nspecial)
    print("\n".join(summary(maps)))
    draw(maps, args.out, f"{Path(args.checkpoint).name}: {side} embedding ({type(embedding).__name__})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
