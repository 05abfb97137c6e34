"""The library under the plugin: the building blocks' source imports nothing but torch (and
the standard library); importing the package imports fairseq and registers the plugin, with
no import hook, its changes to fairseq one table applied by one helper."""
import ast
import subprocess
import sys

from conftest import REPO

FRESH = [sys.executable, "-c"]
BLOCKS = REPO / "delight_fairseq" / "modules"


def run(code: str) -> str:
    proc = subprocess.run([*FRESH, code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def imported_roots(path) -> set:
    """The top-level packages a source file imports (relative imports as '.')."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots.add("." if node.level else node.module.split(".")[0])
    return roots


def test_the_building_blocks_source_imports_only_torch():
    """Read, not run: every file of modules/ imports torch, the standard library and its own
    folder; no fairseq, hydra, omegaconf or numpy."""
    allowed = {".", "torch", "numpy", "math", "typing", "dataclasses", "contextlib", "functools", "sys", "itertools",
               "collections", "weakref", "threading"}
    for path in sorted(BLOCKS.glob("*.py")):
        assert imported_roots(path) <= allowed, (path.name, imported_roots(path) - allowed)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, (path.name, "imports from outside modules/")


def test_importing_the_building_blocks_installs_no_import_hook():
    out = run("import sys\nbefore = list(sys.meta_path)\nimport delight_fairseq.modules\n"
              "print(sys.meta_path == before)")
    assert out == "True"


def test_every_change_to_fairseq_is_a_row_of_one_table_applied_once_and_marked():
    """compat.PATCHES: each row wraps what it names (marked), a second apply() changes nothing,
    and nothing else in the package assigns into fairseq, numpy or sys."""
    out = run(
        "import importlib, sys, delight_fairseq\n"
        "from delight_fairseq import compat\n"
        "values = [getattr(p.owner(), p.name) for p in compat.PATCHES]\n"
        "compat.apply()\n"
        "again = [getattr(p.owner(), p.name) for p in compat.PATCHES]\n"
        "print(len(compat.PATCHES), all(getattr(v, '_delight_fairseq', False) for v in values),\n"
        "      all(a is b for a, b in zip(values, again)), all(p.why and p.remove_when for p in compat.PATCHES))\n"
    )
    assert out == "9 True True True"
    for path in (REPO / "delight_fairseq").rglob("*.py"):
        if path.name == "compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Attribute):
                        root = target
                        while isinstance(root, ast.Attribute):
                            root = root.value
                        assert not (isinstance(root, ast.Name) and root.id in {"fairseq", "np", "numpy", "sys"}), \
                            (path, ast.unparse(target))


def test_fairseq_loads_the_plugin_and_its_fixes_with_the_package():
    out = run(
        "import sys, fairseq.models\n"
        "import delight_fairseq\n"
        "from fairseq.models import ARCH_MODEL_REGISTRY\n"
        "from fairseq.optim.lr_scheduler import LR_SCHEDULER_REGISTRY\n"
        "print('delight_transformer_wmt14_en_de_512' in ARCH_MODEL_REGISTRY, 'define_lm_wiki103_delight' in ARCH_MODEL_REGISTRY,\n"
        "      'linear' in LR_SCHEDULER_REGISTRY, getattr(sys.excepthook, '_delight_fairseq', False))\n"
    )
    assert out == "True True True True"


def test_the_hub_classes_come_with_the_package():
    out = run(
        "import delight_fairseq\n"
        "from delight_fairseq import DeLighTTransformerModel, DefineLanguageModel, ConfigError\n"
        "from fairseq.models import ARCH_MODEL_REGISTRY\n"
        "print(DeLighTTransformerModel.__name__, DefineLanguageModel.__name__, 'define_lm' in ARCH_MODEL_REGISTRY)\n"
    )
    assert out == "DeLighTTransformerModel DefineLanguageModel True"


def test_task_build_model_takes_an_argparse_namespace(toy_bin, lm_data):
    """fairseq's legacy API (parse_args_and_arch, then task.build_model(args)) builds the same
    model as the dataclass path."""
    import torch
    from fairseq import options, tasks

    from conftest import PLUGIN

    for data, arch, task_args in [(toy_bin, "delight_transformer_wmt14_en_de_128", ["--task", "translation"]),
                                  (lm_data / "bin", "define_lm_small", ["--task", "language_modeling"])]:
        parser = options.get_training_parser()
        args = options.parse_args_and_arch(parser, [str(data), "--user-dir", PLUGIN, "--arch", arch, *task_args])
        task = tasks.setup_task(args)
        torch.manual_seed(0)
        legacy = task.build_model(args)
        from fairseq.dataclass.utils import convert_namespace_to_omegaconf

        torch.manual_seed(0)
        hydra = task.build_model(convert_namespace_to_omegaconf(args).model)
        assert [(k, v.shape) for k, v in legacy.state_dict().items()] == [(k, v.shape) for k, v in hydra.state_dict().items()]
        assert all(torch.equal(a, b) for a, b in zip(legacy.state_dict().values(), hydra.state_dict().values()))


def test_one_import_in_any_order_lets_fairseq_load_a_trained_checkpoint(toy_checkpoint, toy_bin):
    """``import delight_fairseq`` before or after fairseq: fairseq's own checkpoint loader
    finds the plugin's models."""
    load = ("from fairseq import checkpoint_utils\n"
            f"models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([{str(toy_checkpoint / 'checkpoint_best.pt')!r}],"
            f" arg_overrides={{'data': {str(toy_bin)!r}}})\n"
            "print(type(models[0]).__name__, cfg.model._name)\n")
    expected = "DeLighTTransformerModel delight_transformer_wmt14_en_de_128"
    assert run("import delight_fairseq\n" + load).splitlines()[-1] == expected
    assert run(load.replace("from fairseq import checkpoint_utils\n",
                            "from fairseq import checkpoint_utils\nimport delight_fairseq\n")).splitlines()[-1] == expected
