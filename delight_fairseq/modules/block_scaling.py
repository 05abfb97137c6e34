"""Block-wise scaling (DeLighT Sec. 3.3, Eq. 4).

For ``B`` blocks, block ``b`` (0-based) gets

    N_b = N_min + (N_max - N_min) * b / (B - 1)              (truncated to int)
    w_b = w_m   + (N_max / N_min - 1) * b / (B - 1)

so blocks near the input are shallow and narrow, near the output deep and wide.
``B = 1`` gives the single block ``(N_min, w_m)``; ``N_min == N_max`` gives uniform
blocks. Example (WMT, N 4 -> 8, B 8): depths 4, 4, 5, 5, 6, 6, 7, 8.
"""
from typing import List, Tuple


def block_scaling(num_blocks: int, min_depth: int, max_depth: int, width_mult: float) -> List[Tuple[int, float]]:
    """Returns ``[(depth N_b, width multiplier w_b)]`` for ``b = 0 .. B-1``."""
    if num_blocks < 1:
        raise ValueError(f"number of blocks must be >= 1, got {num_blocks}")
    if min_depth < 1 or min_depth > max_depth:
        raise ValueError(
            f"DExTra depths must satisfy 1 <= min depth <= max depth, got min {min_depth}, max {max_depth}"
        )
    if width_mult <= 0:
        raise ValueError(f"width multiplier must be > 0, got {width_mult}")
    if num_blocks == 1:
        return [(min_depth, float(width_mult))]
    out = []
    for b in range(num_blocks):
        frac = b / (num_blocks - 1)
        depth = int(min_depth + (max_depth - min_depth) * frac + 1e-9)
        width = width_mult + (max_depth / min_depth - 1.0) * frac
        out.append((depth, width))
    return out
