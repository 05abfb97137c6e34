"""The recipes are the authors' runs: every dataset x size composes (through
``scripts/train.sh ... --cfg job``) to the settings of their training commands
(nmt_wmt14_en2de.py, nmt_wmt14_en2fr.py, nmt_wmt16_en2ro.py, lm_wikitext_103.py in their
fork, and the IWSLT'14 command of their issue #8)."""
import os
import subprocess

import numpy as np
import pytest
import torch
import yaml

from conftest import REPO
from delight_fairseq.models.define_lm import LM_PRESETS
from delight_fairseq.models.delight_transformer import PRESETS

# the authors' values: tokens per update, peak lr, schedule, warmup, cosine period, max
# updates, clip norm, weight decay
WMT14 = dict(tokens=4096 * 16 * 8, scheduler="cosine", warmup=10000, clip=0.0, weight_decay=0.0)
AUTHORS = {
    **{f"wmt14_en_de_{d}": dict(WMT14, lr=lr, period=20000, max_update=30000)
       for d, lr in [(128, 0.01), (256, 0.007), (384, 0.005), (512, 0.004), (640, 0.003)]},
    **{f"wmt14_en_fr_{d}": dict(WMT14, lr=lr, period=70000, max_update=50000)
       for d, lr in [(128, 0.01), (256, 0.007), (384, 0.005), (512, 0.004), (640, 0.003)]},
    **{f"wmt16_en_ro_{d}": dict(tokens=4096 * 1 * 8, scheduler="linear", warmup=10000, lr=lr, period=None,
                                max_update=100000, clip=0.0, weight_decay=0.0)
       for d, lr in [(128, 0.0028), (256, 0.0014), (384, 0.0009)]},
    "iwslt_de_en": dict(tokens=4096, scheduler="linear", warmup=4000, lr=0.001, period=None, max_update=50000,
                        clip=0.0, weight_decay=0.0001),
    "lm_wiki103_delight": dict(tokens=8192 * 4 * 8, scheduler="cosine", warmup=5000, lr=0.002, period=95000,
                               max_update=100000, clip=0.0, weight_decay=0.0),
}
DATASET = {"wmt14_en_de": "wmt14_en_de", "wmt14_en_fr": "wmt14_en_fr", "wmt16_en_ro": "wmt16_en_ro",
           "iwslt": "iwslt14_de_en", "lm": "wikitext103"}
GPUS = {"wmt14_en_de": "wmt_8", "wmt14_en_fr": "wmt_8", "wmt16_en_ro": "enro_8", "iwslt14_de_en": "iwslt_1",
        "wikitext103": "lm_8"}


def composed(dataset, *overrides):
    """The config fairseq-hydra-train composes for ``scripts/train.sh DATASET OVERRIDES``
    (in this process: Hydra's compose API with fairseq's schema, as its CLI registers it)."""
    from fairseq.dataclass.initialize import hydra_init
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    hydra_init(dataset)
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.1"):
        cfg = compose(config_name=dataset, overrides=["task.data=/data", "checkpoint.save_dir=/ckpt", *overrides])
    return OmegaConf.to_container(cfg, resolve=True)


def test_train_sh_prints_the_composed_config_without_training(tmp_path):
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "train.sh"), "wmt14_en_de", "model=wmt14_en_de_256", "gpus=wmt_8", "--cfg", "job"],
        capture_output=True, text=True, env=dict(os.environ, DATA_DIR=str(tmp_path / "no-data"), SAVE_DIR=str(tmp_path / "ckpt")),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = yaml.safe_load(proc.stdout)
    assert printed["optimization"]["lr"] == [0.007] and printed["model"]["encoder_embed_dim"] == 256
    assert printed["optimization"]["update_freq"] == [16] and printed["distributed_training"]["distributed_world_size"] == 8
    assert not (tmp_path / "ckpt").exists()  # nothing written


