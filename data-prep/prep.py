#!/usr/bin/env python
"""Text steps shared by the data-prep scripts; each reads files and writes one output
atomically (``OUT.tmp`` then rename), so an interrupted step never leaves an output
that looks complete.

    python data-prep/prep.py iwslt-train TAGS_FILE OUT        # drop <url>, <talkid>, ... lines
    python data-prep/prep.py segments XML_OR_SGM... --out OUT  # text of every <seg> element
    python data-prep/prep.py tokenize LANG IN OUT [--lowercase] [--romanian] [--no-normalize]
    python data-prep/prep.py clean SRC TGT OUT_SRC OUT_TGT [--min 1] [--max 250] [--ratio 1.5]
    python data-prep/prep.py split-valid SRC TGT --every 100 --train-out P --valid-out P --src-lang L --tgt-lang L
    python data-prep/prep.py bpe-learn CODES --merges N INPUT...
    python data-prep/prep.py bpe-apply CODES IN OUT

Input that is not valid UTF-8 is decoded with replacement characters, never a crash.
"""
import argparse
import html
import os
import re
import sys
from contextlib import contextmanager

TAG_LINE = re.compile(r"^\s*<(url|talkid|keywords|speaker|reviewer|translator|title|description|doc|/doc|seg id)")
SEG = re.compile(r"<seg[^>]*>(.*?)</seg>", re.I)


def read_lines(path):
    with open(path, encoding="utf-8", errors="replace", newline="\n") as f:
        for line in f:
            yield line.rstrip("\n").rstrip("\r")


@contextmanager
def atomic_write(path):
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        yield f
    os.replace(tmp, path)


def iwslt_train(args):
    """IWSLT's train.tags.* files: metadata lines are XML tags, the rest is text."""
    with atomic_write(args.out) as out:
        for line in read_lines(args.tags):
            if not TAG_LINE.match(line):
                out.write(line.strip() + "\n")


def segments(args):
    """Text of every <seg> of IWSLT's .xml and WMT's .sgm files, in order."""
    with atomic_write(args.out) as out:
        for path in args.files:
            for line in read_lines(path):
                for text in SEG.findall(line):
                    out.write(html.unescape(text).strip() + "\n")


def normalise_romanian(text: str) -> str:
    """WMT'16 En-Ro recipe: cedilla letters to comma-below, then remove diacritics."""
    text = text.replace("\u015e", "\u0218").replace("\u015f", "\u0219")  # Ş ş -> Ș ș
    text = text.replace("\u0162", "\u021a").replace("\u0163", "\u021b")  # Ţ ţ -> Ț ț
    for src, dst in zip("ȘșȚțĂăÂâÎî", "SsTtAaAaIi"):
        text = text.replace(src, dst)
    return text


def tokenize(args):
    from sacremoses import MosesPunctNormalizer, MosesTokenizer

    normalizer = None if args.no_normalize else MosesPunctNormalizer(lang=args.lang)
    tokenizer = MosesTokenizer(lang=args.lang)
    with atomic_write(args.out) as out:
        for line in read_lines(args.input):
            if normalizer is not None:
                line = normalizer.normalize(line)
            if args.romanian:
                line = normalise_romanian(line)
            line = tokenizer.tokenize(line, aggressive_dash_splits=True, escape=False, return_str=True)
            out.write((line.lower() if args.lowercase else line) + "\n")


def clean(args):
    """Moses clean-corpus-n: drop pairs with an empty side, a side longer than --max
    tokens, or a length ratio above --ratio."""
    kept = dropped = 0
    with atomic_write(args.out_src) as fs, atomic_write(args.out_tgt) as ft:
        for s, t in zip(read_lines(args.src), read_lines(args.tgt)):
            ns, nt = len(s.split()), len(t.split())
            if args.min <= ns <= args.max and args.min <= nt <= args.max and max(ns, nt) <= args.ratio * min(ns, nt):
                fs.write(s + "\n")
                ft.write(t + "\n")
                kept += 1
            else:
                dropped += 1
    print(f"clean: kept {kept} pairs, dropped {dropped}", file=sys.stderr)


def split_valid(args):
    """Every --every-th pair goes to valid, the rest to train (the fairseq recipes)."""
    with atomic_write(f"{args.train_out}.{args.src_lang}") as ts, atomic_write(f"{args.train_out}.{args.tgt_lang}") as tt, \
            atomic_write(f"{args.valid_out}.{args.src_lang}") as vs, atomic_write(f"{args.valid_out}.{args.tgt_lang}") as vt:
        for i, (s, t) in enumerate(zip(read_lines(args.src), read_lines(args.tgt))):
            a, b = (vs, vt) if i % args.every == 0 else (ts, tt)
            a.write(s + "\n")
            b.write(t + "\n")


def bpe_learn(args):
    from subword_nmt.learn_bpe import learn_bpe

    tmp = f"{args.codes}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        learn_bpe(_joined(args.inputs), out, args.merges)
    os.replace(tmp, args.codes)


def _joined(paths):
    for path in paths:
        for line in read_lines(path):
            yield line + "\n"


def bpe_apply(args):
    from subword_nmt.apply_bpe import BPE

    with open(args.codes, encoding="utf-8") as codes:
        bpe = BPE(codes)
    with atomic_write(args.out) as out:
        for line in read_lines(args.input):
            out.write(bpe.process_line(line) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("iwslt-train")
    s.add_argument("tags")
    s.add_argument("out")
    s.set_defaults(fn=iwslt_train)
    s = sub.add_parser("segments")
    s.add_argument("files", nargs="+")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=segments)
    s = sub.add_parser("tokenize")
    s.add_argument("lang")
    s.add_argument("input")
    s.add_argument("out")
    s.add_argument("--lowercase", action="store_true")
    s.add_argument("--romanian", action="store_true", help="normalise cedillas and remove diacritics")
    s.add_argument("--no-normalize", action="store_true", help="skip Moses punctuation normalisation")
    s.set_defaults(fn=tokenize)
    s = sub.add_parser("clean")
    for name in ("src", "tgt", "out_src", "out_tgt"):
        s.add_argument(name)
    s.add_argument("--min", type=int, default=1)
    s.add_argument("--max", type=int, default=250)
    s.add_argument("--ratio", type=float, default=1.5)
    s.set_defaults(fn=clean)
    s = sub.add_parser("split-valid")
    s.add_argument("src")
    s.add_argument("tgt")
    s.add_argument("--every", type=int, required=True)
    for name in ("--train-out", "--valid-out", "--src-lang", "--tgt-lang"):
        s.add_argument(name, required=True)
    s.set_defaults(fn=split_valid)
    s = sub.add_parser("bpe-learn")
    s.add_argument("codes")
    s.add_argument("inputs", nargs="+")
    s.add_argument("--merges", type=int, required=True)
    s.set_defaults(fn=bpe_learn)
    s = sub.add_parser("bpe-apply")
    s.add_argument("codes")
    s.add_argument("input")
    s.add_argument("out")
    s.set_defaults(fn=bpe_apply)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
