#!/usr/bin/env python
"""Group linear transform: equivalent kernels timed side by side (forward + backward) on
the GLT shapes of a preset's DExTra layers, float32. Prints each kernel's time relative to
``bmm`` (GroupLinear's default), shape by shape and summed over the model.

    python benchmarks/glt_kernels.py [--arch delight_transformer_wmt14_en_de_512] [--tokens 2048]
        [--device cpu|cuda] [--repeat 20]
"""
import argparse
import textwrap
import time
from collections import Counter

import torch
import torch.nn.functional as F


from delight_fairseq.modules import GroupLinear
from delight_fairseq.models.factory import build_from_arch

# Equivalent ways to compute the grouped matmul of a group linear transform.
# Legend: ``R`` rows (tokens), ``N``/``M`` in/out features, ``G`` groups. Each takes
# ``x: R x N``, ``weight: G x N/G x M/G`` and returns ``R x M`` (no bias).


def glt_bmm(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Batched matmul over groups: ``G x R x N/G @ G x N/G x M/G`` (what GroupLinear does)."""
    g, n, m = weight.shape
    return torch.bmm(x.reshape(-1, g, n).transpose(0, 1), weight).transpose(0, 1).reshape(-1, g * m)


def glt_einsum(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    g, n, m = weight.shape
    return torch.einsum("rgn,gnm->rgm", x.reshape(-1, g, n), weight).reshape(-1, g * m)


def glt_conv1d(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """A grouped 1x1 convolution over the rows."""
    g, n, m = weight.shape
    w = weight.transpose(1, 2).reshape(g * m, n, 1)  # (G*M/G) x N/G x 1
    return F.conv1d(x.unsqueeze(-1), w, groups=g).squeeze(-1)


def glt_block_diagonal(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One dense matmul against the block-diagonal N x M matrix (G times the FLOPs)."""
    return x @ torch.block_diag(*weight)


def glt_loop(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """One matmul per group, concatenated."""
    g, n, m = weight.shape
    return torch.cat([xi @ wi for xi, wi in zip(x.split(n, dim=-1), weight)], dim=-1)


KERNELS = {
    "bmm": glt_bmm,
    "einsum": glt_einsum,
    "conv1d": glt_conv1d,
    "block_diagonal": glt_block_diagonal,
    "loop": glt_loop,
}


def glt_shapes(arch: str):
    """Counter of (N, M, G) over every grouped (G > 1) layer of the preset."""
    from delight_fairseq.models.delight_transformer import PRESETS

    model = build_from_arch(arch, 1000 if arch not in PRESETS else 1000)
    return Counter((m.in_features, m.out_features, m.groups) for m in model.modules()
                   if isinstance(m, GroupLinear) and m.groups > 1)


def time_kernel(fn, x, w, repeat: int, device: str) -> float:
    def step():
        y = fn(x, w)
        y.sum().backward()

    for _ in range(3):  # warm-up
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeat):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / repeat


def check_equal(x, w):
    """Every kernel computes Eq. 1 group by group, and GroupLinear (bmm) the same."""
    n = w.shape[1]
    expected = torch.cat([xi @ wi for xi, wi in zip(x.split(n, -1), w)], -1)
    for name, kernel in KERNELS.items():
        torch.testing.assert_close(kernel(x, w), expected, atol=1e-4, rtol=1e-4, msg=name)
    glt = GroupLinear(x.shape[1], w.shape[0] * w.shape[2], w.shape[0], bias=False).to(x.device)
    glt.weight.data.copy_(w)
    torch.testing.assert_close(glt(x), expected, atol=1e-4, rtol=1e-4)


def measure(arch: str, tokens: int, device: str, repeat: int, log=None):
    """Per kernel, its forward + backward time over every grouped layer of ``arch`` relative to
    ``bmm`` (each kernel checked equal first); ``log(line)`` gets the shape-by-shape lines."""
    torch.manual_seed(0)
    totals = Counter()
    for (n, m, g), count in sorted(glt_shapes(arch).items()):
        x = torch.randn(tokens, n, device=device, requires_grad=True)
        w = torch.randn(g, n // g, m // g, device=device, requires_grad=True)
        with torch.no_grad():
            check_equal(x[:37], w)
        times = {k: time_kernel(fn, x, w, repeat, device) for k, fn in KERNELS.items()}
        for k, t in times.items():
            totals[k] += t * count
        if log:
            log(f"{n:>5} {m:>5} {g:>3} {count:>3}  {times['bmm'] * 1e3:>8.3f}  "
                + "  ".join(f"{times[k] / times['bmm']:>13.2f}x" for k in KERNELS if k != "bmm"))
    return {k: totals[k] / totals["bmm"] for k in KERNELS}


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
                                epilog="example:\n  python benchmarks/glt_kernels.py --arch delight_transformer_wmt14_en_de_512 --tokens 2048 --device cuda")
    p.add_argument("--arch", default="delight_transformer_wmt14_en_de_512", help="the preset whose GLT shapes are timed")
    p.add_argument("--tokens", type=int, default=2048, help="rows (T x B) per call")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (cuda when available)")
    p.add_argument("--repeat", type=int, default=20, help="calls per kernel and shape")
    args = p.parse_args(argv)
    shapes = glt_shapes(args.arch)
    print(f"{args.arch}: {sum(shapes.values())} grouped layers, {len(shapes)} distinct shapes; "
          f"{args.tokens} tokens, fp32, forward+backward, {args.device}, {torch.get_num_threads()} threads")
    print(f"{'N':>5} {'M':>5} {'G':>3} {'x':>3}  {'bmm ms':>8}  " + "  ".join(f"{k:>14}" for k in KERNELS if k != "bmm"))
    relative = measure(args.arch, args.tokens, args.device, args.repeat, log=print)
    print("whole model (time relative to bmm): " + ", ".join(f"{k} {v:.2f}x" for k, v in relative.items()))


if __name__ == "__main__":
    main()