@pytest.mark.parametrize("model", sorted(AUTHORS))
def test_recipe_composes_to_the_authors_settings(model):
    dataset = DATASET[next(k for k in DATASET if model.startswith(k))]
    cfg = composed(dataset, f"model={model}", f"gpus={GPUS[dataset]}")
    want = AUTHORS[model]
    opt, sched = cfg["optimization"], cfg["lr_scheduler"]
    tokens = cfg["dataset"]["max_tokens"] * opt["update_freq"][0] * cfg["distributed_training"]["distributed_world_size"]
    assert tokens == want["tokens"]
    assert opt["lr"] == [want["lr"]] and opt["max_update"] == want["max_update"] and opt["clip_norm"] == want["clip"]
    assert cfg["optimizer"]["_name"] == "adam" and cfg["optimizer"]["adam_betas"] == [0.9, 0.98]
    assert cfg["optimizer"]["weight_decay"] == want["weight_decay"]
    assert sched["_name"] == want["scheduler"] and sched["warmup_updates"] == want["warmup"]
    assert sched["warmup_init_lr"] == 1e-7
    if want["scheduler"] == "cosine":  # their cosine ends at their --lr 1e-7, one period, no shrink
        assert (sched["min_lr"], sched["lr_period_updates"], sched["t_mult"], sched["lr_shrink"]) == (1e-7, want["period"], 1, 1)
    # their commands train in float32
    assert not cfg["common"]["fp16"] and not cfg["common"]["bf16"]
    assert cfg["common"]["seed"] == 1
    assert cfg["checkpoint"]["keep_last_epochs"] == 10
    assert cfg["common"]["tensorboard_logdir"].endswith("/tensorboard")
    lm = dataset == "wikitext103"
    if lm:
        assert cfg["criterion"]["_name"] == "adaptive_loss" and cfg["task"]["tokens_per_sample"] == 512
        preset = LM_PRESETS["define_lm_" + model[len("lm_"):]]
        assert {k: cfg["model"][k] for k in ("dropout", "attention_dropout", "adaptive_softmax_dropout")} == \
            {k: preset[k] for k in ("dropout", "attention_dropout", "adaptive_softmax_dropout")}
    else:
        assert cfg["criterion"] == {**cfg["criterion"], "_name": "label_smoothed_cross_entropy", "label_smoothing": 0.1}
        preset = PRESETS["delight_transformer_" + model].overrides()
        for key in ("dropout", "attention_dropout", "dextra_dropout", "ffn_dropout", "embed_dropout", "pos_dropout"):
            assert cfg["model"][key] == preset[key], key


def test_every_gpu_count_keeps_the_tokens_per_update():
    for family, gpus in [("wmt", (1, 4, 8, 16)), ("enro", (1, 4, 8)), ("lm", (1, 4, 8, 16))]:
        dataset = {"wmt": "wmt14_en_de", "enro": "wmt16_en_ro", "lm": "wikitext103"}[family]
        sizes = set()
        for n in gpus:
            cfg = composed(dataset, f"gpus={family}_{n}")
            assert cfg["distributed_training"]["distributed_world_size"] == n
            sizes.add(cfg["dataset"]["max_tokens"] * cfg["optimization"]["update_freq"][0] * n)
        assert len(sizes) == 1, (family, sizes)


def test_precision_is_a_switch():
    assert composed("wmt14_en_de", "precision=bf16")["common"]["bf16"] is True
    assert composed("wmt14_en_de", "precision=fp16")["common"]["fp16"] is True


def test_linear_schedule_is_the_authors():
    """Their linear_scheduler.py: linspace(1e-7, lr, W) then linspace(lr, 1e-7, T - W + 1)."""
    from fairseq.optim import FairseqOptimizer

    from delight_fairseq.training.lr_scheduler import LinearSchedule, LinearScheduleConfig

    opt = FairseqOptimizer(None)
    opt._optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LinearSchedule(LinearScheduleConfig(warmup_updates=4, warmup_init_lr=1e-7, lr=[0.001], max_update=10), opt)
    assert opt.get_lr() == 1e-7
    lrs = [sched.step_update(u) for u in range(12)]
    expected = np.concatenate([np.linspace(1e-7, 0.001, 4), np.linspace(0.001, 1e-7, 7)]).tolist() + [1e-7]
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert lrs[3] == pytest.approx(0.001) and lrs[10] == pytest.approx(1e-7)
    from delight_fairseq import ConfigError

    with pytest.raises(ConfigError, match="larger than --warmup-updates"):
        LinearSchedule(LinearScheduleConfig(warmup_updates=10, lr=[0.001], max_update=10), opt)


def test_a_linear_schedule_recipe_trains(toy_bin, tmp_path):
    """The IWSLT recipe (their linear schedule, registered by the plugin) runs through
    fairseq-hydra-train and steps the learning rate as theirs."""
    env = dict(os.environ, DATA_DIR=str(toy_bin), SAVE_DIR=str(tmp_path))
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "train.sh"), "iwslt14_de_en", "common.cpu=true", "task.source_lang=src",
         "task.target_lang=tgt", "optimization.max_update=6", "lr_scheduler.warmup_updates=3", "dataset.max_tokens=512",
         "dataset.num_workers=0", "++model.encoder_embed_dim=32", "++model.decoder_embed_dim=32",
         "++model.embed_map_dim=16", "++model.encoder_blocks=2", "++model.decoder_blocks=2", "common.log_interval=1"],
        capture_output=True, text=True, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 6
    assert state["cfg"]["lr_scheduler"]["_name"] == "linear"
    assert list((tmp_path / "tensorboard").glob("*/events.out.tfevents.*")), "no TensorBoard log"


