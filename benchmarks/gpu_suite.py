#!/usr/bin/env python
"""Every benchmark of ``benchmarks/`` in one run on one GPU, printed as one table (and saved as
JSON): the GLT kernels, DExTra against the authors' formulation (eager and torch.compile),
the training step at the matched and the paper pairing in fp32 / bf16 / fp16 (loss scaling),
DeLighT with and without activation checkpointing, beam-5 translation, and the hours each
translation recipe would take on the authors' GPU counts at the measured rate.

    bash benchmarks/gpu_suite.sh            # on a CUDA machine, ~8 minutes
    bash benchmarks/gpu_suite.sh --smoke    # tiny sizes, any device: the same code path (CI, on the CPU)

Ratios are DeLighT / transformer (or plugin / authors' formulation) measured side by side in
this run; absolute numbers depend on the card.
"""
import argparse
import json
import statistics
import sys
import textwrap
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent

import dextra as dextra_bench
import glt_kernels
import inference
import train_step

# the translation recipes (README, "Reproducing the papers"): preset, tokens to train on, the authors' GPUs
RECIPES = {
    "WMT'14 En-De (d_m 512)": ("delight_transformer_wmt14_en_de_512", 43_736, 30_000 * 524_288, 8),
    "WMT'14 En-Fr (d_m 512)": ("delight_transformer_wmt14_en_fr_512", 44_512, 50_000 * 524_288, 8),
    "WMT'16 En-Ro (d_m 384)": ("delight_transformer_wmt16_en_ro_384", 34_968, 100_000 * 32_768, 8),
    "IWSLT'14 De-En": ("delight_transformer_iwslt_de_en", 8_848, 50_000 * 4_096, 1),
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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help,
                                epilog="example:\n  python benchmarks/gpu_suite.py --smoke --out gpu_suite.json")
    p.add_argument("--smoke", action="store_true", help="tiny sizes on any device (a check that it all runs)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (cuda when available)")
    p.add_argument("--out", type=Path, default=Path("gpu_suite.json"), help="where to write the numbers (JSON)")
    args = p.parse_args(argv)
    smoke, device = args.smoke, args.device
    start = time.time()
    rows, record = [], {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
                        "torch": torch.__version__, "smoke": smoke}

    def section(title):
        print(f"\n## {title}  ({time.time() - start:.0f} s)", flush=True)

    def row(*cells):
        rows.append(cells)
        print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)

    # 1. GLT kernels
    section("GLT kernels, forward + backward, time relative to bmm")
    arch = "delight_transformer_wmt14_en_de_128" if smoke else "delight_transformer_wmt14_en_de_512"
    relative = glt_kernels.measure(arch, 64 if smoke else 8192, device, 1 if smoke else 20)
    record["glt_kernels"] = relative
    for kernel, ratio in relative.items():
        row("GLT kernel", kernel, f"{ratio:.2f}x")

    # 2. DExTra: plugin vs the authors' formulation, eager and compiled
    section("DExTra forward + backward (ms), plugin vs the authors' formulation")
    shapes = dextra_bench.SMOKE_SHAPES if smoke else dextra_bench.SHAPES
    dextra_rows = dextra_bench.measure(shapes, 64 if smoke else 8192, 1 if smoke else 10, 1 if smoke else 3, device,
                                       compile="aot_eager" if smoke else "inductor", log=lambda line: None)
    record["dextra"] = [dict(name=n, **ms) for n, _, ms in dextra_rows]
    for name, _, ms in dextra_rows:
        row("DExTra", name, f"authors' {ms['naive']:.2f} ms", f"plugin {ms['plugin']:.2f} ms ({ms['naive'] / ms['plugin']:.2f}x)",
            f"unfused {ms['unfused']:.2f} ms ({ms['naive'] / ms['unfused']:.2f}x)",
            f"compiled {ms['compiled']:.2f} ms ({ms['naive'] / ms['compiled']:.2f}x)")
    record["dextra_speedup"] = statistics.geometric_mean(ms["naive"] / ms["plugin"] for _, _, ms in dextra_rows)
    row("DExTra", "geometric mean", f"plugin {record['dextra_speedup']:.2f}x the authors'")

    # 3. training step: pairings x precisions, DeLighT with and without activation checkpointing
    section("training step: tokens/s and peak memory, DeLighT / transformer")
    batch, length, steps = (4, 8, 1) if smoke else (128, 32, 10)
    precisions = ["fp32", "bf16"] if smoke and device == "cpu" else ["fp32", "bf16", "fp16"]
    record["train_step"] = []
    threads, spawn = torch.get_num_threads(), not smoke  # each model in its own process: its peak memory
    for pairing in ["matched"] if smoke else ["matched", "paper"]:
        vocab, specs = train_step.pairing(pairing, smoke=smoke)
        for precision in precisions:
            plain = train_step.compare(specs, batch, length, steps, 1, device, threads, precision, spawn=spawn)
            ckpt = train_step.compare({"delight": specs["delight"]}, batch, length, steps, 1, device, threads,
                                      precision, checkpoint=True, spawn=spawn)["delight"]
            (_, td, md), (_, tt, mt) = plain["delight"], plain["transformer"]
            record["train_step"].append(dict(pairing=pairing, precision=precision, delight=plain["delight"],
                                             transformer=plain["transformer"], delight_checkpointed=ckpt))
            row("train step", pairing, precision, f"tokens/s {td:,.0f} / {tt:,.0f} = {td / tt:.2f}x",
                f"memory {md / 2**20:,.0f} / {mt / 2**20:,.0f} MiB = {md / mt:.2f}x",
                f"checkpointed: {ckpt[1]:,.0f} tokens/s, {ckpt[2] / 2**20:,.0f} MiB = {ckpt[2] / mt:.2f}x")

    # 4. beam-5 inference
    section("beam-5 translation, sentences/s, DeLighT / transformer")
    record["inference"] = {}
    for pairing in ["matched"] if smoke else ["matched", "paper"]:
        _, med = inference.compare(pairing, batch=4 if smoke else 64, src_len=6 if smoke else 24,
                                   tgt_len=6 if smoke else 24, steps=1, rounds=1 if smoke else 2, device=device,
                                   smoke=smoke)
        (_, sd), (_, st) = med["delight"], med["transformer"]
        record["inference"][pairing] = med
        row("beam 5", pairing, f"{sd:,.1f} / {st:,.1f} sentences/s = {sd / st:.2f}x")

    # 5. hours per recipe on the authors' GPU counts, at this card's fp32 rate (their precision)
    section("hours per translation recipe at the measured rate (fp32, one GPU's rate x the authors' GPUs)")
    record["recipes"] = {}
    for name, (arch, vocab, tokens, gpus) in list(RECIPES.items())[:1 if smoke else None]:
        spec = ("delight", arch, 500 if smoke else vocab, None, train_step.SMOKE_DELIGHT if smoke else {})
        _, tps, _ = train_step.compare({"delight": spec}, batch, length, steps, 1, device, threads,
                                       spawn=spawn)["delight"]
        hours = tokens / (tps * gpus) / 3600
        record["recipes"][name] = dict(tokens_per_s=tps, gpus=gpus, hours=hours)
        row("recipe", name, f"{tps:,.0f} tokens/s per GPU", f"{gpus} GPU(s)", f"{hours:,.1f} h")

    record["seconds"] = time.time() - start
    args.out.write_text(json.dumps(record, indent=1, default=str))
    print(f"\n{len(rows)} rows in {record['seconds']:.0f} s on {record['device']} (torch {record['torch']}); "
          f"numbers in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
