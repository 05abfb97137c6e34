"""Shared helpers: tiny configs and dictionaries, and the fairseq command line run as
subprocesses on a generated corpus (as fairseq's own tests/test_binaries.py does)."""
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import delight_fairseq.models  # noqa: F401  (the plugin: registers the models, applies its fixes)
from delight_fairseq.models.delight_config import DeLighTTransformerConfig
from delight_fairseq.models.delight_transformer import DeLighTTransformerModel
from delight_fairseq.stats import dictionary_of_size

REPO = Path(__file__).resolve().parents[1]
PLUGIN = str(REPO / "delight_fairseq")


make_dictionary = dictionary_of_size  # (size, prefix="w"): exactly ``size`` entries, 4 specials included


def tiny_cfg(**overrides) -> DeLighTTransformerConfig:
    """Distinct encoder/decoder/map dims so that swapped axes fail; no dropout."""
    base = dict(
        encoder_embed_dim=64, decoder_embed_dim=48, embed_map_dim=16,
        encoder_blocks=3, decoder_blocks=2, encoder_min_depth=2, encoder_max_depth=5,
        decoder_min_depth=3, decoder_max_depth=4, dropout=0.0,
    )
    base.update(overrides)
    return DeLighTTransformerConfig(**base)


def build_model(cfg=None, src_dict=None, tgt_dict=None, seed: int = 0) -> DeLighTTransformerModel:
    torch.manual_seed(seed)
    src_dict = src_dict or make_dictionary(40)
    tgt_dict = tgt_dict or (src_dict if (cfg is not None and cfg.share_all_embeddings) else make_dictionary(36, "t"))
    task = SimpleNamespace(source_dictionary=src_dict, target_dictionary=tgt_dict)
    return DeLighTTransformerModel.build_model(cfg or tiny_cfg(), task)


def num_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def run_cli(tool: str, *args, cwd=None, check=True, input_text=None) -> subprocess.CompletedProcess:
    """Run ``fairseq-<tool>`` (as ``python -m fairseq_cli.<tool>``) and return it;
    on failure the assertion shows the output's tail."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-m", f"fairseq_cli.{tool}", *map(str, args)],
        cwd=cwd, env=env, capture_output=True, text=True, input=input_text,
    )
    if check:
        assert proc.returncode == 0, f"fairseq-{tool} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


TOY_TRAIN_ARGS = [
    "--user-dir", PLUGIN, "--cpu", "--arch", "delight_transformer_wmt14_en_de_128",
    "--encoder-embed-dim", 64, "--decoder-embed-dim", 64, "--embed-map-dim", 32,
    "--encoder-blocks", 2, "--decoder-blocks", 2,
    "--encoder-min-depth", 2, "--encoder-max-depth", 3, "--decoder-min-depth", 2, "--decoder-max-depth", 3,
    "--dropout", 0.0, "--attention-dropout", 0.0, "--ffn-dropout", 0.0, "--embed-dropout", 0.0, "--pos-dropout", 0.0,
    "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", 3e-3, "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 50,
    "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", 0.1,
    "--max-tokens", 2000, "--seed", 1, "--num-workers", 0, "--data-buffer-size", 0,
    "--log-format", "simple", "--log-interval", 50, "--no-epoch-checkpoints",
]


# define_transformer_small on the toy corpus (fairseq's transformer options)
DEFINE_TRANSFORMER_TRAIN_ARGS = [
    "--user-dir", PLUGIN, "--cpu", "--arch", "define_transformer_small", "--dropout", 0.0, "--optimizer", "adam",
    "--adam-betas", "(0.9,0.98)", "--lr", 3e-3, "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 50,
    "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", 0.1, "--max-tokens", 2000, "--seed", 1,
    "--num-workers", 0, "--log-format", "simple", "--log-interval", 100, "--no-epoch-checkpoints",
]


@pytest.fixture(scope="session")
def toy_bin(tmp_path_factory) -> Path:
    """The demo's synthetic reversal corpus, binarised with a joined dictionary."""
    root = tmp_path_factory.mktemp("toy")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_toy_data.py"), str(root / "raw")], check=True)
    run_cli(
        "preprocess", "--source-lang", "src", "--target-lang", "tgt", "--joined-dictionary", "--workers", 1,
        "--trainpref", root / "raw" / "train", "--validpref", root / "raw" / "valid",
        "--testpref", root / "raw" / "test", "--destdir", root / "bin",
    )
    return root / "bin"


