"""The library under the plugin: the building blocks import no fairseq and change nothing
outside; the plugin registers itself when fairseq loads it."""
import subprocess
import sys

from conftest import REPO

FRESH = [sys.executable, "-c"]


def run(code: str) -> str:
    proc = subprocess.run([*FRESH, code], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def test_the_building_blocks_import_no_fairseq_and_patch_nothing():
    out = run(
        "import argparse, sys, numpy, torch\n"
        "hook = sys.excepthook\n"
        "import delight_fairseq.modules\n"
        "from delight_fairseq.modules import DExTra, GroupLinear, DeLighTLayer\n"
        "fairseq = sorted(m for m in sys.modules if m.split('.')[0] == 'fairseq')\n"
        "print(fairseq, sys.excepthook is hook, hasattr(numpy, 'compat'),\n"
        "      argparse.Namespace in torch.serialization.get_safe_globals())\n"
        "DExTra(32, 16, 16, 4, 2.0, 4)(torch.randn(3, 32))\n"
    )
    assert out == "[] True False False"


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


def test_the_hub_classes_load_the_plugin_on_first_use():
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
    finds the plugin's models (before, the package registered nothing: KeyError '_name');
    the building blocks alone still import no fairseq."""
    load = ("from fairseq import checkpoint_utils\n"
            f"models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([{str(toy_checkpoint / 'checkpoint_best.pt')!r}],"
            f" arg_overrides={{'data': {str(toy_bin)!r}}})\n"
            "print(type(models[0]).__name__, cfg.model._name)\n")
    expected = "DeLighTTransformerModel delight_transformer_wmt14_en_de_128"
    assert run("import delight_fairseq\n" + load).splitlines()[-1] == expected
    assert run(load.replace("from fairseq import checkpoint_utils\n",
                            "from fairseq import checkpoint_utils\nimport delight_fairseq\n")).splitlines()[-1] == expected
    assert run("import sys, delight_fairseq, delight_fairseq.modules\n"
               "print([m for m in sys.modules if m.split('.')[0] == 'fairseq'])") == "[]"
