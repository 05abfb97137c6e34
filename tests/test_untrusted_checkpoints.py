"""Checkpoints are untrusted files: nothing the project opens runs code from them, and a
malformed one is one line, a non-zero exit and nothing written (``delight_fairseq/safe_load.py``)."""
import copy
import os
import re
import runpy
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import PLUGIN, REPO, build_model, run_cli
from delight_fairseq import ConfigError
from delight_fairseq.convert import convert_checkpoint
from delight_fairseq.safe_load import load_checkpoint, load_fork_checkpoint, pickle_globals

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "authors"


class _RunsCode:
    """Unpickling it runs ``touch MARKER`` (os.system): what a hostile checkpoint carries."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _script(name: str):
    """A script of scripts/ as a module (its ``main(argv)``), run in this process."""
    return runpy.run_path(str(REPO / "scripts" / f"{name}.py"), run_name=f"script_{name}")


def _one_line_failure(call, capsys):
    """``call()`` fails with a non-zero code (returned or SystemExit) and one line on stderr, no traceback."""
    try:
        code = call()
    except SystemExit as e:
        code = e.code
        if isinstance(code, str):
            print(code, file=sys.stderr)
            code = 1
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def hostile(tmp_path):
    """Checkpoints whose pickles would create ``marker``: fork-style, fairseq-0.12-style, and
    the same in torch's legacy (pre-1.6) format."""
    marker = tmp_path / "MARKER"
    fork = load_fork_checkpoint(str(FIXTURES / "mt" / "checkpoint.pt"))
    fork["extra_state"] = {"val_loss": _RunsCode(marker)}
    ours = {"cfg": {"model": {"_name": "delight_transformer"}}, "model": build_model().state_dict(),
            "extra_state": {"x": _RunsCode(marker)}}
    paths = {}
    for name, state, legacy in (("fork", fork, False), ("fork_legacy", fork, True), ("ours", ours, False),
                                ("ours_legacy", ours, True)):
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(state, paths[name], _use_new_zipfile_serialization=not legacy)
    assert "posix.system" in pickle_globals(str(paths["fork"])) | pickle_globals(str(paths["ours_legacy"]))
    yield marker, paths
    assert not marker.exists(), "a checkpoint ran code"


def test_the_converter_refuses_a_checkpoint_that_would_run_code(hostile, tmp_path, capsys):
    from delight_fairseq.convert import main

    marker, paths = hostile
    for name in ("fork", "fork_legacy"):
        err = _one_line_failure(lambda: main([str(paths[name]), str(tmp_path / "out.pt")]), capsys)
        assert "posix.system" in err and "refused" in err
        assert not (tmp_path / "out.pt").exists()


def test_every_checkpoint_reader_refuses_a_checkpoint_that_would_run_code(hostile, tmp_path, capsys):
    marker, paths = hostile
    for name in ("ours", "ours_legacy"):
        path = str(paths[name])
        with pytest.raises(ConfigError, match="posix.system.*refused"):
            load_checkpoint(path)
        err = _one_line_failure(lambda: _script("model_stats")["main"](["--checkpoint", path]), capsys)
        assert "posix.system" in err
        err = _one_line_failure(lambda: _script("correlation_map")["main"]([path, "--out", str(tmp_path / "m.png")]), capsys)
        assert "posix.system" in err and not (tmp_path / "m.png").exists()
        run = tmp_path / f"run-{name}"
        run.mkdir()
        os.link(path, run / "checkpoint_1_10.pt")
        err = _one_line_failure(lambda: _script("average_checkpoints")["main"]([str(run), "--num", "1", "--output",
                                                                                 str(run / "avg.pt")]), capsys)
        assert "posix.system" in err and not (run / "avg.pt").exists()
        job = tmp_path / f"sweep-{name}" / "0"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text("- model.define_depth=3\n")
        os.link(path, job / "checkpoint_best.pt")
        err = _one_line_failure(lambda: _script("collect_sweep")["main"]([str(job.parent)]), capsys)
        assert "posix.system" in err


