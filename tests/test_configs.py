"""configs/: model configs equal the --arch presets; every dataset x model config composes,
builds and takes a training step (shrunk, on the CPU), and one per dataset trains 2 updates
through scripts/train.sh."""
import os
import subprocess

import pytest
import torch
import yaml

from conftest import REPO

MODEL_CONFIGS = sorted(p.stem for p in (REPO / "configs" / "model").glob("*.yaml"))
DATASET_OF = {"iwslt": "iwslt14_de_en", "wmt14_en_de": "wmt14_en_de", "wmt14_en_fr": "wmt14_en_fr",
              "wmt16_en_ro": "wmt16_en_ro", "lm": "wikitext103", "lstm_wiki103": "wikitext103_lstm", "lstm_": "ptb",
              "define_transformer": "wmt14_en_de_define", "txl_": "wikitext103_txl"}
LM_DATASETS = ("wikitext103", "wikitext103_lstm", "ptb", "wikitext103_txl", "custom_lm")
GPUS_GROUP = {"wikitext103": "lm_1", "wmt14_en_de": "wmt_1", "wmt14_en_fr": "wmt_1", "wmt16_en_ro": "wmt_1"}
# model options shrunk for the CPU (Hydra's ++ sets a key whether or not the YAML lists it)
SHRINK_MT = dict(encoder_embed_dim=32, decoder_embed_dim=32, embed_map_dim=16, encoder_blocks=2,
                 decoder_blocks=2, encoder_max_depth=5, decoder_max_depth=5)
SHRINK_LM = dict(decoder_embed_dim=32, decoder_input_dim=16, decoder_output_dim=32, decoder_layers=2,
                 decoder_attention_heads=2, decoder_ffn_embed_dim=32, define_expand_dim=64, define_max_groups=2,
                 delight_max_depth=5, adaptive_input_cutoff="'50,120'", adaptive_softmax_cutoff="'50,120'")
SHRINK_LSTM = dict(decoder_input_dim=16, decoder_embed_dim=32, decoder_hidden_size=32, decoder_output_dim=32,
                   decoder_layers=2, define_expand_dim=64, define_max_groups=2)
SHRINK_TRANSFORMER = dict(encoder_embed_dim=32, decoder_embed_dim=32, encoder_ffn_embed_dim=32, decoder_ffn_embed_dim=32,
                          encoder_layers=1, decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2,
                          define_map_dim=16, define_expand_dim=64, define_max_groups=2)
SHRINK = {"wikitext103": SHRINK_LM, "ptb": SHRINK_LSTM, "custom_lm": SHRINK_LSTM,
          "wikitext103_lstm": dict(SHRINK_LSTM, adaptive_input_cutoff="'50,120'", adaptive_softmax_cutoff="'50,120'"),
          "wmt14_en_de_define": SHRINK_TRANSFORMER,
          "wikitext103_txl": dict(n_layer=1, d_model=32, n_head=2, d_head=16, d_inner=32, d_embed=16, mem_len=8,
                                  cutoffs=[50, 120], define_expand_dim=64, define_max_groups=2)}


def dataset_of(model: str) -> str:
    return next(v for k, v in DATASET_OF.items() if model.startswith(k))


