#!/usr/bin/env python
"""Pictures of a run and of a model.

    python scripts/plot.py curves LOG [LOG...] --out curves.png   # train/valid loss per update
    python scripts/plot.py scaling ARCH --out scaling.png           # block-wise scaling of a preset

LOG is fairseq's log (``hydra_train.log``, or what fairseq-train printed with
``--log-format simple``); every LOG is one run, labelled by its file name.
"""
import argparse
import re
import textwrap
from pathlib import Path


from delight_fairseq.analysis.plotting import pyplot

plt = pyplot()

STATS = re.compile(r"\| (train|valid) \| .*?\| loss ([\d.]+) .*?\| num_updates (\d+)")


def read_log(path):
    """{'train': [(updates, loss)], 'valid': [...]} from the epoch/validation summary lines."""
    curves = {"train": [], "valid": []}
    for line in open(path, encoding="utf-8", errors="replace"):
        m = STATS.search(line)
        if m:
            curves[m.group(1)].append((int(m.group(3)), float(m.group(2))))
    if not curves["train"] and not curves["valid"]:
        raise SystemExit(f"plot: no train/valid summary lines in {path}: is it a fairseq log?")
    return curves


def curves(args):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for log in args.logs:
        data = read_log(log)
        for split, style in (("train", "-"), ("valid", "--")):
            if data[split]:
                x, y = zip(*data[split])
                ax.plot(x, y, style, label=f"{Path(log).parent.name or Path(log).stem} {split}")
    ax.set_xlabel("updates")
    ax.set_ylabel("loss (base 2)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


def block_layout(arch: str):
    """[(side, [(depth, widest DExTra layer)])] of a delight_transformer or define_lm preset."""
    from delight_fairseq.models.define_lm import lm_block_configs
    from delight_fairseq.models.delight_config import DeLighTTransformerConfig, block_configs
    from delight_fairseq.modules import dextra_schedule
    from delight_fairseq.models.factory import preset_config

    cfg = preset_config(arch)
    if isinstance(cfg, DeLighTTransformerConfig):
        sides = [(side, block_configs(cfg, side)) for side in ("encoder", "decoder")]
    elif cfg.block_type == "delight":
        sides = [("decoder", lm_block_configs(cfg))]
    else:
        raise SystemExit(f"plot: {arch} has no DeLighT blocks to draw")
    return [
        (side, [(b.dextra.depth, max(w for w, _ in dextra_schedule(b.embed_dim, b.embed_dim // 2, b.embed_dim // 2, b.dextra.depth,
                                                                   b.dextra.width_mult, b.dextra.max_groups, b.dextra.schedule)))
                for b in blocks])
        for side, blocks in sides
    ]


def scaling(args):
    layout = block_layout(args.arch)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
    for side, blocks in layout:
        x = range(1, len(blocks) + 1)
        axes[0].plot(x, [d for d, _ in blocks], "o-", label=side)
        axes[1].plot(x, [w for _, w in blocks], "o-", label=side)
    axes[0].set_title("DExTra depth N_b")
    axes[1].set_title("widest DExTra layer")
    for ax in axes:
        ax.set_xlabel("block b")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.suptitle(f"block-wise scaling: {args.arch}")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


class _Help(argparse.RawDescriptionHelpFormatter):
    """The description as written; each option's default where it has one and its help does not say it."""

    def _split_lines(self, text, width):  # no break after a hyphen: en-de, data-bin stay whole
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if default is None or default is False or default is argparse.SUPPRESS or default == [] or "default" in text:
            return text
        return f"{text} (default: %(default)s)".strip()


def main(argv=None):
    curves_example = "python scripts/plot.py curves checkpoints/a/hydra_train.log checkpoints/b/hydra_train.log --out curves.png"
    scaling_example = "python scripts/plot.py scaling delight_transformer_wmt14_en_de_512 --out scaling.png"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help,
                                epilog=f"example:\n  {curves_example}\n  {scaling_example}")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="{curves,scaling}")
    s = sub.add_parser("curves", help="train/valid loss per update of one or more runs", formatter_class=_Help,
                       description="Train and valid loss per update, one line per run, labelled by the log's file name.",
                       epilog=f"example:\n  {curves_example}")
    s.add_argument("logs", nargs="+", help="fairseq logs (hydra_train.log, or fairseq-train --log-format simple output)")
    s.add_argument("--out", required=True, help="PNG to write")
    s.set_defaults(fn=curves)
    s = sub.add_parser("scaling", help="block-wise scaling of a preset", formatter_class=_Help,
                       description="Block-wise scaling of a delight_transformer or define_lm preset: each block's DExTra depth and widest layer.",
                       epilog=f"example:\n  {scaling_example}")
    s.add_argument("arch", help="a delight_transformer or define_lm preset, e.g. delight_transformer_wmt14_en_de_512")
    s.add_argument("--out", required=True, help="PNG to write")
    s.set_defaults(fn=scaling)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
