#!/usr/bin/env python
"""Correlation maps of a trained model's word embeddings, as DeFINE's Fig. 15 draws them
(``delight_fairseq/analysis/correlation.py``): one map of the embedding's output, and for a DeFINE
embedding one per layer of its hierarchical group transform and one of its lookup. Prints
each map's distance to the identity so that figures can be compared in numbers.

    python scripts/correlation_map.py CHECKPOINT --out map.png [--side encoder|decoder]
"""
import argparse
import sys
import textwrap
from pathlib import Path


from delight_fairseq import ConfigError
from delight_fairseq.analysis.correlation import embedding_maps, summary, word_embedding
from delight_fairseq.analysis.plotting import pyplot
from delight_fairseq.models.factory import build_from_checkpoint


def draw(maps, out: Path, title: str):
    plt = pyplot()
    fig, axes = plt.subplots(1, len(maps), figsize=(3.2 * len(maps), 3.4), squeeze=False)
    for ax, (name, m) in zip(axes[0], maps.items()):
        im = ax.imshow(m.float().numpy(), cmap="RdBu_r", vmin=-1, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(title, fontsize=10)
    fig.savefig(out, dpi=120)


class _Help(argparse.RawDescriptionHelpFormatter):
    """The description as written; each option's default where it has one and its help does not say it."""

    def _split_lines(self, text, width):  # no break after a hyphen: en-de, data-bin stay whole
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if default is None or default is False or default is argparse.SUPPRESS or default == [] or "default" in text:
            return text
        return f"{text} (default: %(default)s)".strip()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help,
                                epilog="example:\n  python scripts/correlation_map.py checkpoints/iwslt14_de_en-iwslt_de_en/checkpoint_best.pt --out map.png --side decoder")
    p.add_argument("checkpoint", help="a checkpoint written by fairseq-train")
    p.add_argument("--out", type=Path, required=True, help="PNG to write")
    p.add_argument("--side", choices=["encoder", "decoder"], default="encoder",
                   help="whose embedding (translation models; language models have only the decoder's)")
    args = p.parse_args(argv)
    try:
        model = build_from_checkpoint(args.checkpoint)
    except ConfigError as e:
        print(f"correlation_map: {e}", file=sys.stderr)
        return 1
    side = "decoder" if getattr(model, "encoder", None) is None else args.side
    embedding, dictionary = word_embedding(model, side)
    maps = embedding_maps(embedding, len(dictionary), first=dictionary.nspecial)
    print("\n".join(summary(maps)))
    draw(maps, args.out, f"{Path(args.checkpoint).name}: {side} embedding ({type(embedding).__name__})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
