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


def test_train_step_measures_memory_in_use_in_children_and_leaves_the_environment_as_it_was(monkeypatch):
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import train_step

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    started = []
    monkeypatch.setattr(train_step.mp.get_context("spawn").Process, "start",
                        lambda self: started.append(os.environ.get("MALLOC_MMAP_THRESHOLD_")))
    monkeypatch.setattr(train_step.mp.get_context("spawn").Process, "join", lambda self: None)
    monkeypatch.setattr(train_step.mp.get_context("spawn"), "Queue", lambda: type("Q", (), {"get": lambda s: 1})())
    assert train_step.measure(None, live_memory=True) == 1 and train_step.measure(None) == 1
    assert started == ["65536", None] and "MALLOC_MMAP_THRESHOLD_" not in os.environ


def test_kept_memory_compares_the_savings_side_by_side():
    """The smoke run: each variant in its own process; turning the savings off keeps more."""
    import re
    import sys

    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "kept_memory.py"), "--smoke"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = {m.group(1).strip(): float(m.group(2)) for m in re.finditer(r"^  (\S.*?)\s+(\d+) MiB", proc.stdout, re.M)}
    assert list(kept) == ["transformer", "delight", "no recipes", "no recipes, no lean GLT"], proc.stdout
    assert 0 < kept["delight"] < kept["no recipes"] < kept["no recipes, no lean GLT"], kept


def _dropouts(model):
    """Every dropout probability a module holds: ``p`` of dropout modules, float ``*dropout*`` attributes."""
    found = []
    for name, module in model.named_modules():
        for key, value in vars(module).items():
            if isinstance(value, float) and ("dropout" in key or (key == "p" and "ropout" in type(module).__name__)):
                found.append((f"{name}.{key}", value))
    return found


def test_train_step_compares_both_models_without_dropout():
    """The step's computation, not its regulariser: no dropout left on in either model (DeLighT's
    presets carry five kinds; the step once zeroed only the main one)."""
    import sys

    sys.path.insert(0, str(REPO / "benchmarks"))
    import train_step

    vocab, specs = train_step.pairing("matched", smoke=True)
    _, arch, _, _, overrides = specs["delight"]
    delight = train_step.build_delight(arch, vocab, **overrides)
    transformer = train_step.build_transformer(vocab, specs["transformer"][3])
    for model in (delight, transformer):
        probabilities = _dropouts(model)
        assert len(probabilities) > 5 and all(p == 0.0 for _, p in probabilities), probabilities
    from delight_fairseq.models.factory import build_from_arch

    as_published = _dropouts(build_from_arch(arch, vocab, overrides=overrides))
    assert any(p > 0 for _, p in as_published)  # what the override turns off is there to turn off
