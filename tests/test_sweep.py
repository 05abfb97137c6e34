"""Ablation sweeps: a tiny Hydra multirun through scripts/train.sh +sweep=NAME, and
scripts/collect_sweep.py turning it into the table."""
import os
import subprocess
import sys

import torch

from conftest import REPO
from delight_fairseq.analysis.sweep import Job, format_table, published, swept

UNIGRAM_PPL = 154  # the toy corpus's unigram perplexity (scripts/make_toy_lm_data.py)


def test_table_lists_only_the_swept_settings(tmp_path):
    jobs = [Job(tmp_path / "0", {"model.define_transform": "lt", "task.data": "/d"}, 1_234_567, 30.123, 31.5),
            Job(tmp_path / "1", {"model.define_transform": "hgt", "task.data": "/d"}, 2_000_000, 25.0, None)]
    assert swept([j.overrides for j in jobs]) == ["model.define_transform"]
    assert format_table(jobs).splitlines() == [
        "| define_transform | params (M) | valid ppl | test ppl |", "|---|---|---|---|",
        "| lt | 1.23 | 30.12 | 31.50 |", "| hgt | 2.00 | 25.00 | - |"]


def test_the_papers_ablations_come_with_their_published_rows(tmp_path):
    jobs = [Job(tmp_path / "0", {"sweep": "define_depth_width", "define_size": "n512_N11",
                                 "model.define_expand_dim": "1536"}, 52_000_000, 36.0),
            Job(tmp_path / "1", {"sweep": "define_depth_width", "define_size": "n256_N3",
                                 "model.define_expand_dim": "1024"}, 33_000_000, 40.0)]
    assert published(jobs[0]) == (52.02, 35.25, 35.98) and published(jobs[1]) == (33.02, 39.99, 41.17)
    assert format_table(jobs).splitlines()[2] == "| n512_N11 | 1536 | 52.00 | 36.00 | - | 52.02 | 35.25 | 35.98 |"
    assert published(Job(tmp_path, {"sweep": "define_transform", "model.define_transform": "glt"}, 1, 1.0)) == \
        (39.69, 44.28, 45.63)
    assert published(Job(tmp_path, {"model.define_transform": "glt"}, 1, 1.0)) is None


def test_a_tiny_sweep_runs_and_is_collected(lm_data, tmp_path):
    """Two jobs of the paper's connection sweep: the second trains 3 updates where the first
    trains 150, so its best validation loss is worse than the first job's, and it still
    writes its own checkpoint_best.pt (FreshJob; without it fairseq would keep the first's
    best and write none)."""
    sweep = tmp_path / "sweep"
    env = dict(os.environ, DATA_DIR=str(lm_data / "bin"), SAVE_DIR=str(sweep))
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "train.sh"), "ptb", "model=lstm_small", "+sweep=define_connection",
         "++model.define_connection=split_mix", "optimization.max_update=150,3", "common.cpu=true",
         "optimization.max_epoch=0", "task.tokens_per_sample=32", "optimization.lr=[5.0]"],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    best = [torch.load(sweep / job / "checkpoint_best.pt", weights_only=True) for job in ("0", "1")]
    assert [b["optimizer_history"][-1]["num_updates"] for b in best] == [150, 3]  # each its own
    assert best[1]["extra_state"]["best"] > best[0]["extra_state"]["best"]  # though worse than the first's
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "collect_sweep.py"), str(sweep),
                           "--data", str(lm_data / "bin"), "--plot", str(tmp_path / "sweep.png")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = proc.stdout.strip().splitlines()
    assert rows[0] == "| max_update | params (M) | valid ppl | test ppl | paper params (M) | paper valid | paper test |"
    cells = [[c.strip() for c in r.strip("| ").split("|")] for r in rows[2:]]
    assert [c[0] for c in cells] == ["150", "3"] and cells[0][1] == cells[1][1]  # the same model
    assert cells[0][4:] == ["40.89", "36.95", "38.01"]  # DeFINE's row of the paper's Table 6a
    valid, test = float(cells[0][2]), float(cells[0][3])
    assert valid < 0.4 * UNIGRAM_PPL and test < 0.4 * UNIGRAM_PPL  # learned: well below the unigram's
    assert float(cells[1][2]) > 1.5 * valid  # 3 updates: far from it
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
