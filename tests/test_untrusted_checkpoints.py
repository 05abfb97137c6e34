"""Checkpoints are untrusted files: nothing the project opens runs code from them, and a
malformed one is one line, a non-zero exit and nothing written (``delight_fairseq/checkpoints/safe_load.py``)."""
import copy
import io
import os
import re
import runpy
import struct
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import PLUGIN, REPO, build_model, run_cli
from delight_fairseq import ConfigError
from delight_fairseq.checkpoints.convert import convert_checkpoint
from delight_fairseq.checkpoints.safe_load import FairseqPlaceholder, load_checkpoint, load_fork_checkpoint, pickle_globals

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
    from delight_fairseq.checkpoints.convert import main

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
    from delight_fairseq.checkpoints.convert import main

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
    from delight_fairseq.checkpoints.convert import main

    out = tmp_path / "out.pt"
    out.write_text("an older file")
    _one_line_failure(lambda: main([str(FIXTURES / "mt" / "checkpoint.pt"), str(out)]), capsys)
    assert out.read_text() == "an older file"  # refused: kept
    assert main([str(FIXTURES / "mt" / "checkpoint.pt"), str(out), "--overwrite"]) == 0
    state = load_checkpoint(str(out))
    assert state["cfg"]["model"]["_name"] == "delight_transformer" and len(state["model"]) > 0


# ----- the allow-list, stated; a family of hostile pickles (issue #31) -------------------------------------
#
# The allow-list is the security boundary: every global a loader accepts, each with why. A pickle
# may name any of these and nothing else; ``fairseq.*`` names (fork loader only) become inert
# placeholders that are never imported.

# what torch's weights-only unpickler itself allows outside the ``torch`` package (torch 2.13,
# scripts/install.sh): pure data, nothing that can reach a module, a file or the interpreter
TORCH_OUTSIDE_TORCH = {
    "_codecs.encode": "protocol-2 pickles write bytes as encode(text, 'latin1')",
    "builtins.bytearray": "bytes",
    "builtins.complex": "complex numbers",
    "builtins.set": "sets",
    "collections.Counter": "a dict of counts",
    "collections.OrderedDict": "state dicts",
}
# what load_checkpoint adds (fairseq 0.12 checkpoints written with this plugin)
OURS_ADDS = {
    "argparse.Namespace": "the args of argparse-configured models (a plain attribute bag: __setstate__ sets fields)",
}
# what load_fork_checkpoint adds (checkpoints of the authors' fairseq 0.9 fork)
FORK_ADDS = {
    **OURS_ADDS,
    "numpy.core.multiarray.scalar": "NumPy scalars as NumPy 1.x pickles them (the fork's best loss): dtype + raw bytes",
    "numpy._core.multiarray.scalar": "the same, as NumPy 2 names it",
    "numpy.core.multiarray._reconstruct": "NumPy arrays (NumPy 1.x names): an empty array, its state set after",
    "numpy._core.multiarray._reconstruct": "the same, as NumPy 2 names it",
    "numpy.ndarray": "the class _reconstruct builds",
    "numpy.dtype": "the dtype of those scalars and arrays",
    **{f"numpy.dtypes.{name}DType": "NumPy 2 pickles a dtype by its class"
       for name in ("Float16", "Float32", "Float64", "Int32", "Int64", "UInt8", "Bool")},
}


def _named(entry):
    """``(name, object)`` of an allow-list entry as torch takes them: an object or ``(object, name)``."""
    if isinstance(entry, tuple):
        return entry[1], entry[0]
    return f"{entry.__module__}.{entry.__qualname__}", entry


def _is_torch_data_builder(name, obj) -> bool:
    """torch's own entries: its dtypes, quantisation schemes, storage types, tensor, storage and layout
    classes and the functions that rebuild tensors from storages (``_rebuild_*``, ``_get_layout``)."""
    if not name.startswith("torch."):
        return False
    if isinstance(obj, (torch.dtype, torch.qscheme, torch.serialization.StorageType, type)):
        return True
    return callable(obj) and (obj.__name__.startswith("_rebuild") or obj.__name__ == "_get_layout")


def _loader_lists(monkeypatch, load, path):
    """``{name: object}`` that a loader allows beyond torch's defaults while loading ``path``: what
    it hands torch's ``safe_globals`` and what is allowed process-wide at that moment."""
    handed, process_wide = [], []
    real = torch.serialization.safe_globals

    def recording(entries):
        handed.extend(entries)
        process_wide.extend(torch.serialization.get_safe_globals())
        return real(entries)

    monkeypatch.setattr(torch.serialization, "safe_globals", recording)
    load(str(path))
    monkeypatch.setattr(torch.serialization, "safe_globals", real)
    assert handed or process_wide, "the loader allowed nothing: did it stop using torch's safe_globals?"
    # torch's own entries stay torch's: a loader adds nothing in the torch namespace
    return {**{n: obj for n, obj in map(_named, process_wide) if not n.startswith("torch.")}, **dict(map(_named, handed))}


