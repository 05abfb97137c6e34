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
from typing import Dict, List, Optional

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


def format_table(jobs: List[Job]) -> str:
    """A markdown table: one row per job, the swept settings, params (M), valid / test ppl."""
    columns = swept([j.overrides for j in jobs]) or ["job"]
    head = [c.split(".")[-1] for c in columns] + ["params (M)", "valid ppl", "test ppl"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for j in jobs:
        cells = [j.overrides.get(c, j.path.name) for c in columns]
        cells += [f"{j.params / 1e6:.2f}", _fmt(j.valid_ppl), _fmt(j.test_ppl)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(x: Optional[float]) -> str:
    return "-" if x is None or math.isnan(x) else f"{x:.2f}"
