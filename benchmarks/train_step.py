#!/usr/bin/env python
"""DeLighT vs fairseq's transformer: training-step throughput (forward + backward + Adam)
and peak memory, measured side by side in one run; prints ratios.

    python benchmarks/train_step.py [--pairing matched|paper] [--vocab 10000] [--batch 64 --length 32]
        [--precision fp32|bf16|fp16] [--checkpoint-activations] [--live-memory] [--device cuda]

--pairing matched: delight_transformer_wmt14_en_de_256 vs a 6+6-layer transformer whose width
  is chosen to have the same number of parameters (same vocabulary, shared embeddings);
--pairing paper:   delight_transformer_wmt14_en_de_512 (37M) vs transformer_wmt_en_de (62M),
  the pair the DeLighT paper reports at equal BLEU (vocabulary 43,736).
Both models run without any dropout (``NO_DROPOUT``). Each model runs in its own process
(peak resident memory per model on the CPU; peak allocated memory on CUDA); the two
alternate --rounds times and the median is reported.
--precision bf16 / fp16 runs the step under torch.autocast (fp16 with a gradient scaler, as
fairseq's --amp); --checkpoint-activations recomputes DeLighT's blocks in backward (the
transformer stays without, as the memory target compares them). --live-memory (CPU): the
peak of memory in use, as CUDA's max_memory_allocated counts it, rather than also what the C
library's heap keeps of freed tensors (which depends on the order of allocations and differs
between the models); it slows the steps. --smoke: tiny models, the same code (CI runs it on
the CPU).
"""
import argparse
import multiprocessing as mp
import os
import resource
import statistics
import textwrap
import time

import torch
import torch.nn.functional as F



def build_transformer(vocab: int, dim: int = None, arch: str = "transformer"):
    import argparse as ap
    from types import SimpleNamespace

    from fairseq.models import ARCH_CONFIG_REGISTRY
    from fairseq.models.transformer import TransformerModel

    args = ap.Namespace(share_all_embeddings=True)
    if dim is not None:
        args.encoder_embed_dim = args.decoder_embed_dim = dim
        args.encoder_ffn_embed_dim = args.decoder_ffn_embed_dim = 4 * dim
        args.encoder_attention_heads = args.decoder_attention_heads = 4
    ARCH_CONFIG_REGISTRY[arch](args)
    args.dropout = args.attention_dropout = args.activation_dropout = 0.0  # NO_DROPOUT, as DeLighT's
    from delight_fairseq.models.factory import dictionary_of_size

    d = dictionary_of_size(vocab)
    return TransformerModel.build_model(args, SimpleNamespace(source_dictionary=d, target_dictionary=d))


SMOKE_DELIGHT = dict(encoder_embed_dim=64, decoder_embed_dim=64, encoder_blocks=2, decoder_blocks=2,
                    encoder_max_depth=4, decoder_max_depth=4, embed_map_dim=32)  # --smoke: a tiny DeLighT


# Both models run without dropout: the step's computation, not its regulariser (on the CPU,
# torch's dropout keeps a float mask per call). Every dropout of a DeLighT preset:
NO_DROPOUT = dict(dropout=0.0, attention_dropout=0.0, activation_dropout=0.0, dextra_dropout=0.0, ffn_dropout=0.0,
                  embed_dropout=0.0, pos_dropout=0.0)


def build_delight(arch: str, vocab: int, **overrides):
    import delight_fairseq.models  # noqa: F401  (registers the models)
    from delight_fairseq.models.factory import build_from_arch

    return build_from_arch(arch, vocab, overrides={**NO_DROPOUT, **overrides})


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def matched_transformer_dim(target: int, vocab: int) -> int:
    """The width (multiple of 16; 4 heads, FFN 4x) of a 6+6-layer transformer closest to
    ``target`` params."""
    best = None
    for dim in range(64, 1025, 16):
        diff = abs(n_params(build_transformer(vocab, dim)) - target)
        if best is None or diff < best[0]:
            best = (diff, dim)
    return best[1]


def run(spec, queue):
    """Child process: build, warm up, time ``steps`` training steps; report tokens/s and memory."""
    (kind, name, vocab, dim, overrides, batch, length, steps, device, threads, precision, checkpoint,
     profile) = spec
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if kind == "delight":
        model = build_delight(name, vocab, **overrides, **({"checkpoint_activations": True} if checkpoint else {}))
    else:
        model = build_transformer(vocab, dim, name)
    model = model.to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    scaler = torch.amp.GradScaler(device, enabled=precision == "fp16")  # fp16: dynamic loss scaling
    src = torch.randint(4, vocab, (batch, length), device=device)
    prev = torch.randint(4, vocab, (batch, length), device=device)
    lengths = torch.full((batch,), length, device=device)

    def step():
        with torch.autocast(device, dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(src, lengths, prev)[0]
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), prev.view(-1))
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(2):
        step()
    if profile:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
            step()
        print(f"--- where the time goes: {name}")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / steps
    memory = (torch.cuda.max_memory_allocated() if device == "cuda"
              else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    queue.put((n_params(model), batch * length / seconds, memory))


class _Queue(list):
    put = list.append


LIVE_MEMORY_ENV = {"MALLOC_MMAP_THRESHOLD_": "65536"}  # glibc: every allocation over 64 KiB mapped, unmapped on free


def measure(spec, spawn: bool = True, live_memory: bool = False):
    """``run(spec)`` in a fresh process (its peak memory its own), or here with ``spawn=False``;
    ``live_memory``: the process runs under ``LIVE_MEMORY_ENV``, so that its peak resident memory
    is the peak of memory in use (freed tensors go back to the system at once, as they leave
    CUDA's ``max_memory_allocated``), not also what glibc's heap keeps of freed ones."""
    if not spawn:
        queue = _Queue()
        run(spec, queue)
        return queue[0]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=run, args=(spec, queue))
    saved = {k: os.environ.get(k) for k in LIVE_MEMORY_ENV}
    if live_memory:
        os.environ.update(LIVE_MEMORY_ENV)  # read by the child's C library when it starts
    try:
        p.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    result = queue.get()
    p.join()
    return result


