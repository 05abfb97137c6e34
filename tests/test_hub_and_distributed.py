"""From Python in three lines (fairseq's hub interface; the language models' hub classes:
tests/test_lm_cli.py, test_define_transformer*.py), and fairseq's own distributed data
parallel: 2 CPU workers, and 2 torchrun nodes, equal one worker with --update-freq 2."""
import os
import socket
import subprocess
import sys

import pytest
import torch

from conftest import TOY_TRAIN_ARGS, run_cli


def test_translate_from_python(toy_checkpoint, toy_bin):
    from delight_fairseq import DeLighTTransformerModel

    model = DeLighTTransformerModel.from_pretrained(str(toy_checkpoint), "checkpoint_last.pt", str(toy_bin))
    assert model.translate("a1 a2 a3", beam=5) == "B3 B2 B1"
    assert model.translate(["a7 a5 a2", "a0 a1 a2 a3"]) == ["B2 B5 B7", "B3 B2 B1 B0"]


DDP_ARGS = [*TOY_TRAIN_ARGS, "--max-tokens", 500, "--ddp-backend", "legacy_ddp", "--disable-validation",
            "--distributed-backend", "gloo"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _updates(path):
    return torch.load(path, weights_only=True)["optimizer_history"][-1]["num_updates"]


def _distance(a, b):
    a, b = (torch.load(p, weights_only=True)["model"] for p in (a, b))
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _assert_same_weights(a, b):
    a, b = (torch.load(p, weights_only=True)["model"] for p in (a, b))
    # summation order differs: float noise, amplified by Adam where gradients are near zero (biases);
    # 1e-3 is a tenth of the distance of a run that sees the same batches grouped otherwise (~8e-3)
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, atol=1e-3, rtol=1e-3, msg=key)


@pytest.fixture(scope="module")
def one_worker(toy_bin, tmp_path_factory):
    """One process with --update-freq 2 for 20 updates (checkpoint_1_10.pt kept), and a
    control that sees the same batches grouped differently (no --update-freq)."""
    root = tmp_path_factory.mktemp("one-worker")
    run_cli("train", toy_bin, *DDP_ARGS, "--max-update", 20, "--update-freq", 2, "--save-dir", root / "one",
            "--save-interval-updates", 10)
    run_cli("train", toy_bin, *DDP_ARGS, "--max-update", 20, "--save-dir", root / "control")
    assert _updates(root / "one" / "checkpoint_1_10.pt") == 10
    return root


def _workers(commands):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(list(map(str, c)), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for c in commands]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), "\n".join(o[-3000:] for o in outputs)
    return "".join(outputs)


def test_two_workers_equal_one_worker_with_update_freq_2(toy_bin, one_worker, tmp_path):
    # fairseq's gloo launch on the CPU: one process per rank, no spawning (spawning needs CUDA devices)
    port = _free_port()
    log = _workers([sys.executable, "-m", "fairseq_cli.train", toy_bin, *DDP_ARGS, "--max-update", 10,
                    "--save-dir", tmp_path, "--distributed-world-size", 2, "--distributed-rank", rank,
                    "--distributed-init-method", f"tcp://127.0.0.1:{port}", "--distributed-no-spawn"] for rank in (0, 1))
    assert "distributed init (rank 1)" in log
    assert _updates(tmp_path / "checkpoint_last.pt") == 10
    _assert_same_weights(one_worker / "one" / "checkpoint_1_10.pt", tmp_path / "checkpoint_last.pt")


def test_two_nodes_under_torchrun_equal_one_worker_and_resume(toy_bin, one_worker, tmp_path):
    """Two torchrun agents on 127.0.0.1 (c10d rendezvous, gloo), one process each, as two
    machines would run them; then the same command again with more updates resumes from
    checkpoint_last.pt and ends where one worker with --update-freq 2 ends."""
    def two_nodes(max_update, run_id):
        port = _free_port()
        return _workers([sys.executable, "-m", "torch.distributed.run", "--nnodes", 2, "--nproc-per-node", 1,
                         "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", run_id,
                         "--module", "fairseq_cli.train", toy_bin, *DDP_ARGS, "--max-update", max_update,
                         "--save-dir", tmp_path] for _ in range(2))

    log = two_nodes(10, "first")
    assert "distributed init (rank 1): env://" in log and "distributed init (rank 0): env://" in log
    _assert_same_weights(one_worker / "one" / "checkpoint_1_10.pt", tmp_path / "checkpoint_last.pt")
    log = two_nodes(20, "resumed")
    assert "(epoch 1 @ 10 updates)" in log  # loaded the first run's checkpoint_last.pt
    assert _updates(tmp_path / "checkpoint_last.pt") == 20
    _assert_same_weights(one_worker / "one" / "checkpoint_last.pt", tmp_path / "checkpoint_last.pt")
    # the control (same batches, grouped otherwise) ends far away
    one, control = one_worker / "one" / "checkpoint_last.pt", one_worker / "control" / "checkpoint_last.pt"
    assert _distance(tmp_path / "checkpoint_last.pt", one) * 10 < _distance(control, one)
