"""Exact resume: a run killed with SIGKILL and resumed ends where an uninterrupted run ends,
and the checkpoint the kill leaves behind loads."""
import os
import signal
import subprocess
import sys
import time

import pytest
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
    # the second interval checkpoint has just been written: fairseq is copying it to checkpoint_last.pt
    while len(list(killed.glob("checkpoint_*_*.pt"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-run: training, or writing the next checkpoint
    proc.wait()
    last = torch.load(killed / "checkpoint_last.pt", weights_only=True)  # never a half-written file (compat)
    stopped_at = last["optimizer_history"][-1]["num_updates"]
    assert 5 <= stopped_at < 40
    out = run_cli("train", toy_bin, *ARGS, "--save-dir", killed).stdout
    assert f"@ {stopped_at} updates)" in out  # resumed from the last checkpoint, mid-epoch
    straight = torch.load(tmp_path / "straight" / "checkpoint_last.pt", weights_only=True)
    resumed = torch.load(killed / "checkpoint_last.pt", weights_only=True)
    assert resumed["optimizer_history"][-1]["num_updates"] == 40
    for key, value in straight["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, atol=1e-6, rtol=1e-6, msg=key)


def test_a_checkpoint_copy_cut_short_leaves_the_target_as_it_was(tmp_path, monkeypatch):
    """fairseq copies the checkpoint it wrote to checkpoint_last.pt (and _best) with
    PathManager.copy: the plugin's copy writes the whole file or nothing (compat)."""
    import shutil

    from fairseq.file_io import PathManager

    src, dst = tmp_path / "checkpoint_2_10.pt", tmp_path / "checkpoint_last.pt"
    src.write_bytes(b"new" * 1000)
    dst.write_bytes(b"old checkpoint")

    class Killed(Exception):
        pass

    def killed_midway(a, b):
        with open(b, "wb") as f:
            f.write(b"new")  # a part of it, then the process dies (or the disk fills)
        raise Killed

    copyfile = shutil.copyfile
    monkeypatch.setattr(shutil, "copyfile", killed_midway)
    with pytest.raises(Killed):
        PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == b"old checkpoint"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dst.name, src.name])  # no .tmp left
    monkeypatch.setattr(shutil, "copyfile", copyfile)
    assert PathManager.copy(str(src), str(dst), overwrite=True)
    assert dst.read_bytes() == src.read_bytes()
