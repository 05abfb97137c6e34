"""Shared helpers: tiny configs and dictionaries, and the fairseq command line run as
subprocesses on a generated corpus (as fairseq's own tests/test_binaries.py does)."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

# pytest-xdist runs the suite in several workers (pyproject's addopts): the cores are shared
# out among them, here and in every fairseq command the tests start
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
THREADS = max(1, min(2, len(os.sched_getaffinity(0)) // WORKERS))
os.environ["OMP_NUM_THREADS"] = str(THREADS)

import pytest  # noqa: E402
import torch  # noqa: E402
from filelock import FileLock  # noqa: E402

import delight_fairseq.models  # noqa: E402,F401  (the plugin: registers the models, applies its fixes)
from delight_fairseq.models.delight_config import DeLighTTransformerConfig  # noqa: E402
from delight_fairseq.models.delight_transformer import DeLighTTransformerModel  # noqa: E402
from delight_fairseq.models.factory import dictionary_of_size  # noqa: E402

torch.set_num_threads(THREADS)

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
    env = dict(os.environ, PYTHONUNBUFFERED="1")
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


def shared(tmp_path_factory, name: str, make) -> Path:
    """``make(path)`` once per test run, its result shared by every xdist worker: built under a
    lock in the run's common temporary directory; one left half-made by an interrupted run is
    made again."""
    root = tmp_path_factory.getbasetemp()
    if WORKERS > 1:
        root = root.parent  # popen-gwN/ -> the run's directory
    path = root / f"shared-{name}"
    done = path.with_name(path.name + ".done")
    with FileLock(f"{path}.lock"):
        if not done.exists():
            shutil.rmtree(path, ignore_errors=True)
            path.mkdir()
            make(path)
            done.touch()
    return path


def _make_toy_bin(root: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_toy_data.py"), str(root / "raw")], check=True)
    run_cli(
        "preprocess", "--source-lang", "src", "--target-lang", "tgt", "--joined-dictionary", "--workers", 1,
        "--trainpref", root / "raw" / "train", "--validpref", root / "raw" / "valid",
        "--testpref", root / "raw" / "test", "--destdir", root / "bin",
    )


@pytest.fixture(scope="session")
def toy_bin(tmp_path_factory) -> Path:
    """The demo's synthetic reversal corpus, binarised with a joined dictionary."""
    return shared(tmp_path_factory, "toy", _make_toy_bin) / "bin"


@pytest.fixture(scope="session")
def toy_checkpoint(toy_bin, tmp_path_factory) -> Path:
    """A delight_transformer trained 400 updates on the toy corpus: its save dir, holding
    checkpoint_last.pt, checkpoint_best.pt, checkpoint_*_{150,225,300,375}.pt and train.log
    (every 75 updates: never at an epoch's end, where fairseq names checkpoints by epoch)."""
    def train(save):
        proc = run_cli("train", toy_bin, *TOY_TRAIN_ARGS, "--max-update", 400, "--save-dir", save,
                       "--save-interval-updates", 75, "--keep-interval-updates", 4)
        (save / "train.log").write_text(proc.stdout + proc.stderr)

    return shared(tmp_path_factory, "ckpt", train)


def lm_cfg(arch: str = None, **overrides):
    """A ``DefineLMConfig`` as fairseq builds it (``stats.preset_config``: the ``--arch``
    function applied to the given options, then dataclass defaults), with the task-level
    values a language-modeling task fills in."""
    from delight_fairseq.models.factory import preset_config

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


def _make_lm_data(root: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_toy_lm_data.py"), str(root / "raw")],
                   check=True, capture_output=True)
    run_cli(
        "preprocess", "--only-source", "--workers", 1, "--trainpref", root / "raw" / "train.txt",
        "--validpref", root / "raw" / "valid.txt", "--testpref", root / "raw" / "test.txt", "--destdir", root / "bin",
    )


@pytest.fixture(scope="session")
def lm_data(tmp_path_factory) -> Path:
    """The synthetic Markov-chain corpus (raw/ and bin/), binarised with --only-source."""
    return shared(tmp_path_factory, "lm", _make_lm_data)


LM_TRAIN_ARGS = [
    "--task", "language_modeling", "--user-dir", PLUGIN, "--cpu", "--tokens-per-sample", 64,
    "--sample-break-mode", "none", "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", 3e-3,
    "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 50, "--max-tokens", 2048, "--max-update", 200,
    "--seed", 1, "--dropout", 0.0, "--num-workers", 0, "--data-buffer-size", 0, "--log-format", "simple",
    "--log-interval", 100, "--no-epoch-checkpoints",
]


