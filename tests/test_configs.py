"""configs/: model configs equal the --arch presets; every dataset x model config composes
and trains (shrunk, a few updates, on the CPU) through scripts/train.sh."""
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
LM_DATASETS = ("wikitext103", "wikitext103_lstm", "ptb", "wikitext103_txl")
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
SHRINK = {"wikitext103": SHRINK_LM, "ptb": SHRINK_LSTM,
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


@pytest.mark.parametrize("model", MODEL_CONFIGS)
def test_config_trains_a_few_updates(model, toy_bin, lm_data, tmp_path):
    dataset = dataset_of(model)
    lm = dataset in LM_DATASETS
    cfg = yaml.safe_load((REPO / "configs" / "model" / f"{model}.yaml").read_text())["model"]
    shrink = SHRINK.get(dataset, SHRINK_MT)
    overrides = [f"++model.{k}={v}" for k, v in shrink.items()]
    overrides += ["task.tokens_per_sample=32"] if lm else ["task.source_lang=src", "task.target_lang=tgt"]
    env = dict(os.environ, DATA_DIR=str(lm_data / "bin" if lm else toy_bin), SAVE_DIR=str(tmp_path / "ckpt"))
    gpus = [f"gpus={GPUS_GROUP[dataset]}"] if dataset in GPUS_GROUP else []
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "train.sh"), dataset, f"model={model}", *gpus, "precision=fp32",
         "common.cpu=true", "optimization.max_update=2", "++lr_scheduler.warmup_updates=1", "optimization.update_freq=[1]", "dataset.max_tokens=1024",
         "dataset.num_workers=0", "checkpoint.save_interval_updates=0", *overrides],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 2
    saved = state["cfg"]["model"]
    # the preset's options reached the model, except those shrunk here
    for key, value in cfg.items():
        if key not in shrink:
            assert saved[key] == value, (key, saved[key], value)
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