def test_model_configs_are_generated_from_the_presets():
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv").exists() else "python",
                           str(REPO / "scripts" / "make_configs.py"), "--check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _overrides(model: str, dataset: str):
    shrink = dict(SHRINK.get(dataset, SHRINK_MT))
    if "criterion" in yaml.safe_load((REPO / "configs" / "model" / f"{model}.yaml").read_text()):
        shrink.pop("adaptive_input_cutoff", None)  # a model with its own (full-softmax) criterion stays so
        shrink.pop("adaptive_softmax_cutoff", None)
    lm = dataset in LM_DATASETS
    overrides = [f"++model.{k}={v}" for k, v in shrink.items()]
    overrides += ["task.tokens_per_sample=32"] if lm else ["task.source_lang=src", "task.target_lang=tgt"]
    gpus = [f"gpus={GPUS_GROUP[dataset]}"] if dataset in GPUS_GROUP else []
    return shrink, [f"model={model}", *gpus, "precision=fp32", "common.cpu=true", "dataset.max_tokens=1024",
                    "dataset.num_workers=0", *overrides]


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_config_composes_builds_and_takes_a_training_step(model, toy_bin, lm_data):
    """Every dataset x model config, composed as fairseq-hydra-train composes it (shrunk for
    the CPU), builds its task, model and criterion and takes a forward and backward pass on a
    batch of real data; every preset option reaches the model."""
    from fairseq import tasks, utils
    from fairseq.dataclass.initialize import add_defaults, hydra_init
    from fairseq.dataclass.utils import omegaconf_no_object_check
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    dataset = dataset_of(model)
    lm = dataset in LM_DATASETS
    shrink, overrides = _overrides(model, dataset)
    hydra_init(dataset)
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.1"):
        cfg = compose(config_name=dataset, overrides=[f"task.data={lm_data / 'bin' if lm else toy_bin}",
                                                      "checkpoint.save_dir=/unused", *overrides])
    add_defaults(cfg)  # as fairseq-hydra-train: each group's dataclass defaults, then every value resolved
    with omegaconf_no_object_check():
        cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True))
    OmegaConf.set_struct(cfg, True)
    task = tasks.setup_task(cfg.task)
    built = task.build_model(cfg.model)
    criterion = task.build_criterion(cfg.criterion)
    task.load_dataset("valid")
    batches = task.get_batch_iterator(
        dataset=task.dataset("valid"), max_tokens=cfg.dataset.max_tokens, max_sentences=cfg.dataset.batch_size,
        max_positions=utils.resolve_max_positions(task.max_positions(), built.max_positions()),
        ignore_invalid_inputs=True, seed=1,
    ).next_epoch_itr(shuffle=False)
    built.train()
    loss, sample_size, _ = criterion(built, next(batches))
    loss.backward()
    assert torch.isfinite(loss) and sample_size > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in built.parameters())
    preset = yaml.safe_load((REPO / "configs" / "model" / f"{model}.yaml").read_text())["model"]
    for key, value in preset.items():  # the preset's options reached the model, except those shrunk here
        if key not in shrink:
            assert cfg.model[key] == value, (key, cfg.model[key], value)


# one dataset config per kind of run (the others compose and step in-process above)
TRAIN_SH = ["wmt14_en_de", "wikitext103", "ptb", "wikitext103_txl", "wmt14_en_de_define", "custom"]


@pytest.mark.parametrize("dataset", TRAIN_SH)
def test_every_kind_of_config_trains_through_train_sh(dataset, toy_bin, lm_data, tmp_path):
    """A DeLighT translation, a DeLighT LM, AWD-LSTM's bptt_lm task, Transformer-XL's, fairseq's
    transformer with DeFINE and the custom-corpus config: 2 updates each through scripts/train.sh
    and fairseq-hydra-train."""
    model = {"custom": "iwslt_de_en", "custom_lm": "lstm_ptb"}.get(dataset) or \
        next(m for m in MODEL_CONFIGS if dataset_of(m) == dataset)
    lm = dataset in LM_DATASETS
    _, overrides = _overrides(model, dataset)
    env = dict(os.environ, DATA_DIR=str(lm_data / "bin" if lm else toy_bin), SAVE_DIR=str(tmp_path / "ckpt"))
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "train.sh"), dataset, *overrides, "optimization.max_update=2",
         "optimization.max_epoch=0", "optimization.update_freq=[1]", "checkpoint.save_interval_updates=0",
         *([] if dataset in ("ptb", "custom_lm") else ["++lr_scheduler.warmup_updates=1"])],  # NT-ASGD: no warmup
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 2
    assert state["cfg"]["model"]["_name"] == yaml.safe_load(
        (REPO / "configs" / "model" / f"{model}.yaml").read_text())["model"]["_name"]
    assert (tmp_path / "ckpt" / "hydra_train.log").exists()


def test_train_sh_explains_missing_data(tmp_path):
    env = dict(os.environ, DATA_DIR=str(tmp_path / "nothing"))
    proc = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "wmt14_en_de"], capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "run bash data-prep/wmt14_en_de.sh first" in proc.stderr
    proc = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "wmt15"], capture_output=True, text=True)
    assert proc.returncode != 0 and "no config configs/wmt15.yaml" in proc.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given on machines without a CUDA GPU")
def test_fp16_on_a_machine_without_cuda_is_refused_before_anything_is_written(toy_bin, tmp_path):
    env = dict(os.environ, DATA_DIR=str(toy_bin), SAVE_DIR=str(tmp_path / "ckpt"))
    proc = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "wmt14_en_de", "precision=fp16"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0
    assert proc.stderr.strip() == (
        "train.sh: precision=fp16 needs a CUDA GPU (fairseq's FP16 optimizer) and this machine has none: "
        "add precision=bf16 or precision=fp32 (and common.cpu=true)"
    )
    assert not (tmp_path / "ckpt").exists()