def test_fairseq_and_the_hub_classes_refuse_a_checkpoint_that_would_run_code(hostile, toy_bin, capsys):
    from delight_fairseq import DeLighTTransformerModel

    marker, paths = hostile
    with pytest.raises(Exception, match="posix.system"):
        DeLighTTransformerModel.from_pretrained(str(paths["ours"].parent), paths["ours"].name, str(toy_bin))
    gen = run_cli("generate", toy_bin, "--user-dir", PLUGIN, "--path", paths["ours"], "--cpu", check=False)
    assert gen.returncode != 0
    assert "posix.system" in gen.stderr and "refused" in gen.stderr and "Traceback" not in gen.stderr, gen.stderr[-2000:]


def test_the_forks_numpy_values_and_meters_load_as_data_or_placeholders(tmp_path, monkeypatch):
    """fairseq 0.9 saved NumPy scalars (e.g. the best loss) and its meters
    (``fairseq.meters.AverageMeter``) in ``extra_state``; the meters' class is never imported."""
    meters = types.ModuleType("fairseq.meters")

    class AverageMeter:
        def __init__(self):
            self.avg = 1.5

    AverageMeter.__module__, AverageMeter.__qualname__ = "fairseq.meters", "AverageMeter"
    meters.AverageMeter = AverageMeter
    monkeypatch.setitem(sys.modules, "fairseq.meters", meters)
    state = load_fork_checkpoint(str(FIXTURES / "lm" / "checkpoint.pt"))
    state["extra_state"] = {"train_iterator": {"epoch": 3}, "best": np.float64(2.5), "dtype": np.dtype("float32"),
                            "train_meters": {"loss": AverageMeter()}}
    for legacy in (False, True):
        src = tmp_path / f"fork{legacy}.pt"
        torch.save(state, src, _use_new_zipfile_serialization=not legacy)
        monkeypatch.delitem(sys.modules, "fairseq.meters")
        loaded = load_fork_checkpoint(str(src))
        monkeypatch.setitem(sys.modules, "fairseq.meters", meters)
        assert loaded["extra_state"]["best"] == 2.5 and loaded["extra_state"]["dtype"] == np.float32
        meter = loaded["extra_state"]["train_meters"]["loss"]
        assert type(meter).__name__ == "AverageMeter" and not isinstance(meter, AverageMeter)
        assert not hasattr(meter, "avg")  # a placeholder keeps nothing
        convert_checkpoint(str(src), str(tmp_path / f"out{legacy}.pt"))
        out = load_checkpoint(str(tmp_path / f"out{legacy}.pt"))  # plain data only: loads with weights_only
        assert out["extra_state"]["train_iterator"] == {"epoch": 3}
        assert type(out["extra_state"]["best"]) is float and out["extra_state"]["best"] == 2.5


def _fork_variant(tmp_path, kind="mt", **edits):
    """The fixture with its args edited (``None`` deletes an option) or its weights replaced."""
    state = load_fork_checkpoint(str(FIXTURES / kind / "checkpoint.pt"))
    state["args"] = copy.copy(state["args"])
    for key, value in edits.items():
        if key == "model":
            state["model"] = value(state["model"])
        elif value is None:
            delattr(state["args"], key)
        else:
            setattr(state["args"], key, value)
    path = tmp_path / f"fork-{len(list(tmp_path.iterdir()))}.pt"
    torch.save(state, path)
    return path


def _resized_table(weights):
    weights = dict(weights)
    table = weights["decoder.embed_tokens.map_layer.weight"]
    weights["decoder.embed_tokens.map_layer.weight"] = torch.cat([table, table[:8]])
    return weights


