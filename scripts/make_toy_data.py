#!/usr/bin/env python
"""Write a tiny synthetic translation corpus: the target is the source reversed, each
word mapped to its "translation" (``a3`` -> ``B3``). Learnable in a few CPU minutes,
impossible by copying. Deterministic for a given seed.

    python scripts/make_toy_data.py OUT_DIR [--train 2000] [--vocab 24] [--seed 1]

Writes ``OUT_DIR/{train,valid,test}.{src,tgt}``.
"""
import argparse
import os
import random
import textwrap


def make_pair(rng: random.Random, vocab: int, min_len: int, max_len: int):
    ids = [rng.randrange(vocab) for _ in range(rng.randint(min_len, max_len))]
    return " ".join(f"a{i}" for i in ids), " ".join(f"B{i}" for i in reversed(ids))


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
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help,
                                epilog="example:\n  python scripts/make_toy_data.py runs/toy/raw --train 2000 --vocab 24 --seed 1")
    p.add_argument("out_dir", help="folder for {train,valid,test}.{src,tgt}")
    p.add_argument("--train", type=int, default=2000, help="training pairs")
    p.add_argument("--valid", type=int, default=100, help="validation pairs")
    p.add_argument("--test", type=int, default=100, help="test pairs")
    p.add_argument("--vocab", type=int, default=24, help="distinct source words")
    p.add_argument("--min-len", type=int, default=3, help="shortest sentence (words)")
    p.add_argument("--max-len", type=int, default=8, help="longest sentence (words)")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same corpus)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    for split in ("train", "valid", "test"):
        pairs = [make_pair(rng, args.vocab, args.min_len, args.max_len) for _ in range(getattr(args, split))]
        for side, col in (("src", 0), ("tgt", 1)):
            path = os.path.join(args.out_dir, f"{split}.{side}")
            with open(path + ".tmp", "w") as f:
                f.writelines(pair[col] + "\n" for pair in pairs)
            os.replace(path + ".tmp", path)  # never leave a half-written split behind


if __name__ == "__main__":
    main()