@pytest.fixture(scope="session")
def toy_checkpoint(toy_bin, tmp_path_factory) -> Path:
    """A delight_transformer trained 400 updates on the toy corpus: its save dir, holding
    checkpoint_last.pt, checkpoint_best.pt, checkpoint_*_{150,225,300,375}.pt and train.log
    (every 75 updates: never at an epoch's end, where fairseq names checkpoints by epoch)."""
    save = tmp_path_factory.mktemp("ckpt")
    proc = run_cli("train", toy_bin, *TOY_TRAIN_ARGS, "--max-update", 400, "--save-dir", save,
                   "--save-interval-updates", 75, "--keep-interval-updates", 4)
    (save / "train.log").write_text(proc.stdout + proc.stderr)
    return save


def lm_cfg(arch: str = None, **overrides):
    """A ``DefineLMConfig`` as fairseq builds it (``stats.preset_config``: the ``--arch``
    function applied to the given options, then dataclass defaults), with the task-level
    values a language-modeling task fills in."""
    from delight_fairseq.stats import preset_config

    cfg = preset_config(arch or "define_lm", overrides)
    cfg.tokens_per_sample, cfg.max_target_positions, cfg.tpu = 64, None, False
    if "tokens_per_sample" in overrides:
        cfg.tokens_per_sample = overrides["tokens_per_sample"]
    return cfg


def build_lm(cfg, dictionary=None, seed: int = 0):
    from delight_fairseq.models.define_lm import DefineLanguageModel

    torch.manual_seed(seed)
    dictionary = dictionary or make_dictionary(200)
    task = SimpleNamespace(source_dictionary=dictionary, target_dictionary=dictionary)
    return DefineLanguageModel.build_model(cfg, task)


@pytest.fixture(scope="session")
def lm_data(tmp_path_factory) -> Path:
    """The synthetic Markov-chain corpus (raw/ and bin/), binarised with --only-source."""
    root = tmp_path_factory.mktemp("lm")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_toy_lm_data.py"), str(root / "raw")],
                   check=True, capture_output=True)
    run_cli(
        "preprocess", "--only-source", "--workers", 1, "--trainpref", root / "raw" / "train.txt",
        "--validpref", root / "raw" / "valid.txt", "--testpref", root / "raw" / "test.txt", "--destdir", root / "bin",
    )
    return root


LM_TRAIN_ARGS = [
    "--task", "language_modeling", "--user-dir", PLUGIN, "--cpu", "--tokens-per-sample", 64,
    "--sample-break-mode", "none", "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", 3e-3,
    "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 50, "--max-tokens", 2048, "--max-update", 200,
    "--seed", 1, "--dropout", 0.0, "--num-workers", 0, "--data-buffer-size", 0, "--log-format", "simple",
    "--log-interval", 100, "--no-epoch-checkpoints",
]


def seen_and_unseen(lm_data):
    """``(word, a successor it has in the training text, a word that never follows it)``, for
    checking that a trained language model scores a seen continuation above an unseen one."""
    import collections

    words = (lm_data / "raw" / "train.txt").read_text().split()
    successors = collections.defaultdict(collections.Counter)
    for a, b in zip(words, words[1:]):
        successors[a][b] += 1
    word = "w94"
    seen = successors[word].most_common(1)[0][0]
    unseen = next(w for w in sorted(set(words)) if w not in successors[word])
    return word, seen, unseen


# ----- the fast tier (pytest -m fast): every test that trains nothing through the command line --------------

SLOW_FIXTURES = {"toy_bin", "toy_checkpoint", "lm_data", "trained", "trained_lm", "one_worker", "awd_run", "custom_mt",
                 "converted"}
SLOW_TESTS = {  # in-process or short-subprocess tests that still take seconds each
    "test_dextra_under_torch_compile_equals_eager", "test_every_dataset_config_trains_through_train_sh",
    "test_the_gpu_suite_runs_with_smoke_sizes", "test_lm_preset_in_bf16_and_fp16_matches_fp32",
    "test_translation_preset_in_bf16_and_fp16_matches_fp32", "test_model_configs_are_generated_from_the_presets",
}
SLOW_FILES = {"test_data_prep.py", "test_package.py", "test_resume.py", "test_hostile_data.py", "test_ddp_modules.py"}
FAST_ANYWAY = {"test_parallel_tokenisation_and_bpe_equal_one_worker"}  # data-prep's text steps, in seconds


def pytest_collection_modifyitems(config, items):
    """``fast``: the maintainers' quick tier (README, "Development"): tests that use none of the
    trained fixtures, run no data-prep script or fresh interpreter, and are not listed as slow."""
    for item in items:
        name = item.originalname if hasattr(item, "originalname") else item.name
        if name in FAST_ANYWAY or not (SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or name in SLOW_TESTS
                                        or item.path.name in SLOW_FILES):
            item.add_marker(pytest.mark.fast)
