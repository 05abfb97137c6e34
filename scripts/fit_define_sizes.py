#!/usr/bin/env python
"""Which DeFINE settings give the DeFINE paper's own DeFINE counts? The paper states n, k, m
and N for each row but not g_max (the first layer's groups) nor the mixer; this searches
them for our DeFINE (``delight_fairseq/modules/define_embedding.py``: hierarchical group
transform n -> k, then the k -> m reduction) and prints, per row, every setting's count and
the one nearest the published number, and whether one setting gives every row of a table.
The presets take the nearest (``define_lstm_lm_wiki103_r3..r5``, ``define_transformer_xl_wiki103_n*_define``).

    python scripts/fit_define_sizes.py
"""
import argparse
import sys
from typing import Dict, List, NamedTuple, Optional


from delight_fairseq.modules.define_embedding import HierarchicalGroupTransform


class Row(NamedTuple):
    table: str
    name: str  # our preset
    n: int
    k: int
    m: int
    depth: int
    published: float  # the DeFINE column, millions


ROWS = [
    Row("Table 1a (LSTM)", "define_lstm_lm_wiki103_r3", 256, 1024, 256, 3, 0.41),
    Row("Table 1a (LSTM)", "define_lstm_lm_wiki103_r4", 384, 1024, 384, 7, 1.83),
    Row("Table 1a (LSTM)", "define_lstm_lm_wiki103_r5", 512, 1024, 512, 11, 3.89),
    Row("Table 2 (Transformer-XL)", "define_transformer_xl_wiki103_n384_define", 384, 4096, 384, 3, 1.92),
    Row("Table 2 (Transformer-XL)", "define_transformer_xl_wiki103_n256_define", 256, 4096, 384, 3, 1.92),
    Row("Table 2 (Transformer-XL)", "define_transformer_xl_wiki103_n128_define", 128, 4096, 384, 3, 1.92),
    Row("Table 2 (Transformer-XL)", "define_transformer_xl_wiki103_n64_define", 64, 4096, 384, 3, 1.92),
]
GROUPS = [2 ** i for i in range(11)]  # g_max 1 .. 1024
CONNECTIONS = ("split_mix", "none")  # the mixer: n more inputs per layer after the first, or none


def define_params(row: Row, max_groups: int, connection: str = "split_mix") -> Optional[int]:
    """Our DeFINE's parameters (group transform + reduction) for ``row``, None where the
    groups do not divide the widths."""
    try:
        hgt = HierarchicalGroupTransform(row.n, row.k, row.depth, max_groups, "hgt", connection)
    except ValueError:
        return None
    return sum(p.numel() for p in hgt.parameters()) + row.k * row.m + row.m


def fit() -> Dict[str, dict]:
    """Per row: every setting's count, and the split-mix g_max nearest the published count."""
    out = {}
    for row in ROWS:
        counts = {(g, c): define_params(row, g, c) for g in GROUPS for c in CONNECTIONS}
        counts = {key: v for key, v in counts.items() if v is not None}
        nearest = min((key for key in counts if key[1] == "split_mix"), key=lambda key: abs(counts[key] - row.published * 1e6))
        out[row.name] = {"row": row, "counts": counts, "max_groups": nearest[0], "params": counts[nearest]}
    return out


def common_fits(results: Dict[str, dict], tolerance: float = 0.005e6) -> Dict[str, List[tuple]]:
    """Per table, the settings that give every row's published count (to 0.01M, rounded)."""
    tables: Dict[str, List[dict]] = {}
    for r in results.values():
        tables.setdefault(r["row"].table, []).append(r)
    return {
        table: [key for key in rs[0]["counts"]
                if all(key in r["counts"] and abs(r["counts"][key] - r["row"].published * 1e6) <= tolerance for r in rs)]
        for table, rs in tables.items()
    }


def main(argv=None) -> int:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                            epilog="It takes no options.\n\nexample:\n  python scripts/fit_define_sizes.py").parse_args(argv)
    results = fit()
    for name, r in results.items():
        row = r["row"]
        print(f"{row.table}, {name}: n {row.n}, k {row.k}, m {row.m}, N {row.depth}; published {row.published:.2f}M")
        for (g, c), v in sorted(r["counts"].items(), key=lambda kv: (kv[0][1] != "split_mix", kv[0][0])):
            mark = "  <- nearest (the preset)" if (g, c) == (r["max_groups"], "split_mix") else ""
            print(f"    g_max {g:>4} {c:<9} {v / 1e6:7.3f}M  ({(v / 1e6 - row.published):+.3f}){mark}")
    for table, fits in common_fits(results).items():
        print(f"{table}: " + (f"settings that give every row: {fits}" if fits else
                              "no single g_max / mixer gives every row's published DeFINE count"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
