#!/usr/bin/env python
"""DeLighT vs fairseq's transformer: training-step throughput (forward + backward + Adam)
and peak memory, measured side by side in one run; prints ratios.

    python benchmarks/train_step.py [--pairing matched|paper] [--vocab 10000] [--batch 64 --length 32]

--pairing matched: delight_transformer_wmt14_en_de_256 vs a 6+6-layer transformer whose width
  is chosen to have the same number of parameters (same vocabulary, shared embeddings);
--pairing paper:   delight_transformer_wmt14_en_de_512 (37M) vs transformer_wmt_en_de (62M),
  the pair the DeLighT paper reports at equal BLEU (vocabulary 43,736).
Each model runs in its own process (peak resident memory per model on the CPU; peak
allocated memory on CUDA); the two alternate --rounds times and the median is reported.
"""
import argparse
import multiprocessing as mp
import resource
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


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
    args.dropout = 0.0
    from delight_fairseq.stats import dictionary_of_size

    d = dictionary_of_size(vocab)
    return TransformerModel.build_model(args, SimpleNamespace(source_dictionary=d, target_dictionary=d))


def build_delight(arch: str, vocab: int):
    import delight_fairseq.models  # noqa: F401  (registers the models)
    from delight_fairseq.stats import build_from_arch

    return build_from_arch(arch, vocab, overrides={"dropout": 0.0})


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
    kind, name, vocab, dim, batch, length, steps, device, threads, profile = spec
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = (build_delight(name, vocab) if kind == "delight" else build_transformer(vocab, dim, name)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    src = torch.randint(4, vocab, (batch, length), device=device)
    prev = torch.randint(4, vocab, (batch, length), device=device)
    lengths = torch.full((batch,), length, device=device)

    def step():
        logits = model(src, lengths, prev)[0]
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), prev.view(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

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


def measure(spec):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=run, args=(spec, queue))
    p.start()
    result = queue.get()
    p.join()
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairing", choices=["matched", "paper"], default="matched")
    p.add_argument("--vocab", type=int, help="dictionary size (default 10,000 matched, 43,736 paper)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--length", type=int, default=32)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--profile", action="store_true", help="print torch.profiler's top operators of one step")
    args = p.parse_args(argv)
    if args.pairing == "matched":
        vocab = args.vocab or 10000
        delight = "delight_transformer_wmt14_en_de_256"
        target = n_params(build_delight(delight, vocab))
        specs = {"delight": ("delight", delight, vocab, None),
                 "transformer": ("transformer", "transformer", vocab, matched_transformer_dim(target, vocab))}
    else:
        vocab = args.vocab or 43736
        specs = {"delight": ("delight", "delight_transformer_wmt14_en_de_512", vocab, None),
                 "transformer": ("transformer", "transformer_wmt_en_de", vocab, None)}
    results = {k: [] for k in specs}
    for r in range(args.rounds):
        for k, (kind, name, v, dim) in specs.items():
            spec = (kind, name, v, dim, args.batch, args.length, args.steps, args.device, args.threads, args.profile and r == 0)
            results[k].append(measure(spec))
    print(f"pairing {args.pairing}: {args.batch} x {args.length} target tokens per step, vocab {vocab}, "
          f"{args.device}, {args.threads} threads, median of {args.rounds} rounds x {args.steps} steps")
    med = {}
    for k, runs in results.items():
        params = runs[0][0]
        tps = statistics.median(r[1] for r in runs)
        mem = statistics.median(r[2] for r in runs)
        med[k] = (params, tps, mem)
        name = specs[k][1] + (f" (d {specs[k][3]})" if specs[k][3] else "")
        print(f"  {name:<40} {params / 1e6:7.2f}M params  {tps:9.0f} tokens/s  peak memory {mem / 2**20:8.0f} MiB")
    (pd, td, md), (pt, tt, mt) = med["delight"], med["transformer"]
    print(f"delight / transformer: params {pd / pt:.2f}x, tokens/s {td / tt:.2f}x, peak memory {md / mt:.2f}x")


if __name__ == "__main__":
    main()