def test_every_global_the_loaders_accept_is_stated_with_its_reason(monkeypatch, tmp_path):
    """The effective allow-lists equal the tables above: torch's own (outside ``torch`` exactly
    TORCH_OUTSIDE_TORCH; inside it only its tensor-building entries), what the plugin adds
    process-wide for fairseq's own ``torch.load`` (``compat``: OURS_ADDS), and what each loader
    of safe_load.py allows while it loads (OURS_ADDS; FORK_ADDS and fairseq placeholders)."""
    from torch import _weights_only_unpickler as wou

    default = dict(wou._get_allowed_globals())
    registered = dict(map(_named, torch.serialization.get_safe_globals()))  # process-wide, after the plugin loaded
    assert {n for n in default if not n.startswith("torch.")} == set(TORCH_OUTSIDE_TORCH)
    assert {n for n in registered if not n.startswith("torch.")} == set(OURS_ADDS)
    torch_own = {n: obj for n, obj in {**default, **registered}.items() if n.startswith("torch.")}
    assert all(_is_torch_data_builder(n, obj) for n, obj in torch_own.items()), \
        sorted(n for n, obj in torch_own.items() if not _is_torch_data_builder(n, obj))
    ours_path = tmp_path / "ours.pt"
    torch.save({"model": build_model().state_dict(), "args": argparse_namespace()}, ours_path)
    assert set(_loader_lists(monkeypatch, load_checkpoint, ours_path)) == set(OURS_ADDS)
    fork = _loader_lists(monkeypatch, load_fork_checkpoint, FIXTURES / "mt" / "checkpoint.pt")
    placeholders = {n for n, obj in fork.items() if isinstance(obj, type) and issubclass(obj, FairseqPlaceholder)}
    assert all(n.startswith("fairseq.") for n in placeholders)  # inert stand-ins, named as the file names them
    assert set(fork) - placeholders == set(FORK_ADDS)


def test_the_loaders_leave_the_process_wide_allow_list_as_they_found_it(tmp_path):
    """torch's ``safe_globals`` context removes on exit what it was given: safe_load must not hand
    it the plugin's process-wide ``argparse.Namespace``, or fairseq's own loading (fairseq-generate,
    the hub classes) refuses a Namespace checkpoint once a safe_load loader has run in the process."""
    before = [_named(e)[0] for e in torch.serialization.get_safe_globals()]
    path = tmp_path / "ns.pt"
    torch.save({"model": {}, "args": argparse_namespace()}, path)
    load_checkpoint(str(path))
    load_fork_checkpoint(str(FIXTURES / "mt" / "checkpoint.pt"))
    assert sorted(_named(e)[0] for e in torch.serialization.get_safe_globals()) == sorted(before)
    # what fairseq's checkpoint_utils.load_checkpoint_to_cpu calls (torch's default weights_only=True)
    assert torch.load(str(path), map_location="cpu")["args"].arch == "delight_transformer"


def argparse_namespace():
    import argparse

    return argparse.Namespace(arch="delight_transformer", lr=[0.001])


# ----- pickles written opcode by opcode: what a hostile file can say --------------------------------------

def _s(text: str) -> bytes:  # BINUNICODE
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _g(module: str, name: str) -> bytes:  # GLOBAL
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tuple(*items: bytes) -> bytes:  # MARK ... TUPLE
    return b"(" + b"".join(items) + b"t"


def _call(fn: bytes, *args: bytes) -> bytes:  # fn(*args): REDUCE
    return fn + _tuple(*args) + b"R"


def _checkpoint(payload: bytes) -> bytes:
    """``{"model": {}, "extra_state": payload}`` (protocol 2)."""
    return b"\x80\x02}" + _s("model") + b"}s" + _s("extra_state") + payload + b"s."


