"""Exact resume: a run killed with SIGKILL and resumed ends where an uninterrupted run ends,
and the checkpoint the kill leaves behind loads."""
import os
import signal
import subprocess
import sys
import time

import torch

from conftest import TOY_TRAIN_ARGS, run_cli

ARGS = [*TOY_TRAIN_ARGS, "--max-tokens", 500, "--max-update", 40, "--save-interval-updates", 5,
        "--disable-validation"]


def test_killed_and_resumed_run_matches_the_uninterrupted_one(toy_bin, tmp_path):
    run_cli("train", toy_bin, *ARGS, "--save-dir", tmp_path / "straight")
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "fairseq_cli.train", str(toy_bin), *map(str, ARGS),
                             "--save-dir", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while not list(killed.glob("checkpoint_*_*.pt")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-run: training, or writing the next checkpoint
    proc.wait()
    last = torch.load(killed / "checkpoint_last.pt", weights_only=True)  # never a half-written file
    stopped_at = last["optimizer_history"][-1]["num_updates"]
    assert 5 <= stopped_at < 40
    out = run_cli("train", toy_bin, *ARGS, "--save-dir", killed).stdout
    assert f"@ {stopped_at} updates)" in out  # resumed from the last checkpoint, mid-epoch
    straight = torch.load(tmp_path / "straight" / "checkpoint_last.pt", weights_only=True)
    resumed = torch.load(killed / "checkpoint_last.pt", weights_only=True)
    assert resumed["optimizer_history"][-1]["num_updates"] == 40
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, atol=1e-6, rtol=1e-6, msg=key)
