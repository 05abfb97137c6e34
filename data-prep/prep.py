#!/usr/bin/env python
"""Text steps shared by the data-prep scripts; each reads files and writes one output
atomically (``OUT.tmp`` then rename), so an interrupted step never leaves an output
that looks complete.

    python data-prep/prep.py iwslt-train TAGS_FILE OUT        # as fairseq's prepare-iwslt14.sh
    python data-prep/prep.py segments XML_OR_SGM... --out OUT [--plain]
    python data-prep/prep.py tokenize LANG IN OUT [--normalize] [--aggressive] [--lowercase] [--romanian] [--workers N]
    python data-prep/prep.py clean SRC TGT OUT_SRC OUT_TGT [--min 1] [--max 250] [--ratio 1.5]
    python data-prep/prep.py split-valid SRC TGT --every 100 --train-out P --valid-out P --src-lang L --tgt-lang L
    python data-prep/prep.py bpe-learn CODES --merges N INPUT...
    python data-prep/prep.py bpe-apply CODES IN OUT [--workers N]

The text steps do what the reference recipes' Moses scripts do (fairseq's
examples/translation/prepare-*.sh, which the authors' prepare scripts copy), with
sacremoses: tokenizer.perl with its default escaping (``-a`` is ``--aggressive``),
normalize-punctuation.perl and remove-non-printing-char.perl (``--normalize``),
lowercase.perl, clean-corpus-n.perl. ``--workers N`` splits a file into N contiguous
parts, processes them in parallel and joins them in order: the output is the same as
with one worker. Input that is not valid UTF-8 is decoded with replacement characters,
never a crash. Every step that reads a corpus shows its progress (a bar with its rate and ETA
on a terminal, a plain line every 30 s in a log: ``progress.py``) and ends with one line:
lines in, lines kept, time.
"""
import argparse
import html
import os
import re
import sys
from contextlib import contextmanager
from multiprocessing import Pool

import regex

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from progress import Progress, count_lines  # noqa: E402

IWSLT_DROP = ("<url>", "<talkid>", "<keywords>")  # fairseq: grep -v each
IWSLT_UNTAG = ("<title>", "</title>", "<description>", "</description>")  # fairseq: sed, the text stays
SEG_OPEN = re.compile(r'<seg id="[0-9]*">\s*')
SEG_CLOSE = re.compile(r"\s*</seg>\s*")
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
    """IWSLT's train.tags.* as fairseq's prepare-iwslt14.sh reads them: the <url>, <talkid>
    and <keywords> lines dropped, the <title> and <description> tags removed (their text kept)."""
    with atomic_write(args.out) as out:
        for line in read_lines(args.tags):
            if any(tag in line for tag in IWSLT_DROP):
                continue
            for tag in IWSLT_UNTAG:
                line = line.replace(tag, "")
            out.write(line + "\n")


def segments(args):
    """The text of every ``<seg id=...>`` line of IWSLT's .xml and WMT's .sgm files, in
    order, as the reference scripts' grep/sed take it (’ becomes '); with ``--plain`` the
    segment's text unescaped and untouched otherwise (the references to score against)."""
    with atomic_write(args.out) as out:
        for path in args.files:
            for line in read_lines(path):
                if args.plain:
                    for text in SEG.findall(line):
                        out.write(html.unescape(text).strip() + "\n")
                elif "<seg id" in line:
                    out.write(SEG_CLOSE.sub("", SEG_OPEN.sub("", line)).replace("\u2019", "'") + "\n")


def normalise_romanian(text: str) -> str:
    """WMT'16 En-Ro recipe: cedilla letters to comma-below, then remove diacritics."""
    text = text.replace("\u015e", "\u0218").replace("\u015f", "\u0219")  # Ş ş -> Ș ș
    text = text.replace("\u0162", "\u021a").replace("\u0163", "\u021b")  # Ţ ţ -> Ț ț
    for src, dst in zip("ȘșȚțĂăÂâÎî", "SsTtAaAaIi"):
        text = text.replace(src, dst)
    return text


NON_PRINTING = regex.compile(r"\p{C}")  # remove-non-printing-char.perl's class (a sacremoses dependency)


class Tokenizer:
    """One line through the Moses steps ``args`` asks for (built once per worker)."""

    def __init__(self, lang, normalize, aggressive, lowercase, romanian):
        from sacremoses import MosesPunctNormalizer, MosesTokenizer

        self.normalizer = MosesPunctNormalizer(lang=lang) if normalize else None
        self.tokenizer = MosesTokenizer(lang=lang)
        self.aggressive, self.lowercase, self.romanian = aggressive, lowercase, romanian

    def __call__(self, line: str) -> str:
        if self.normalizer is not None:
            line = NON_PRINTING.sub(" ", self.normalizer.normalize(line))  # remove-non-printing-char.perl: \p{C} -> space
        if self.romanian:
            line = normalise_romanian(line)
        line = self.tokenizer.tokenize(line, aggressive_dash_splits=self.aggressive, escape=True, return_str=True)
        return line.lower() if self.lowercase else line


_worker_fn = None


def _init_worker(factory, factory_args):
    global _worker_fn
    _worker_fn = factory(*factory_args)


def _run_chunk(lines):
    return [_worker_fn(line) for line in lines]


