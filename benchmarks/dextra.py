#!/usr/bin/env python
"""DExTra as the plugin computes it vs a straightforward per-layer implementation (and,
with --compile, vs ``torch.compile`` of the plugin's module): forward + backward time,
measured side by side in one process on the same weights; prints ratios.

    python benchmarks/dextra.py [--tokens 2048] [--rounds 3] [--compile] [--profile] [--device cpu|cuda]

The straightforward implementation is the authors' formulation, layer by layer: permute
the features into groups, ``bmm`` plus bias, permute back, feature shuffle by
permute + contiguous, a LayerNorm call, the activation, and the input mixer by chunking
both inputs into groups and concatenating them (``naive_dextra``). "Step-by-step" is the
module's own readable path (``GroupLinear.fused = False``: ``mix_inputs``, ``group_maps``,
``feature_shuffle``); "unfused" the plugin's layers one by one keeping every activation for
backward (no recomputed norm and activation: faster, more memory). The plugin's default path does the mixer inside the group matmul (the
concatenation is never built) with a hand-written backward that makes one group-major copy
each way (``delight_fairseq/modules/group_linear.py``).
The shapes are the DExTra blocks of the presets (d_m, depth N, width w_m, g_max).
"""
import argparse
import statistics
import textwrap
import time

import torch
import torch.nn.functional as F


from delight_fairseq.modules import DExTra, GroupLinear, default_max_groups

# (name, d_m, depth, width_mult): blocks of the presets (WMT'14 d_m 256/512/640, IWSLT d_m 384)
SHAPES = [
    ("wmt14_en_de_256, N=4", 256, 4, 2.0),
    ("wmt14_en_de_512, N=4", 512, 4, 2.0),
    ("wmt14_en_de_512, N=8", 512, 8, 2.0),
    ("iwslt_de_en, N=9", 384, 9, 1.0),
    ("wmt14_en_de_640, N=8", 640, 8, 2.0),
]
SMOKE_SHAPES = [("smoke, N=4", 64, 4, 2.0)]


