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
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_step import build_delight, build_transformer, matched_transformer_dim, n_params  # noqa: E402


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairing", choices=["matched", "paper"], default="matched")
    p.add_argument("--vocab", type=int, help="dictionary size (default 10,000 matched, 43,736 paper)")
    p.add_argument("--batch", type=int, default=32, help="sentences per generate() call")
    p.add_argument("--src-len", type=int, default=24)
    p.add_argument("--tgt-len", type=int, default=24)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args(argv)
    torch.manual_seed(0)
    if args.pairing == "matched":
        vocab = args.vocab or 10000
        delight = build_delight("delight_transformer_wmt14_en_de_256", vocab)
        transformer = build_transformer(vocab, matched_transformer_dim(n_params(delight), vocab))
    else:
        vocab = args.vocab or 43736
        delight = build_delight("delight_transformer_wmt14_en_de_512", vocab)
        transformer = build_transformer(vocab, arch="transformer_wmt_en_de")
    models = {"delight": delight.to(args.device).eval(), "transformer": transformer.to(args.device).eval()}
    speeds = {k: [] for k in models}
    for _ in range(args.rounds):
        for k, model in models.items():
            speeds[k].append(sentences_per_second(model, args.batch, args.src_len, args.tgt_len, args.beam,
                                                  args.device, args.steps))
    print(f"pairing {args.pairing}: beam {args.beam}, {args.batch} sentences of {args.src_len} -> {args.tgt_len} "
          f"tokens per call, vocab {vocab}, {args.device}, {torch.get_num_threads()} threads, "
          f"median of {args.rounds} rounds x {args.steps} calls")
    med = {k: statistics.median(v) for k, v in speeds.items()}
    for k, model in models.items():
        print(f"  {k:<12} {n_params(model) / 1e6:7.2f}M params  {med[k]:8.1f} sentences/s")
    print(f"delight / transformer: params {n_params(delight) / n_params(transformer):.2f}x, "
          f"sentences/s {med['delight'] / med['transformer']:.2f}x")


if __name__ == "__main__":
    main()
