"""Block-wise scaling (DeLighT Sec. 3.3, Eq. 4).

For ``B`` blocks, block ``b`` (0-based) gets

    N_b = N_min + (N_max - N_min) * b / (B - 1)              (truncated to int)
    w_b = w_m   + (N_max / N_min - 1) * b / (B - 1)          (rounded to 3 decimals)

so blocks near the input are shallow and narrow, near the output deep and wide. Both are
computed as the authors' code computes them (numpy's ``linspace``; the width rounded to 3
places, which changes a layer's width at d_m 640). ``B = 1`` gives the single block
``(N_min, w_m)``; ``N_min == N_max`` gives uniform blocks ``(N_min, w_m)``.
Example (WMT, N 4 -> 8, B 8): depths 4, 4, 5, 5, 6, 6, 7, 8.
"""
from typing import List, Tuple

import numpy as np


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
    if num_blocks == 1 or min_depth == max_depth:
        return [(min_depth, float(width_mult))] * num_blocks
    depths = np.linspace(min_depth, max_depth, num_blocks).astype(np.int64)
    widths = np.linspace(width_mult, width_mult + max_depth / min_depth - 1.0, num_blocks)
    return [(int(d), float(np.round(w, 3))) for d, w in zip(depths, widths)]
