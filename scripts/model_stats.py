#!/usr/bin/env python
"""Parameters and MACs of a delight_transformer preset or checkpoint (the authors' counting,
``delight_fairseq/analysis/stats.py``).

    python scripts/model_stats.py --arch delight_transformer_wmt14_en_de_512 [--src-len 20 --tgt-len 20]
    python scripts/model_stats.py --checkpoint checkpoints/x/checkpoint_best.pt
"""
import argparse
import sys
import textwrap


from delight_fairseq import ConfigError
from delight_fairseq.models.factory import build_from_arch, build_from_checkpoint
from delight_fairseq.analysis.stats import format_table, translation_stats


def parse_value(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(value.lower(), value)


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
                                epilog="example:\n  python scripts/model_stats.py --arch delight_transformer_wmt14_en_de_512 --src-len 20 --tgt-len 20")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--arch", help="a registered preset, e.g. delight_transformer_wmt14_en_de_512")
    src.add_argument("--checkpoint", help="a checkpoint written by fairseq-train")
    p.add_argument("--vocab", type=int, help="(joined) source dictionary size (default: the preset's published one)")
    p.add_argument("--tgt-vocab", type=int, help="target dictionary size when not joined (default: the source's)")
    p.add_argument("--src-len", type=int, default=20, help="source sentence length (tokens) the MACs are counted for")
    p.add_argument("--tgt-len", type=int, default=20, help="target sentence length (tokens) the MACs are counted for")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, e.g. encoder_blocks=4 (default: none)")
    args = p.parse_args(argv)
    try:
        if args.checkpoint:
            model, name = build_from_checkpoint(args.checkpoint), args.checkpoint
            if getattr(model, "encoder", None) is None:
                raise ConfigError(f"{name} is a language model; this counts translation models (delight_transformer)")
        else:
            from delight_fairseq.models.delight_transformer import PRESETS

            preset = PRESETS.get(args.arch)
            vocab = args.vocab or (preset.vocab if preset else None)
            if vocab is None:
                raise ConfigError("give --vocab (the dictionary size)")
            tgt_vocab = args.tgt_vocab
            if tgt_vocab is None and args.vocab is None and preset is not None:
                tgt_vocab = preset.tgt_vocab  # separate dictionaries (IWSLT)
            overrides = {key: parse_value(value) for key, _, value in (item.partition("=") for item in args.set)}
            model, name = build_from_arch(args.arch, vocab, tgt_vocab, overrides), args.arch
    except ConfigError as e:
        print(f"model_stats: {e}", file=sys.stderr)
        return 1
    print(format_table(name, translation_stats(model, args.src_len, args.tgt_len), args.src_len, args.tgt_len))
    return 0


if __name__ == "__main__":
    sys.exit(main())
