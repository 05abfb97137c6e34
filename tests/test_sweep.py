"""Ablation sweeps: a tiny Hydra multirun through scripts/train.sh +sweep=NAME, and
scripts/collect_sweep.py turning it into the table."""
import os
import re
import subprocess
import sys

from conftest import REPO
from delight_fairseq.sweep import Job, format_table, swept


def test_table_lists_only_the_swept_settings(tmp_path):
    jobs = [Job(tmp_path / "0", {"model.define_transform": "lt", "task.data": "/d"}, 1_234_567, 30.123, 31.5),
            Job(tmp_path / "1", {"model.define_transform": "hgt", "task.data": "/d"}, 2_000_000, 25.0, None)]
    assert swept([j.overrides for j in jobs]) == ["model.define_transform"]
    assert format_table(jobs).splitlines() == [
        "| define_transform | params (M) | valid ppl | test ppl |", "|---|---|---|---|",
        "| lt | 1.23 | 30.12 | 31.50 |", "| hgt | 2.00 | 25.00 | - |"]


def test_a_tiny_sweep_runs_and_is_collected(lm_data, tmp_path):
    sweep = tmp_path / "sweep"
    env = dict(os.environ, DATA_DIR=str(lm_data / "bin"), SAVE_DIR=str(sweep), OMP_NUM_THREADS="2")
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "train.sh"), "ptb", "model=lstm_small", "+sweep=define_connection",
         "++model.define_connection=none,split_mix", "common.cpu=true", "optimization.max_epoch=0",
         "optimization.max_update=40", "task.tokens_per_sample=32", "dataset.num_workers=0", "optimizer.lr=[1.0]",
         "optimization.lr=[1.0]"],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for job in ("0", "1"):  # each job its own checkpoints, best included (FreshJob)
        assert (sweep / job / "checkpoint_best.pt").exists() and (sweep / job / "hydra_train.log").exists()
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "collect_sweep.py"), str(sweep),
                           "--data", str(lm_data / "bin"), "--plot", str(tmp_path / "sweep.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = proc.stdout.strip().splitlines()
    assert rows[0] == "| define_connection | params (M) | valid ppl | test ppl |"
    assert [r.split(" | ")[0] for r in rows[2:]] == ["| none", "| split_mix"]
    params = [float(r.split(" | ")[1]) for r in rows[2:]]
    assert params[1] > params[0]  # split-and-mix layers see the map too: more inputs
    for row in rows[2:]:
        valid, test = (float(x) for x in re.findall(r"\| ([\d.]+) \| ([\d.]+) \|$", row)[0])
        assert 1 < valid < 208 and 1 < test < 208  # below a uniform guess over the 208 entries
    assert (tmp_path / "sweep.png").stat().st_size > 5000


def test_collect_sweep_explains_an_empty_directory(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "collect_sweep.py"), str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "holds no sweep jobs" in proc.stderr and "Traceback" not in proc.stderr


def test_an_unknown_sweep_is_named_with_the_choices(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "ptb", "+sweep=define_colour"],
                          capture_output=True, text=True, env=dict(os.environ, SAVE_DIR=str(tmp_path / "s")))
    assert proc.returncode == 1 and "no sweep configs/sweep/define_colour.yaml" in proc.stderr
    assert "define_transform" in proc.stderr and not (tmp_path / "s").exists()