def pairing(name: str, vocab=None, smoke: bool = False):
    """``(vocab, {"delight": (kind, arch, vocab, dim, overrides), "transformer": ...})`` of a pairing."""
    if smoke:
        vocab = vocab or 500
        return vocab, {"delight": ("delight", "delight_transformer_wmt14_en_de_128", vocab, None, SMOKE_DELIGHT),
                       "transformer": ("transformer", "transformer", vocab, 48, {})}
    if name == "matched":
        vocab = vocab or 10000
        delight = "delight_transformer_wmt14_en_de_256"
        target = n_params(build_delight(delight, vocab))
        return vocab, {"delight": ("delight", delight, vocab, None, {}),
                       "transformer": ("transformer", "transformer", vocab, matched_transformer_dim(target, vocab), {})}
    vocab = vocab or 43736
    return vocab, {"delight": ("delight", "delight_transformer_wmt14_en_de_512", vocab, None, {}),
                   "transformer": ("transformer", "transformer_wmt_en_de", vocab, None, {})}


def compare(specs, batch, length, steps, rounds, device, threads, precision="fp32", checkpoint=False, profile=False,
            spawn=True, live_memory=False):
    """``{key: (params, tokens/s, peak memory bytes)}``, the median over ``rounds`` alternating runs;
    ``checkpoint`` applies to DeLighT only; ``spawn=False`` runs here (quicker, memory not its own);
    ``live_memory``: see ``measure``."""
    results = {k: [] for k in specs}
    for r in range(rounds):
        for k, (kind, name, v, dim, overrides) in specs.items():
            spec = (kind, name, v, dim, overrides, batch, length, steps, device, threads, precision,
                    checkpoint and kind == "delight", profile and r == 0)
            results[k].append(measure(spec, spawn, live_memory))
    return {k: (runs[0][0], statistics.median(r[1] for r in runs), statistics.median(r[2] for r in runs))
            for k, runs in results.items()}


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
                                epilog="example:\n  python benchmarks/train_step.py --pairing paper --precision bf16 --device cuda")
    p.add_argument("--pairing", choices=["matched", "paper"], default="matched", help="matched parameters, or the paper's 37M vs 62M")
    p.add_argument("--vocab", type=int, help="dictionary size (default: 10,000 matched, 43,736 paper)")
    p.add_argument("--batch", type=int, default=64, help="sentences per batch")
    p.add_argument("--length", type=int, default=32, help="tokens per sentence")
    p.add_argument("--steps", type=int, default=5, help="training steps per timing")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (cuda when available)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="CPU threads per model process")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], default="fp32", help="training precision (fp16 with loss scaling)")
    p.add_argument("--checkpoint-activations", action="store_true", help="DeLighT recomputes its blocks in backward")
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top operators of one step")
    p.add_argument("--live-memory", action="store_true",
                   help="CPU: peak memory in use (glibc returns each freed tensor at once; slows the steps, so "
                        "tokens/s are not comparable with a run without it)")
    p.add_argument("--smoke", action="store_true", help="tiny models (a check that the script runs)")
    args = p.parse_args(argv)
    vocab, specs = pairing(args.pairing, args.vocab, args.smoke)
    med = compare(specs, args.batch, args.length, args.steps, args.rounds, args.device, args.threads, args.precision,
                  args.checkpoint_activations, args.profile, live_memory=args.live_memory)
    print(f"pairing {args.pairing}: {args.batch} x {args.length} target tokens per step, vocab {vocab}, "
          f"{args.device}, {args.threads} threads, {args.precision}"
          f"{', DeLighT with activation checkpointing' if args.checkpoint_activations else ''}"
          f"{', peak memory in use (--live-memory)' if args.live_memory else ''}, "
          f"median of {args.rounds} rounds x {args.steps} steps")
    for k, (params, tps, mem) in med.items():
        name = specs[k][1] + (f" (d {specs[k][3]})" if specs[k][3] else "")
        print(f"  {name:<40} {params / 1e6:7.2f}M params  {tps:9.0f} tokens/s  peak memory {mem / 2**20:8.0f} MiB")
    (pd, td, md), (pt, tt, mt) = med["delight"], med["transformer"]
    print(f"delight / transformer: params {pd / pt:.2f}x, tokens/s {td / tt:.2f}x, peak memory {md / mt:.2f}x")


if __name__ == "__main__":
    main()