def _payloads(tmp_path):
    """``{name: (pickle, the globals that must be refused, marker)}``: each pickle, unpickled
    unrestricted, creates its marker file (the test checks that it does)."""
    out = {}

    def add(name, make, refused):
        marker = tmp_path / f"ran-{re.sub(r'[^a-z0-9]+', '-', name.lower())}"
        out[name] = (_checkpoint(make(marker)), set(refused), marker)

    def touch_code(marker):
        return f"__import__('pathlib').Path({str(marker)!r}).touch()"

    def module_touching(marker, module):
        """A module on sys.path (tmp_path/mods) whose import creates ``marker``."""
        (tmp_path / "mods").mkdir(exist_ok=True)
        (tmp_path / "mods" / f"{module}.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n")
        return module

    def class_touching(marker, module, cls):
        """``module.cls``: a harmless-looking class whose construction creates ``marker``."""
        (tmp_path / "mods").mkdir(exist_ok=True)
        (tmp_path / "mods" / f"{module}.py").write_text(
            f"import pathlib\nclass {cls}:\n    def __init__(self, *args):\n"
            f"        pathlib.Path({str(marker)!r}).touch()\n")
        return _call(_g(module, cls))

    getattr_ = _g("builtins", "getattr")
    dangerous = {  # name: (callable as the pickle names it, its arguments given the marker)
        "builtins.eval": (("builtins", "eval"), lambda m: [_s(touch_code(m))]),
        "builtins.exec": (("builtins", "exec"), lambda m: [_s(touch_code(m))]),
        "posix.system": (("posix", "system"), lambda m: [_s(f"touch {m}")]),
        "os.system": (("os", "system"), lambda m: [_s(f"touch {m}")]),
        "subprocess.Popen": (("subprocess", "Popen"), lambda m: [_tuple(_s("touch"), _s(str(m)))]),
        "builtins.__import__": (("builtins", "__import__"), lambda m: [_s(module_touching(m, f"evil_{m.name[4:]}".replace("-", "_")))]),
        "importlib.import_module": (("importlib", "import_module"),
                                    lambda m: [_s(module_touching(m, f"evil_{m.name[4:]}".replace("-", "_")))]),
    }
    for name, ((module, fn), args) in dangerous.items():
        add(name, lambda m, module=module, fn=fn, args=args: _call(_g(module, fn), *args(m)), [f"{module}.{fn}"])
        # functools.partial(fn, *args)(): the callable handed over as an argument
        add(f"functools.partial of {name}",
            lambda m, module=module, fn=fn, args=args: _call(_call(_g("functools", "partial"), _g(module, fn), *args(m))),
            ["functools.partial", f"{module}.{fn}"])
    # getattr alone reaches os from an allowed torch function: _get_layout.__globals__.get("os").system(...)
    add("builtins.getattr", lambda m: _call(_call(getattr_, _call(_call(getattr_, _call(
        getattr_, _g("torch.serialization", "_get_layout"), _s("__globals__")), _s("get")), _s("os")), _s("system")),
        _s(f"touch {m}")), ["builtins.getattr"])
    # a nested __reduce__: posix.system inside an allowed OrderedDict's items
    add("posix.system nested in an OrderedDict", lambda m: _call(_g("collections", "OrderedDict"), b"](" + _tuple(
        _s("loss"), _call(_g("posix", "system"), _s(f"touch {m}"))) + b"e"), ["posix.system"])
    # the global's name fetched from the memo for protocol 4's STACK_GLOBAL
    add("posix.system by STACK_GLOBAL from the memo", lambda m: (
        _s("posix") + b"q\x00" + b"0" + _s("system") + b"q\x01" + b"0" + b"h\x00h\x01\x93" + _tuple(_s(f"touch {m}"))
        + b"R"), ["posix.system"])
    # torch's own namespace: the prefix the first check lets through to torch's unpickler
    def hubconf(m):
        (tmp_path / "hub").mkdir(exist_ok=True)
        (tmp_path / "hub" / "hubconf.py").write_text(f"import pathlib\npathlib.Path({str(m)!r}).touch()\n")
        return _call(_g("torch.hub", "_load_local"), _s(str(tmp_path / "hub")), _s("model"))
    add("torch.hub._load_local", hubconf, ["torch.hub._load_local"])
    # classes from unexpected modules with harmless-looking names
    add("argparse_compat.Namespace", lambda m: class_touching(m, "argparse_compat", "Namespace"),
        ["argparse_compat.Namespace"])
    add("fairseq_meters.AverageMeter", lambda m: class_touching(m, "fairseq_meters", "AverageMeter"),
        ["fairseq_meters.AverageMeter"])
    add("numpy_compat.dtype", lambda m: class_touching(m, "numpy_compat", "dtype"), ["numpy_compat.dtype"])
    return out