def naive_glt(layer, x):
    """One GroupLinear of ``layer``'s weights, computed the straightforward way."""
    r, n = x.shape
    g, m = layer.groups, layer.out_features
    k = m // g
    if g == 1:
        y = x @ layer.weight[0] + layer.bias.view(-1)
        y = y.view(r, 1, k)
    else:
        xg = x.view(r, g, n // g).transpose(0, 1).contiguous()  # G x R x N/G
        y = torch.bmm(xg, layer.weight) + layer.bias  # G x R x K
        y = y.transpose(0, 1).contiguous()  # R x G x K
        if layer.shuffle:
            y = y.transpose(1, 2).contiguous().view(r, g, k)
    if layer.norm is not None:
        y = layer.norm(y)
    y = y.view(r, m)
    if layer.act is not None:
        y = layer.act(y)
    return F.dropout(y, layer.dropout, layer.training)


def naive_mix(x, inp, groups):
    """Group ``i`` is ``[inp_i, x_i]``, the block input first (the authors' order)."""
    pairs = zip(inp.chunk(groups, dim=-1), x.chunk(groups, dim=-1))
    return torch.cat([t for pair in pairs for t in pair], dim=-1)


def naive_dextra(dextra: DExTra, x):
    x = naive_glt(dextra.input_layer, x)
    inp = x
    for i, layer in enumerate(dextra.glt_layers):
        if i > 0:
            x = naive_mix(x, inp, layer.groups)
        x = naive_glt(layer, x)
    return naive_glt(dextra.output_layer, naive_mix(x, inp, 1))


def stepwise_dextra(dextra: DExTra, x):
    """The same DExTra with every GroupLinear on its step-by-step path (``fused = False``:
    ``mix_inputs``, ``group_maps``, ``feature_shuffle``), as the module reads."""
    layers = [m for m in dextra.modules() if isinstance(m, GroupLinear)]
    for m in layers:
        m.fused = False
    try:
        return dextra(x)
    finally:
        for m in layers:
            m.fused = True


def unfused_dextra(dextra: DExTra, x):
    """The plugin's layers one by one, each keeping its own input, map output and norm output for
    backward (``GroupLinear.recompute = False``, no previous layer's norm inside the next map):
    the fast-but-hungry path the lean default replaced, for the trade-off's two sides."""
    layers = [m for m in dextra.modules() if isinstance(m, GroupLinear)]
    for m in layers:
        m.recompute = False
    try:
        inp = dextra.input_layer(x)
        h = dextra.glt_layers[0](inp)
        for layer in dextra.glt_layers[1:]:
            h = layer(h, mixed=inp)
        return dextra.output_layer(h, mixed=inp)
    finally:
        for m in layers:
            m.recompute = True


def build(d_m, depth, width_mult, device):
    return DExTra(d_m, d_m // 2, d_m // 2, depth, width_mult, default_max_groups(d_m)).to(device)


def check_equal(dextra, x):
    """The three implementations agree in output and in every gradient."""
    grads = []
    for fn in (dextra, lambda t: naive_dextra(dextra, t), lambda t: stepwise_dextra(dextra, t),
               lambda t: unfused_dextra(dextra, t)):
        xi = x.detach().clone().requires_grad_()
        dextra.zero_grad()
        out = fn(xi)
        out.square().mean().backward()
        grads.append([out.detach(), xi.grad] + [p.grad.clone() for p in dextra.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def step_time(fn, x, steps, sync):
    for _ in range(2):
        fn(x).sum().backward()
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        fn(x).sum().backward()
    sync()
    return (time.perf_counter() - start) / steps


def measure(shapes, tokens=2048, steps=5, rounds=3, device="cpu", compile=None, profile=False, log=print):
    """Per shape the median ms of each implementation (naive, stepwise, plugin, and with
    ``compile`` a torch.compile backend, e.g. "inductor", the compiled plugin), all checked
    equal first; returns ``[(name, layout, {impl: ms})]``."""
    device = torch.device(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    rows = []
    for i, (name, d_m, depth, w_m) in enumerate(shapes):
        dextra = build(d_m, depth, w_m, device)
        x = torch.randn(tokens, d_m, device=device, requires_grad=True)
        check_equal(dextra, x)
        fns = {"naive": lambda t: naive_dextra(dextra, t), "stepwise": lambda t: stepwise_dextra(dextra, t),
               "unfused": lambda t: unfused_dextra(dextra, t), "plugin": dextra}
        if compile:
            fns["compiled"] = torch.compile(dextra, backend=compile)
        if profile and i == 0:
            from torch.profiler import profile as torch_profile

            for key, fn in fns.items():
                with torch_profile() as prof:
                    step_time(fn, x, 2, sync)
                log(f"## profile: {key}\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
        times = {k: [] for k in fns}
        for _ in range(rounds):
            for key, fn in fns.items():
                times[key].append(step_time(fn, x, steps, sync))
        rows.append((name, " ".join(f"{w}/{g}" for w, g in dextra.layout),
                     {k: statistics.median(v) * 1e3 for k, v in times.items()}))
    return rows


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
                                epilog="example:\n  python benchmarks/dextra.py --tokens 2048 --rounds 3 --device cuda --compile")
    p.add_argument("--tokens", type=int, default=2048, help="rows (T x B) per call")
    p.add_argument("--steps", type=int, default=5, help="forward + backward calls per timing")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    p.add_argument("--compile", action="store_true", help="also time torch.compile(DExTra)")
    p.add_argument("--profile", action="store_true", help="print a profiler table per implementation (first shape)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--smoke", action="store_true", help="one tiny shape (a check that the script runs)")
    args = p.parse_args(argv)
    shapes = SMOKE_SHAPES if args.smoke else SHAPES
    print(f"# DExTra forward + backward, {args.tokens} tokens, {args.device}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; median of {args.rounds} rounds x {args.steps} steps")
    print(f"{'block':<24} {'layout (width, groups)':<58} {'naive ms':>9} {'stepwise':>9} {'unfused':>9} {'plugin ms':>9} "
          f"{'speedup':>8}" + (f" {'compiled':>9}" if args.compile else ""))
    rows = measure(shapes, args.tokens, args.steps, args.rounds, args.device, "inductor" if args.compile else None,
                   args.profile)
    for name, layout, med in rows:
        line = (f"{name:<24} {layout:<58} {med['naive']:>9.1f} {med['stepwise']:>9.1f} {med['unfused']:>9.1f} "
                f"{med['plugin']:>9.1f} {med['naive'] / med['plugin']:>7.2f}x")
        if args.compile:
            line += f" {med['compiled']:>8.1f} ({med['naive'] / med['compiled']:.2f}x)"
        print(line, flush=True)
    speedup = statistics.geometric_mean(med["naive"] / med["plugin"] for _, _, med in rows)
    unfused = statistics.geometric_mean(med["naive"] / med["unfused"] for _, _, med in rows)
    print(f"geometric mean speedup over the straightforward implementation: plugin {speedup:.2f}x (target 1.5x), "
          f"unfused (keeping every activation) {unfused:.2f}x")


if __name__ == "__main__":
    main()
