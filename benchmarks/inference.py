#!/usr/bin/env python
"""DeLighT vs fairseq's transformer: beam-5 translation speed (sentences/s) with
incremental decoding, through fairseq's own ``SequenceGenerator``, measured side by side
in one process; prints ratios.

    python benchmarks/inference.py [--pairing matched|paper] [--batch 32] [--src-len 24 --tgt-len 24]

The pairings are those of ``benchmarks/train_step.py`` (matched parameters; the paper's
DeLighT 37M vs transformer base 62M). The models are untrained, so every hypothesis is
forced to exactly ``--tgt-len`` tokens (``min_len = max_len``): both models decode the
same number of steps for the same beams.
"""
import argparse
import statistics
import textwrap
import time

import torch


from train_step import build_delight, build_transformer, n_params, pairing


def sentences_per_second(model, batch, src_len, tgt_len, beam, device, steps):
    from fairseq.sequence_generator import SequenceGenerator

    dictionary = model.decoder.dictionary
    generator = SequenceGenerator([model], dictionary, beam_size=beam, max_len_a=0, max_len_b=tgt_len,
                                  min_len=tgt_len)
    g = torch.Generator().manual_seed(0)
    src = torch.randint(dictionary.nspecial, len(dictionary), (batch, src_len), generator=g).to(device)
    sample = {"net_input": {"src_tokens": src, "src_lengths": torch.full((batch,), src_len, device=device)}}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    with torch.inference_mode():
        hypos = generator.generate([model], sample)
        assert all(len(h[0]["tokens"]) == tgt_len + 1 for h in hypos)  # + EOS
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            generator.generate([model], sample)
        sync()
    return batch * steps / (time.perf_counter() - start)


def compare(name, vocab=None, batch=32, src_len=24, tgt_len=24, beam=5, steps=2, rounds=3, device="cpu", smoke=False):
    """``(vocab, {"delight": (params, sentences/s), "transformer": ...})``, medians of ``rounds``."""
    vocab, specs = pairing(name, vocab, smoke)
    models = {}
    for key, (kind, arch, v, dim, overrides) in specs.items():
        model = build_delight(arch, v, **overrides) if kind == "delight" else build_transformer(v, dim, arch)
        models[key] = model.to(device).eval()
    speeds = {k: [] for k in models}
    for _ in range(rounds):
        for k, model in models.items():
            speeds[k].append(sentences_per_second(model, batch, src_len, tgt_len, beam, device, steps))
    return vocab, {k: (n_params(models[k]), statistics.median(v)) for k, v in speeds.items()}


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
                                epilog="example:\n  python benchmarks/inference.py --pairing paper --batch 32 --device cuda")
    p.add_argument("--pairing", choices=["matched", "paper"], default="matched", help="matched parameters, or the paper's 37M vs 62M")
    p.add_argument("--vocab", type=int, help="dictionary size (default: 10,000 matched, 43,736 paper)")
    p.add_argument("--batch", type=int, default=32, help="sentences per generate() call")
    p.add_argument("--src-len", type=int, default=24, help="source tokens per sentence")
    p.add_argument("--tgt-len", type=int, default=24, help="target tokens every hypothesis is forced to")
    p.add_argument("--beam", type=int, default=5, help="beam size")
    p.add_argument("--steps", type=int, default=2, help="generate() calls per timing")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (cuda when available)")
    p.add_argument("--smoke", action="store_true", help="tiny models (a check that the script runs)")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    vocab, med = compare(args.pairing, args.vocab, args.batch, args.src_len, args.tgt_len, args.beam, args.steps,
                         args.rounds, args.device, args.smoke)
    print(f"pairing {args.pairing}: beam {args.beam}, {args.batch} sentences of {args.src_len} -> {args.tgt_len} "
          f"tokens per call, vocab {vocab}, {args.device}, {torch.get_num_threads()} threads, "
          f"median of {args.rounds} rounds x {args.steps} calls")
    for k, (params, speed) in med.items():
        print(f"  {k:<12} {params / 1e6:7.2f}M params  {speed:8.1f} sentences/s")
    (pd, sd), (pt, st) = med["delight"], med["transformer"]
    print(f"delight / transformer: params {pd / pt:.2f}x, sentences/s {sd / st:.2f}x")


if __name__ == "__main__":
    main()
