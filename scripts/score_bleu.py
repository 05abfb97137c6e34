#!/usr/bin/env python
"""BLEU of a fairseq-generate output, the two ways the papers report it.

    python scripts/score_bleu.py GENERATE_OUTPUT --lang de [--compound-split] [--romanian] [--raw-ref FILE]

- detokenised: hypotheses Moses-detokenised, scored by sacrebleu against the raw
  references (``--raw-ref``, one line per test sentence) or the detokenised references;
- tokenised: the tokenised text as fairseq prints it (BPE removed), as multi-bleu.perl
  scores it; with ``--compound-split`` hyphenated compounds are split first
  (``a-b -> a ##AT##-##AT## b``), the WMT'14 En-De convention of Vaswani et al.

``--detokenized``: the hypotheses are raw text already (SentencePiece's, generated with
``--post-process sentencepiece``), scored as they are. The detokenised score prints
sacreBLEU's signature.

With ``--romanian`` both sides get the WMT'16 Romanian normalisation of the data-prep
(cedillas to commas below, diacritics removed): the model learned targets without
diacritics, so scoring them against references with diacritics costs several points.

Generate with ``--remove-bpe`` (or ``--post-process``) so that H-/T- lines are words.
"""
import argparse
import importlib.util
import re
import textwrap
from pathlib import Path

import sacrebleu
from sacremoses import MosesDetokenizer

COMPOUND = re.compile(r"(?<=\S)-(?=\S)")


def read_generate(path):
    hyps, refs = {}, {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("H-"):
                idx, _score, text = line.rstrip("\n").split("\t", 2)
                hyps[int(idx[2:])] = text
            elif line.startswith("T-"):
                idx, text = line.rstrip("\n").split("\t", 1)
                refs[int(idx[2:])] = text
    if not hyps:
        raise SystemExit(f"score_bleu: no H- lines in {path}: is it fairseq-generate's output?")
    ids = sorted(hyps)
    return ids, [hyps[i] for i in ids], [refs.get(i, "") for i in ids]


def compound_split(line: str) -> str:
    return COMPOUND.sub(" ##AT##-##AT## ", line)


def romanian_normaliser():
    """``normalise_romanian`` of data-prep/prep.py (one definition for both)."""
    spec = importlib.util.spec_from_file_location("prep", Path(__file__).resolve().parents[1] / "data-prep" / "prep.py")
    prep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prep)
    return prep.normalise_romanian


def scores(ids, hyps, refs, lang, compound=False, raw_refs=None, romanian=False, detokenized=False):
    detok = MosesDetokenizer(lang=lang)
    hyp_detok = hyps if detokenized else [detok.detokenize(h.split()) for h in hyps]
    ref_detok = [raw_refs[i] for i in ids] if raw_refs is not None else [detok.detokenize(r.split()) for r in refs]
    if romanian:
        normalise = romanian_normaliser()
        hyp_detok, ref_detok = [normalise(h) for h in hyp_detok], [normalise(r) for r in ref_detok]
    split = compound_split if compound else (lambda s: s)
    bleu = sacrebleu.metrics.BLEU()
    return {
        "detok": bleu.corpus_score(hyp_detok, [ref_detok]).score,
        "signature": str(bleu.get_signature()),
        "tok": sacrebleu.corpus_bleu([split(h) for h in hyps], [[split(r) for r in refs]], tokenize="none").score,
    }


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
                                epilog="example:\n  python scripts/score_bleu.py checkpoints/wmt14_en_de-wmt14_en_de_512/generate-test.txt --lang de --compound-split")
    p.add_argument("generate_output", help="what fairseq-generate printed (S-, T-, H- lines)")
    p.add_argument("--lang", required=True, help="target language (for detokenisation)")
    p.add_argument("--compound-split", action="store_true", help="split compounds (##AT##-##AT##) in the tokenised score, as for WMT'14 En-De")
    p.add_argument("--romanian", action="store_true", help="remove Romanian diacritics on both sides (WMT'16 En-Ro)")
    p.add_argument("--raw-ref", help="raw (untokenised) references, one per line, in test-set order")
    p.add_argument("--detokenized", action="store_true",
                   help="the hypotheses are raw text already (--post-process sentencepiece): no Moses detokenizer")
    args = p.parse_args(argv)
    ids, hyps, refs = read_generate(args.generate_output)
    raw = None
    if args.raw_ref:
        raw = open(args.raw_ref, encoding="utf-8", errors="replace").read().splitlines()
        if max(ids) >= len(raw):
            raise SystemExit(f"score_bleu: {args.raw_ref} has {len(raw)} lines, the output needs {max(ids) + 1}")
    s = scores(ids, hyps, refs, args.lang, args.compound_split, raw, args.romanian, args.detokenized)
    print(f"sentences {len(ids)}")
    print(f"BLEU (detokenised, sacrebleu) {s['detok']:.2f}  [{s['signature']}]")
    print(f"BLEU (tokenised{', compound-split' if args.compound_split else ''}) {s['tok']:.2f}")


if __name__ == "__main__":
    main()
