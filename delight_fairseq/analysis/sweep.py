"""Ablation sweeps (``scripts/train.sh DATASET +sweep=NAME``, Hydra multirun) and the table
they make (``scripts/collect_sweep.py``).

Hydra's basic launcher runs the jobs one after another in one process; fairseq keeps the
best validation loss so far on ``checkpoint_utils.save_checkpoint.best``, so without
``FreshJob`` a job would only write ``checkpoint_best.pt`` when it beats the jobs before it.
"""
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from hydra.experimental.callback import Callback

VALID = re.compile(r"valid on 'valid' subset \| .*?\| ppl ([\d.]+)")


class FreshJob(Callback):
    """A Hydra callback (``hydra.callbacks`` in ``configs/sweep/*.yaml``): each job starts
    without the best validation loss of the job before it."""

    def on_job_start(self, config, **kwargs) -> None:
        from fairseq import checkpoint_utils

        if hasattr(checkpoint_utils.save_checkpoint, "best"):
            del checkpoint_utils.save_checkpoint.best


@dataclass
class Job:
    """One finished job of a sweep: its directory, the settings it was given, its parameter
    count, the best validation perplexity in its log, and its test perplexity when asked."""

    path: Path
    overrides: Dict[str, str]
    params: int
    valid_ppl: Optional[float]
    test_ppl: Optional[float] = None


def job_dirs(sweep_dir: Path) -> List[Path]:
    """The job directories of a sweep (``N/`` holding ``.hydra/overrides.yaml``), by number."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra" / "overrides.yaml").exists()]
    return sorted(jobs, key=lambda p: (len(p.name), p.name))


def best_valid_ppl(log: Path) -> Optional[float]:
    if not log.exists():
        return None
    values = [float(m.group(1)) for m in VALID.finditer(log.read_text())]
    return min(values) if values else None


def swept(overrides: List[Dict[str, str]]) -> List[str]:
    """The override keys whose values differ between jobs (the sweep's columns)."""
    keys = list(dict.fromkeys(k for o in overrides for k in o))
    return [k for k in keys if len({o.get(k) for o in overrides}) > 1]


def parse_overrides(path: Path) -> Dict[str, str]:
    out = {}
    for item in yaml.safe_load(path.read_text()) or []:
        key, _, value = item.partition("=")
        out[key.lstrip("+~")] = value
    return out


# The DeFINE paper's ablations (LSTM on WikiText-103, Tables 4-6): per sweep, the settings that
# name a row and the published (params M, valid ppl, test ppl) of each row.
PUBLISHED: Dict[str, Tuple[Tuple[str, ...], Dict[Tuple[str, ...], Tuple[float, float, float]]]] = {
    "define_transform": (("model.define_transform",), {  # Table 4a, without the link to the map
        ("lt",): (42.86, 39.89, 41.19), ("glt",): (39.69, 44.28, 45.63), ("glt_shuffle",): (39.69, 44.08, 45.25),
        ("hgt",): (40.73, 39.79, 40.92)}),
    "define_mixer": (("model.define_connection",), {  # Table 4b
        ("none",): (40.73, 39.79, 40.92), ("concat",): (40.89, 37.84, 38.91), ("split_mix",): (40.89, 36.95, 38.01)}),
    "define_depth_width": (("define_size", "model.define_expand_dim"), {  # Table 5
        ("n256_N3", "1024"): (33.02, 39.99, 41.17), ("n256_N3", "1536"): (33.15, 40.08, 41.25),
        ("n256_N3", "2048"): (33.29, 40.23, 41.37), ("n384_N7", "1024"): (40.73, 36.95, 38.01),
        ("n384_N7", "1536"): (41.86, 36.85, 37.81), ("n384_N7", "2048"): (43.19, 36.95, 37.84),
        ("n512_N11", "1024"): (49.55, 34.94, 35.94), ("n512_N11", "1536"): (52.02, 35.25, 35.98),
        ("n512_N11", "2048"): (55.02, 35.00, 35.92)}),
    "define_connection": (("model.define_connection",), {  # Table 6a (residual: every layer k/2 wide)
        ("residual",): (41.63, 38.96, 39.03), ("split_mix",): (40.89, 36.95, 38.01)}),
    "define_reduce": (("define_reduce",), {  # Table 6b
        ("with",): (40.89, 36.95, 38.01), ("without",): (43.91, 37.19, 38.34)}),
}


def published(job: Job) -> Optional[Tuple[float, float, float]]:
    """The paper's row for a job of one of its ablation sweeps (``+sweep=NAME``), if it has one."""
    keys, rows = PUBLISHED.get(job.overrides.get("sweep", ""), ((), {}))
    return rows.get(tuple(job.overrides.get(k) for k in keys)) if keys else None


def format_table(jobs: List[Job]) -> str:
    """A markdown table: one row per job, the swept settings, params (M), valid / test ppl,
    and the paper's published params / valid / test beside them for its ablation sweeps."""
    columns = [c for c in swept([j.overrides for j in jobs]) if c != "sweep"] or ["job"]
    paper = any(published(j) for j in jobs)
    head = [c.split(".")[-1] for c in columns] + ["params (M)", "valid ppl", "test ppl"]
    head += ["paper params (M)", "paper valid", "paper test"] if paper else []
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j in jobs:
        cells = [j.overrides.get(c, j.path.name) for c in columns]
        cells += [f"{j.params / 1e6:.2f}", _fmt(j.valid_ppl), _fmt(j.test_ppl)]
        if paper:
            cells += [_fmt(v) for v in (published(j) or (None, None, None))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(x: Optional[float]) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f}"
