#!/usr/bin/env python
"""What one training forward pass leaves for backward: DeLighT vs fairseq's transformer side by
side, and what each of the plugin's memory savings buys; prints ratios.

    python benchmarks/kept_memory.py [--pairing matched|paper] [--batch 64 --length 32] [--smoke]

Variants (the pairings of ``benchmarks/train_step.py``):
  transformer       fairseq's transformer;
  delight           DeLighT as the plugin runs it;
  no recipes        DeLighT with ``recompute.recomputed`` off: the layer reading a norm's, a
                    DExTra's or the light FFN activation's output keeps its own copy of it;
  no recipes, no lean GLT   and every GLT layer keeping its input, map output and norm output
                    (``GroupLinear.recompute`` off, no norm inside the next layer's map).
Each runs in its own process on the CPU under ``train_step.LIVE_MEMORY_ENV`` (freed tensors go
back to the system at once), so that resident memory follows the memory in use; the figure is
the resident memory after the forward pass and the loss minus that before, median of 3 steps.
--smoke: the tiny models of ``train_step.py --smoke`` (a check that the script runs).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap
from contextlib import nullcontext
from typing import Callable, ContextManager

import torch
import torch.nn.functional as F


import train_step

VARIANTS = ("transformer", "delight", "no recipes", "no recipes, no lean GLT")


def _resident_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _strip_savings(variant: str) -> Callable[[], ContextManager]:
    """Turn the plugin's savings off for ``variant`` (in this process only); returns what makes
    the context to run each forward pass in."""
    from delight_fairseq.modules import group_linear
    from delight_fairseq.modules.recompute import keeping_copies

    if variant == "no recipes, no lean GLT":
        group_linear.GroupLinear.recompute = property(lambda self: False, lambda self, v: None)
    return keeping_copies if variant in ("no recipes", "no recipes, no lean GLT") else nullcontext


def child(variant: str, pairing: str, batch: int, length: int, smoke: bool = False) -> float:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    vocab, specs = train_step.pairing(pairing, smoke=smoke)
    kind, name, vocab, dim, overrides = specs["transformer" if variant == "transformer" else "delight"]
    savings = nullcontext
    if kind == "delight":
        savings = _strip_savings(variant)
        model = train_step.build_delight(name, vocab, **overrides)
    else:
        model = train_step.build_transformer(vocab, dim, name)
    src, prev = torch.randint(4, vocab, (batch, length)), torch.randint(4, vocab, (batch, length))
    lengths = torch.full((batch,), length)
    kept = []
    for step in range(5):
        before = _resident_mib()
        with savings():
            logits = model(src, lengths, prev)[0]
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), prev.view(-1))
        del logits
        if step >= 2:  # the first two warm up
            kept.append(_resident_mib() - before)
        loss.backward()
        model.zero_grad(set_to_none=True)
        del loss
    return statistics.median(kept)


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
                                epilog="example:\n  python benchmarks/kept_memory.py --pairing matched --batch 64 --length 32")
    p.add_argument("--pairing", choices=["matched", "paper"], default="matched", help="matched parameters, or the paper's 37M vs 62M")
    p.add_argument("--batch", type=int, default=64, help="sentences per batch")
    p.add_argument("--length", type=int, default=32, help="tokens per sentence")
    p.add_argument("--smoke", action="store_true", help="tiny models (a check that the script runs)")
    p.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.pairing, args.batch, args.length, args.smoke)))
        return
    env = {**os.environ, **train_step.LIVE_MEMORY_ENV}
    kept = {}
    for variant in VARIANTS:
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--pairing", args.pairing,
                              "--batch", str(args.batch), "--length", str(args.length)] + ["--smoke"] * args.smoke,
                             env=env, capture_output=True, text=True, check=True).stdout
        kept[variant] = json.loads(out.strip().splitlines()[-1])
    print(f"pairing {args.pairing}: {args.batch} x {args.length} target tokens, float32, cpu; memory a training "
          f"forward pass leaves for backward (resident, freed memory returned at once), median of 3 steps")
    for variant in VARIANTS:
        print(f"  {variant:<26} {kept[variant]:8.0f} MiB  {kept[variant] / kept['transformer']:5.2f}x the transformer")


if __name__ == "__main__":
    main()