def _widened_block(weights):
    weights = dict(weights)
    key = next(k for k in weights if k.startswith("encoder.layers.0.") and weights[k].dim() == 2)
    weights[key] = torch.zeros(weights[key].shape[0] + 8, weights[key].shape[1])
    return weights


MALFORMED = {
    # name: (how the file is made, what the one line says)
    "args without a field the converter reads": (lambda t: _fork_variant(t, delight_emb_map_dim=None), "lack --delight-emb-map-dim"),
    "an empty file": (lambda t: _written(t / "empty.pt", b""), "is empty"),
    "a truncated file": (lambda t: _truncated(t), "not a readable"),
    "a directory": (lambda t: t, "is a directory"),
    "a plain fairseq transformer": (lambda t: _fork_variant(t, arch="transformer_wmt_en_de"), "'transformer_wmt_en_de'.*not one of"),
    "weights that contradict the args": (lambda t: _fork_variant(t, model=_widened_block), "do not describe its weights"),
    "shared embeddings over two table sizes": (lambda t: _fork_variant(t, model=_resized_table), "source table has 96 rows and its target table 104"),
    "a list, not a checkpoint": (lambda t: _saved(t, [1, 2, 3]), "not a checkpoint"),
}


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _truncated(tmp_path):
    data = (FIXTURES / "mt" / "checkpoint.pt").read_bytes()
    return _written(tmp_path / "truncated.pt", data[: len(data) // 2])


def _saved(tmp_path, obj):
    path = tmp_path / "other.pt"
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_fork_checkpoint_is_one_line_and_nothing_is_written(case, tmp_path, capsys):
    from delight_fairseq.convert import main

    make, says = MALFORMED[case]
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    src = make(src_dir)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    err = _one_line_failure(lambda: main([str(src), str(tmp_path / "out.pt")]), capsys)
    assert re.search(says, err), err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


@pytest.mark.parametrize("case", ["an empty file", "a truncated file", "a directory", "a list, not a checkpoint"])
def test_the_scripts_answer_a_malformed_checkpoint_with_one_line(case, tmp_path, capsys):
    src_dir = tmp_path / "src"
    src_dir.mkdir()
    src = str(MALFORMED[case][0](src_dir))
    for call in (lambda: _script("model_stats")["main"](["--checkpoint", src]),
                 lambda: _script("correlation_map")["main"]([src, "--out", str(tmp_path / "m.png")])):
        _one_line_failure(call, capsys)
    if case != "a directory":
        run = tmp_path / "run"
        run.mkdir()
        os.link(src, run / "checkpoint_1_10.pt")
        _one_line_failure(lambda: _script("average_checkpoints")["main"]([str(run), "--num", "1", "--output",
                                                                          str(run / "avg.pt")]), capsys)
        assert sorted(p.name for p in run.iterdir()) == ["checkpoint_1_10.pt"]
    assert not (tmp_path / "m.png").exists()


def test_no_code_loads_checkpoints_with_weights_only_false():
    """grep: the project never unpickles a checkpoint with code-running ``torch.load``."""
    proc = subprocess.run(["git", "grep", "-n", "-e", "weights_only=False", "-e", "pickle.load", "--", "*.py", "*.sh",
                           ":!tests/test_untrusted_checkpoints.py"], cwd=REPO, capture_output=True, text=True)
    assert proc.stdout == "", proc.stdout


def test_overwrite_replaces_an_existing_output(tmp_path, capsys):
    from delight_fairseq.convert import main

    out = tmp_path / "out.pt"
    out.write_text("an older file")
    _one_line_failure(lambda: main([str(FIXTURES / "mt" / "checkpoint.pt"), str(out)]), capsys)
    assert out.read_text() == "an older file"  # refused: kept
    assert main([str(FIXTURES / "mt" / "checkpoint.pt"), str(out), "--overwrite"]) == 0
    state = load_checkpoint(str(out))
    assert state["cfg"]["model"]["_name"] == "delight_transformer" and len(state["model"]) > 0
