#!/usr/bin/env python
"""Turn a sweep directory (``bash scripts/train.sh DATASET +sweep=NAME``) into the ablation
table: one row per job with the swept settings, its parameter count (from its checkpoint),
its best validation perplexity (from its log) and, with --data, its test perplexity
(fairseq-eval-lm on checkpoint_best.pt); and, with --plot, a bar chart of the perplexities.

    python scripts/collect_sweep.py SWEEP_DIR [--data DATA_BIN] [--plot table.png] [--out table.md]
"""
import argparse
import re
import subprocess
import sys
import textwrap
from pathlib import Path


from delight_fairseq import ConfigError
from delight_fairseq.analysis.plotting import pyplot
from delight_fairseq.models.factory import build_from_checkpoint
from delight_fairseq.analysis.stats import count_params
from delight_fairseq.analysis.sweep import Job, best_valid_ppl, format_table, job_dirs, parse_overrides, swept

PLUGIN = Path(__file__).resolve().parents[1] / "delight_fairseq"


def test_ppl(checkpoint: Path, data: Path, tokens_per_sample: int) -> float:
    proc = subprocess.run(
        [sys.executable, "-m", "fairseq_cli.eval_lm", str(data), "--user-dir", str(PLUGIN), "--path", str(checkpoint),
         "--gen-subset", "test", "--tokens-per-sample", str(tokens_per_sample), "--max-tokens", "4096",
         *([] if _cuda() else ["--cpu"])],
        capture_output=True, text=True,
    )
    found = re.search(r"Perplexity: ([\d.]+)", proc.stderr + proc.stdout)
    if proc.returncode or not found:
        raise ConfigError(f"fairseq-eval-lm failed on {checkpoint}:\n{(proc.stderr or proc.stdout)[-1500:]}")
    return float(found.group(1))


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def plot(jobs, out: Path) -> None:
    plt = pyplot()
    columns = swept([j.overrides for j in jobs])
    labels = [", ".join(j.overrides.get(c, "") for c in columns) or j.path.name for j in jobs]
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(jobs), 3.2))
    for offset, (name, values) in enumerate([("valid", [j.valid_ppl for j in jobs]), ("test", [j.test_ppl for j in jobs])]):
        xs = [i + 0.4 * offset for i, v in enumerate(values) if v is not None]
        ax.bar(xs, [v for v in values if v is not None], width=0.4, label=name)
    ax.set_xticks([i + 0.2 for i in range(len(jobs))], labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("perplexity")
    ax.set_title(", ".join(c.split(".")[-1] for c in columns), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)


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
                                epilog="example:\n  python scripts/collect_sweep.py checkpoints/wikitext103_lstm-lstm_wiki103_r4-define_mixer --data data-bin/wikitext103 --plot mixer.png --out mixer.md")
    p.add_argument("sweep_dir", type=Path, help="the sweep's save dir (one folder per job)")
    p.add_argument("--data", type=Path, help="the binaries: also compute each job's test perplexity (default: none, no test column)")
    p.add_argument("--plot", type=Path, help="write a bar chart of the perplexities (PNG; default: no chart)")
    p.add_argument("--out", type=Path, help="also write the table (markdown) here (default: printed only)")
    args = p.parse_args(argv)
    try:
        if not args.sweep_dir.is_dir():
            raise ConfigError(f"no sweep directory {args.sweep_dir}")
        dirs = job_dirs(args.sweep_dir)
        if not dirs:
            raise ConfigError(f"{args.sweep_dir} holds no sweep jobs (N/.hydra/overrides.yaml); run "
                              "bash scripts/train.sh DATASET +sweep=NAME first")
        jobs = []
        for d in dirs:
            ckpt = next((d / n for n in ("checkpoint_best.pt", "checkpoint_last.pt") if (d / n).exists()), None)
            if ckpt is None:
                print(f"collect_sweep: {d} has no checkpoint (unfinished?), left out", file=sys.stderr)
                continue
            model = build_from_checkpoint(str(ckpt))
            job = Job(d, parse_overrides(d / ".hydra" / "overrides.yaml"), count_params(model),
                      best_valid_ppl(d / "hydra_train.log"))
            if args.data:
                job.test_ppl = test_ppl(ckpt, args.data, int(_task_option(d, "tokens_per_sample", 512)))
            jobs.append(job)
    except ConfigError as e:
        print(f"collect_sweep: {e}", file=sys.stderr)
        return 2
    table = format_table(jobs)
    print(table)
    if args.out:
        args.out.write_text(table + "\n")
    if args.plot:
        plot(jobs, args.plot)
    return 0


def _task_option(job_dir: Path, key: str, default):
    import yaml

    cfg = yaml.safe_load((job_dir / ".hydra" / "config.yaml").read_text())
    return (cfg.get("task") or {}).get(key, default)


if __name__ == "__main__":
    sys.exit(main())