CHUNK = 2000  # lines a worker takes at a time (progress is counted per chunk)


def map_lines(factory, factory_args, path, out_path, workers: int, what: str):
    """``factory(*factory_args)`` applied to every line of ``path``, in chunks over ``workers``
    processes, written in order (the same output as one worker); progress shown as ``what``."""
    lines = list(read_lines(path))
    chunks = [lines[i:i + CHUNK] for i in range(0, len(lines), CHUNK)]
    progress = Progress(what, total=len(lines))
    with atomic_write(out_path) as out:
        if workers <= 1 or len(chunks) < 2:
            fn = factory(*factory_args)
            results = ([fn(line) for line in chunk] for chunk in chunks)
            pool = None
        else:
            pool = Pool(workers, initializer=_init_worker, initargs=(factory, factory_args))
            results = pool.imap(_run_chunk, chunks)
        try:
            for chunk in results:
                out.write("".join(line + "\n" for line in chunk))
                progress.update(len(chunk))
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    progress.close(kept=len(lines))


def tokenize(args):
    map_lines(Tokenizer, (args.lang, args.normalize, args.aggressive, args.lowercase, args.romanian),
              args.input, args.out, args.workers, f"tokenize {os.path.basename(args.input)}")


def pair_kept(ns: int, nt: int, lo: int, hi: int, ratio: float) -> bool:
    """Moses clean-corpus-n's rule for a pair of ``ns`` and ``nt`` tokens: each side ``lo``..``hi``
    tokens long and neither more than ``ratio`` times the other."""
    return lo <= ns <= hi and lo <= nt <= hi and max(ns, nt) <= ratio * min(ns, nt)


def clean(args):
    """Moses clean-corpus-n: drop pairs with an empty side, a side longer than --max
    tokens, or a length ratio above --ratio."""
    kept = dropped = 0
    progress = Progress(f"clean {os.path.basename(args.src)}", total=count_lines(args.src))
    with atomic_write(args.out_src) as fs, atomic_write(args.out_tgt) as ft:
        for s, t in zip(read_lines(args.src), read_lines(args.tgt)):
            progress.update()
            s, t = " ".join(s.split()), " ".join(t.split())  # clean-corpus-n.perl collapses whitespace
            ns, nt = len(s.split()), len(t.split())
            if pair_kept(ns, nt, args.min, args.max, args.ratio):
                fs.write(s + "\n")
                ft.write(t + "\n")
                kept += 1
            else:
                dropped += 1
    progress.close(kept=kept, detail=f"{dropped:,} dropped (1-{args.max} tokens, ratio <= {args.ratio})")


def split_valid(args):
    """Every --every-th pair goes to valid (lines every, 2*every, ... counted from 1: awk's
    NR%every==0 in the reference scripts), the rest to train."""
    with atomic_write(f"{args.train_out}.{args.src_lang}") as ts, atomic_write(f"{args.train_out}.{args.tgt_lang}") as tt, \
            atomic_write(f"{args.valid_out}.{args.src_lang}") as vs, atomic_write(f"{args.valid_out}.{args.tgt_lang}") as vt:
        for i, (s, t) in enumerate(zip(read_lines(args.src), read_lines(args.tgt))):
            a, b = (vs, vt) if (i + 1) % args.every == 0 else (ts, tt)
            a.write(s + "\n")
            b.write(t + "\n")


def bpe_learn(args):
    from subword_nmt.learn_bpe import learn_bpe

    tmp = f"{args.codes}.tmp"
    progress = Progress(f"learn BPE ({args.merges:,} merges)", total=None)
    with open(tmp, "w", encoding="utf-8") as out:
        learn_bpe(_joined(args.inputs, progress), out, args.merges)
    os.replace(tmp, args.codes)
    progress.close()


def _joined(paths, progress):
    for path in paths:
        for line in read_lines(path):
            progress.update()
            yield line + "\n"


class BPEApplier:
    def __init__(self, codes_path):
        from subword_nmt.apply_bpe import BPE

        with open(codes_path, encoding="utf-8") as codes:
            self.bpe = BPE(codes)

    def __call__(self, line: str) -> str:
        return self.bpe.process_line(line)


def bpe_apply(args):
    map_lines(BPEApplier, (args.codes,), args.input, args.out, args.workers, f"apply BPE {os.path.basename(args.input)}")


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
    s.add_argument("--plain", action="store_true", help="unescaped segment text, for scoring")
    s.set_defaults(fn=segments)
    s = sub.add_parser("tokenize")
    s.add_argument("lang")
    s.add_argument("input")
    s.add_argument("out")
    s.add_argument("--normalize", action="store_true", help="Moses punctuation normalisation and non-printing characters removed")
    s.add_argument("--aggressive", action="store_true", help="split hyphens (tokenizer.perl -a)")
    s.add_argument("--lowercase", action="store_true")
    s.add_argument("--romanian", action="store_true", help="normalise cedillas and remove diacritics")
    s.add_argument("--workers", type=int, default=1)
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
    s.add_argument("--workers", type=int, default=1)
    s.set_defaults(fn=bpe_apply)
    args = p.parse_args(argv)
    args.fn(args)


if __name__ == "__main__":
    main()
