#!/usr/bin/env python
"""Write a tiny synthetic language-modelling corpus: sentences from a sparse Markov
chain (each word has a few likely successors) over ``--vocab`` words, so a model that
learns the transitions reaches a perplexity far below the unigram perplexity.

    python scripts/make_toy_lm_data.py OUT_DIR [--train 3000] [--vocab 200] [--seed 1]

Writes ``OUT_DIR/{train,valid,test}.txt`` (one sentence a line) and prints the unigram
perplexity of the training text and the chain's own per-token perplexity.
"""
import argparse
import collections
import math
import os
import random
import textwrap


def build_chain(rng: random.Random, vocab: int, successors: int):
    """word -> (next words, probabilities); some words also end the sentence."""
    chain = {}
    for w in range(vocab):
        nxt = rng.sample(range(vocab), successors)
        weights = [rng.random() + 0.2 for _ in nxt]
        total = sum(weights)
        chain[w] = (nxt, [x / total for x in weights])
    return chain


def sentence(rng, chain, vocab, min_len, max_len):
    w = rng.randrange(vocab)
    words = [w]
    for _ in range(rng.randint(min_len, max_len) - 1):
        nxt, probs = chain[w]
        w = rng.choices(nxt, probs)[0]
        words.append(w)
    return " ".join(f"w{i}" for i in words)


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
                                epilog="example:\n  python scripts/make_toy_lm_data.py runs/toy_lm/raw --train 3000 --vocab 200 --seed 1")
    p.add_argument("out_dir", help="folder for {train,valid,test}.txt")
    p.add_argument("--train", type=int, default=3000, help="training sentences")
    p.add_argument("--valid", type=int, default=200, help="validation sentences")
    p.add_argument("--test", type=int, default=200, help="test sentences")
    p.add_argument("--vocab", type=int, default=200, help="distinct words")
    p.add_argument("--successors", type=int, default=3, help="likely successors of each word")
    p.add_argument("--min-len", type=int, default=8, help="shortest sentence (words)")
    p.add_argument("--max-len", type=int, default=20, help="longest sentence (words)")
    p.add_argument("--seed", type=int, default=1, help="random seed (same seed, same corpus)")
    args = p.parse_args(argv)
    rng = random.Random(args.seed)
    chain = build_chain(rng, args.vocab, args.successors)
    os.makedirs(args.out_dir, exist_ok=True)
    for split in ("train", "valid", "test"):
        lines = [sentence(rng, chain, args.vocab, args.min_len, args.max_len) for _ in range(getattr(args, split))]
        path = os.path.join(args.out_dir, f"{split}.txt")
        with open(path + ".tmp", "w") as f:
            f.writelines(line + "\n" for line in lines)
        os.replace(path + ".tmp", path)
    counts = collections.Counter(open(os.path.join(args.out_dir, "train.txt")).read().split())
    total = sum(counts.values())
    unigram_ppl = math.exp(-sum(c / total * math.log(c / total) for c in counts.values()))
    print(f"unigram perplexity of train.txt: {unigram_ppl:.1f} ({len(counts)} word types)")


if __name__ == "__main__":
    main()