@pytest.fixture
def payloads(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    for name in list(sys.modules):  # the payload modules, never imported before
        if name.startswith(("evil_", "argparse_compat", "fairseq_meters", "numpy_compat")):
            monkeypatch.delitem(sys.modules, name)
    return _payloads(tmp_path)


def _unrestricted(data: bytes):
    """What plain pickle would do with it (the attack the loaders stop)."""
    import pickle

    try:
        pickle.loads(data)
    except Exception:  # noqa: BLE001  (the code ran before anything failed, or the pickle is broken)
        pass


def test_each_hostile_pickle_really_runs_code_when_unpickled_unrestricted(payloads):
    import time

    for name, (data, _, marker) in payloads.items():
        _unrestricted(data)
        deadline = time.time() + 10
        while not marker.exists() and time.time() < deadline:  # Popen: the child runs on its own
            time.sleep(0.01)
        assert marker.exists(), f"{name}: the payload does nothing, so refusing it proves nothing"
        marker.unlink()
    for name in list(sys.modules):
        if name.startswith(("evil_", "argparse_compat", "fairseq_meters", "numpy_compat")):
            del sys.modules[name]


def _torch_file(data: bytes, path: Path, legacy: bool) -> Path:
    """``data`` as the object pickle of a torch.save file: the zip format's data.pkl, or the
    legacy format's fourth pickle (after the magic number, protocol and system info)."""
    if legacy:
        head = b"".join(pickle_dumps(v) for v in (0x1950A86A20F9469CFC6C, 1001, {
            "protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}))
        path.write_bytes(head + data + pickle_dumps([]))
        return path
    template = io.BytesIO()
    torch.save({}, template)
    with zipfile.ZipFile(io.BytesIO(template.getvalue())) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for info in src.infolist():
            out.writestr(info.filename, data if info.filename.endswith("data.pkl") else src.read(info.filename))
    return path


def pickle_dumps(value) -> bytes:
    import pickle

    return pickle.dumps(value, protocol=2)


def _fairseq_load(path: str):
    from fairseq import checkpoint_utils

    return checkpoint_utils.load_checkpoint_to_cpu(path)  # fairseq-generate's, --restore-file's


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("loader", ["load_checkpoint", "load_fork_checkpoint", "fairseq"])
def test_every_hostile_pickle_is_refused_before_anything_runs(payloads, tmp_path, loader, legacy):
    """Each payload through each loader (safe_load's two, and fairseq's own ``torch.load`` with the
    plugin's process-wide additions) in both torch formats: refused, naming a global it must
    refuse (safe_load's: one ConfigError line), no marker, no payload module imported."""
    import pickle

    load = {"load_checkpoint": load_checkpoint, "load_fork_checkpoint": load_fork_checkpoint,
            "fairseq": _fairseq_load}[loader]
    for name, (data, refused, marker) in payloads.items():
        path = _torch_file(data, tmp_path / f"hostile-{legacy}.pt", legacy)
        with pytest.raises(ConfigError if loader != "fairseq" else (ConfigError, pickle.UnpicklingError)) as e:
            load(str(path))
        message = str(e.value)
        if loader != "fairseq":  # safe_load names what it refuses, before unpickling (torch may stop earlier)
            assert "refused" in message and "\n" not in message, (name, message)
            first = re.search(r"refers to ([\w.<> ]+)", message).group(1).split(",")[0].strip()
            assert first in refused or f"builtins.{first}" in refused, (name, message)  # torch: builtins.eval is "eval"
        assert not marker.exists(), f"{name} ran through {loader}"
        assert not any(m.startswith(("evil_", "argparse_compat", "fairseq_meters", "numpy_compat"))
                       for m in sys.modules), name


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_the_allowed_globals_load_and_their_near_misses_do_not(tmp_path, legacy):
    """Naming a global (not calling it) in a checkpoint: each stated one loads through its loader;
    names beside them (another class of the same module, a lookalike module) are refused."""
    def loads(load, module, name):
        path = _torch_file(_checkpoint(_g(module, name)), tmp_path / "probe.pt", legacy)
        try:
            load(str(path))
            return True
        except ConfigError as e:
            assert "refused" in str(e), str(e)
            return False

    for full in {**TORCH_OUTSIDE_TORCH, **OURS_ADDS}:
        assert loads(load_checkpoint, *full.rsplit(".", 1)), full
    for full in FORK_ADDS:
        assert loads(load_fork_checkpoint, *full.rsplit(".", 1)), full
    assert loads(load_fork_checkpoint, "fairseq.meters", "AverageMeter")  # a placeholder
    assert not loads(load_checkpoint, "fairseq.meters", "AverageMeter")  # ours hold no fairseq objects
    near_misses = ["argparse.ArgumentParser", "argparse._sys", "numpy.load", "numpy.core.multiarray.fromfile",
                   "numpy._core.multiarray.frombuffer", "collections.namedtuple", "collections.abc.Callable",
                   "builtins.getattr", "builtins.open", "builtins.type", "_codecs.decode", "codecs.encode",
                   "fairseq_cli.train.main", "fairseqx.meters.AverageMeter", "torch.load", "torch.hub.load",
                   "torch.jit.load", "torch.serialization.load", "torch._C._import_dotted_name", "copyreg._reconstructor"]
    for full in near_misses:
        for load in (load_checkpoint, load_fork_checkpoint):
            assert not loads(load, *full.rsplit(".", 1)), (full, load.__name__)