def test_ptb_recipe_is_awd_lstms():
    """AWD-LSTM's PTB command (their README: python main.py --batch_size 20 --data data/penn
    --dropouti 0.4 --dropouth 0.25 --seed 141 --epoch 500; main.py's defaults: lr 30, clip 0.25,
    bptt 70, wdecay 1.2e-6, alpha 2, beta 1, nonmono 5, eval batch 10, dropout 0.4, wdrop 0.5,
    dropoute 0.1), literal values."""
    cfg = composed("ptb", "model=lstm_ptb_awd")
    assert cfg["task"] == {**cfg["task"], "_name": "bptt_lm", "tokens_per_sample": 70, "variable_bptt": True}
    assert cfg["optimizer"] == {**cfg["optimizer"], "_name": "nt_asgd", "weight_decay": 1.2e-6}
    assert cfg["lr_scheduler"]["_name"] == "nt_asgd" and cfg["lr_scheduler"]["nonmono"] == 5
    assert cfg["criterion"] == {**cfg["criterion"], "_name": "awd_cross_entropy", "ar_alpha": 2.0, "tar_beta": 1.0}
    assert cfg["optimization"]["lr"] == [30.0] and cfg["optimization"]["clip_norm"] == 0.25
    assert cfg["optimization"]["max_epoch"] == 500 and cfg["common"]["seed"] == 141
    assert (cfg["dataset"]["batch_size"], cfg["dataset"]["batch_size_valid"]) == (20, 10)
    for model in ("lstm_ptb_awd", "lstm_ptb"):
        m = composed("ptb", f"model={model}")["model"]
        awd = {k: m[k] for k in ("dropout", "dropout_input", "dropout_hidden", "weight_drop", "embed_word_dropout")}
        assert awd == dict(dropout=0.4, dropout_input=0.4, dropout_hidden=0.25, weight_drop=0.5, embed_word_dropout=0.1)
        assert (m["decoder_hidden_size"], m["decoder_layers"], m["decoder_output_dim"], m["output_bias"]) == (1150, 3, 400, True)


# every LM preset's settings, written out (lm_wiki103_delight: the authors' lm_wikitext_103.py --d-m 1024
# and their delight_transformer_lm_wiki103 arch; the transformer rows: Transformer-XL standard's sizes)
LM_SETTINGS = {
    "lm_wiki103_delight": dict(
        block_type="delight", delight_embedding=True, decoder_embed_dim=1024, decoder_input_dim=128,
        decoder_output_dim=128, decoder_layers=12, delight_min_depth=4, delight_max_depth=12, delight_width_mult=2.0,
        adaptive_input=True, adaptive_input_style="delight", adaptive_input_cutoff="20000,60000",
        adaptive_input_factor=2, adaptive_softmax_cutoff="20000,60000", adaptive_softmax_factor=2,
        tie_adaptive_weights=True, tie_adaptive_proj=True, no_decoder_final_norm=True, dropout=0.1,
        attention_dropout=0.1, dextra_dropout=0.1, ffn_dropout=0.1, activation_dropout=0.0,
        adaptive_softmax_dropout=0.1, embed_dropout=0.1, pos_dropout=0.1),
    "lm_wiki103_transformer": dict(
        define_embedding=True, define_expand_dim=1024, define_depth=3, define_max_groups=4, decoder_embed_dim=410,
        decoder_input_dim=384, decoder_output_dim=410, decoder_layers=16, decoder_attention_heads=10,
        decoder_ffn_embed_dim=2100, adaptive_input=True, adaptive_input_cutoff="20000,40000,200000",
        adaptive_input_factor=1, adaptive_softmax_cutoff="20000,40000,200000", adaptive_softmax_factor=1,
        tie_adaptive_weights=True, tie_adaptive_proj=True, dropout=0.1, adaptive_softmax_dropout=0.2,
        activation_fn="relu"),
    "lm_wiki103_transformer_baseline": dict(
        decoder_embed_dim=410, decoder_input_dim=384, decoder_output_dim=410, decoder_layers=16,
        decoder_attention_heads=10, decoder_ffn_embed_dim=2100, adaptive_input=True,
        adaptive_input_cutoff="20000,40000,200000", adaptive_input_factor=1,
        adaptive_softmax_cutoff="20000,40000,200000", adaptive_softmax_factor=1, tie_adaptive_weights=True,
        tie_adaptive_proj=True, dropout=0.1, adaptive_softmax_dropout=0.2, activation_fn="relu"),
    "lm_small": dict(
        define_embedding=True, block_type="delight", decoder_embed_dim=128, decoder_input_dim=64,
        decoder_output_dim=128, decoder_layers=4, delight_min_depth=2, delight_max_depth=4, define_expand_dim=256,
        define_depth=2, define_max_groups=2, decoder_attention_heads=4, decoder_ffn_embed_dim=256, dropout=0.1),
}


@pytest.mark.parametrize("model", sorted(LM_SETTINGS))
def test_lm_presets_compose_to_their_settings(model):
    cfg = composed("wikitext103", f"model={model}")["model"]
    assert {k: cfg[k] for k in LM_SETTINGS[model]} == LM_SETTINGS[model]
    assert not cfg.get("define_embedding") or model in ("lm_wiki103_transformer", "lm_small")
