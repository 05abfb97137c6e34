"""benchmarks/: the GPU suite runs end to end on the CPU with --smoke (tiny sizes, the same
code), so it cannot rot before a GPU is lent; without CUDA the real run refuses in one line."""
import json
import os
import subprocess

import pytest
import torch

from conftest import REPO


def test_the_gpu_suite_runs_with_smoke_sizes(tmp_path):
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh"), "--smoke", "--out", str(tmp_path / "s.json")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "s.json").read_text())
    assert set(record["glt_kernels"]) == {"bmm", "einsum", "conv1d", "block_diagonal", "loop"}
    assert record["glt_kernels"]["bmm"] == 1.0 and all(v > 0 for v in record["glt_kernels"].values())
    assert {"naive", "stepwise", "unfused", "plugin", "compiled"} <= set(record["dextra"][0]) and record["dextra_speedup"] > 0
    steps = record["train_step"]
    assert [(s["pairing"], s["precision"]) for s in steps] == [("matched", "fp32"), ("matched", "bf16")]
    assert all(s["delight"][1] > 0 and s["transformer"][1] > 0 and s["delight_checkpointed"][1] > 0 for s in steps)
    assert record["inference"]["matched"]["delight"][1] > 0
    recipe = record["recipes"]["WMT'14 En-De (d_m 512)"]
    assert recipe["hours"] == pytest.approx(30_000 * 524_288 / (recipe["tokens_per_s"] * 8) / 3600)
    for section in ("GLT kernels", "DExTra", "training step", "beam-5", "hours per translation recipe"):
        assert section in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without CUDA")
def test_the_gpu_suite_needs_cuda_without_smoke():
    proc = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_suite.sh")], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.strip().startswith("gpu_suite.sh: no CUDA device")