ADAPTIVE_ARGS = ["--criterion", "adaptive_loss", "--ddp-backend", "legacy_ddp", "--adaptive-input",
                 "--adaptive-input-cutoff", "50,120", "--adaptive-softmax-cutoff", "50,120", "--adaptive-input-factor", 2,
                 "--adaptive-softmax-factor", 2, "--tie-adaptive-weights", "--tie-adaptive-proj"]
# models trained once per session, on first use (``trained_models``): data ("mt" toy / "lm" toy) and options
TRAINED = {
    # DeFINE embedding + DeLighT blocks (the preset)
    "define+delight": ("lm", [*LM_TRAIN_ARGS, "--arch", "define_lm_small"]),
    # DeFINE over adaptive input, tied adaptive softmax, fairseq transformer blocks
    "define+adaptive+transformer": ("lm", [*LM_TRAIN_ARGS, "--arch", "define_lm_small", "--block-type", "transformer",
                                           *ADAPTIVE_ARGS]),
    # LSTM with DeFINE and AWD-LSTM's regularisers (the preset), tied through O -> n
    "lstm+define+awd": ("lm", [*LM_TRAIN_ARGS, "--arch", "define_lstm_lm_small"]),
    # LSTM with DeFINE over adaptive input and a tied adaptive softmax
    "lstm+define+adaptive": ("lm", [*LM_TRAIN_ARGS, "--arch", "define_lstm_lm", "--decoder-input-dim", 64,
                                    "--decoder-embed-dim", 128, "--decoder-hidden-size", 256, "--decoder-layers", 2,
                                    "--define-embedding", "--define-expand-dim", 256, "--define-depth", 2,
                                    "--define-max-groups", 2, "--weight-drop", 0.2, *ADAPTIVE_ARGS]),
    # fairseq's transformer with DeFINE on the toy translation task
    "define_transformer_small": ("mt", [*DEFINE_TRANSFORMER_TRAIN_ARGS, "--max-update", 400]),
    # Transformer-XL with DeFINE, the text read in order with memory
    "define_transformer_xl_small": ("lm", [
        "--user-dir", PLUGIN, "--cpu", "--task", "truncated_bptt_lm", "--tokens-per-sample", 32, "--batch-size", 32,
        "--arch", "define_transformer_xl_small", "--optimizer", "adam", "--adam-betas", "(0.9,0.98)", "--lr", 3e-3,
        "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 50, "--max-update", 400, "--clip-norm", 0.25, "--seed", 1,
        "--num-workers", 0, "--log-format", "simple", "--no-epoch-checkpoints"]),
}


@pytest.fixture(scope="session")
def trained_models(toy_bin, lm_data, tmp_path_factory):
    """``get(name)``: the ``checkpoint_last.pt`` of ``TRAINED[name]``, trained on first use and
    shared by every test that asks (its fairseq-train output in ``train.log`` beside it)."""
    def get(name):
        kind, args = TRAINED[name]

        def train(save):
            proc = run_cli("train", toy_bin if kind == "mt" else lm_data / "bin", *args, "--save-dir", save)
            (save / "train.log").write_text(proc.stdout + proc.stderr)

        return shared(tmp_path_factory, re.sub(r"\W+", "-", name), train) / "checkpoint_last.pt"

    return get


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

SLOW_FIXTURES = {"toy_bin", "toy_checkpoint", "lm_data", "trained", "trained_lm", "trained_models", "one_worker",
                 "awd_run", "custom_mt", "converted"}
SLOW_TESTS = {  # in-process or short-subprocess tests that still take seconds each
    "test_dextra_under_torch_compile_equals_eager", "test_every_kind_of_config_trains_through_train_sh",
    "test_the_gpu_suite_runs_with_smoke_sizes", "test_lm_preset_in_bf16_and_fp16_matches_fp32",
    "test_translation_preset_in_bf16_and_fp16_matches_fp32", "test_model_configs_are_generated_from_the_presets",
    "test_a_mutant_is_killed_and_an_equivalent_one_survives",
}
SLOW_FILES = {"test_data_prep.py", "test_help.py", "test_package.py", "test_resume.py", "test_hostile_data.py", "test_ddp_modules.py",
              "test_custom_options.py", "test_own_data.py"}
FAST_ANYWAY = {"test_parallel_tokenisation_and_bpe_equal_one_worker",  # data-prep's text steps, in seconds
               "test_clean_drops_exactly_the_pairs_clean_corpus_n_drops"}


def pytest_collection_modifyitems(config, items):
    """``fast``: the maintainers' quick tier (README, "Development"): tests that use none of the
    trained fixtures, run no data-prep script or fresh interpreter, and are not listed as slow."""
    for item in items:
        name = item.originalname if hasattr(item, "originalname") else item.name
        if name in FAST_ANYWAY or not (SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or name in SLOW_TESTS
                                        or item.path.name in SLOW_FILES):
            item.add_marker(pytest.mark.fast)
