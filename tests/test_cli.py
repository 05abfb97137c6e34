"""End to end through fairseq's own command line: preprocess, train, generate, resume."""
import re
import shutil

import sacrebleu
import torch

from conftest import PLUGIN, REPO, TOY_TRAIN_ARGS, run_cli

GENERATE = ["--user-dir", PLUGIN, "--cpu", "--gen-subset", "test", "--beam", 5,
            "--batch-size", 50, "--required-batch-size-multiple", 1]


def _hypotheses_and_references(output: str):
    hyps, refs = {}, {}
    for line in output.splitlines():
        if line.startswith("H-"):
            idx, _, text = line[2:].split("\t")
            hyps[int(idx)] = text
        elif line.startswith("T-"):
            idx, text = line[2:].split("\t")
            refs[int(idx)] = text
    return [hyps[i] for i in sorted(hyps)], [refs[i] for i in sorted(hyps)]


def test_train_then_generate_learns_the_task(toy_bin, toy_checkpoint):
    out = run_cli("generate", toy_bin, "--path", toy_checkpoint / "checkpoint_last.pt",
                  *GENERATE, "--scoring", "sacrebleu").stdout
    hyps, refs = _hypotheses_and_references(out)
    assert len(hyps) == 100  # every test sentence translated, none dropped
    bleu = sacrebleu.corpus_bleu(hyps, [refs]).score
    assert bleu > 95, f"BLEU {bleu:.1f} after 400 updates"  # the demo reaches 100
    reported = float(re.search(r"BLEU = ([\d.]+)", out).group(1))
    assert abs(reported - bleu) < 0.01  # fairseq's sacrebleu scorer agrees with ours


def test_checkpoint_loads_with_weights_only(toy_checkpoint):
    state = torch.load(toy_checkpoint / "checkpoint_last.pt", weights_only=True)
    assert state["cfg"]["model"]["_name"] == "delight_transformer_wmt14_en_de_128"  # the --arch
    assert state["cfg"]["model"]["encoder_embed_dim"] == 64  # the CLI override, not the preset's 128


def test_training_resumes_from_the_last_checkpoint(toy_bin, toy_checkpoint, tmp_path):
    save = tmp_path / "resume"
    shutil.copytree(toy_checkpoint, save)
    out = run_cli("train", toy_bin, *TOY_TRAIN_ARGS, "--max-update", 450, "--save-dir", save).stdout
    assert re.search(r"Loaded checkpoint .*checkpoint_last\.pt \(epoch \d+ @ 400 updates\)", out)
    assert "num_updates 450" in out
    assert torch.load(save / "checkpoint_last.pt", weights_only=True)["optimizer_history"][-1]["num_updates"] == 450


def test_restore_file_starts_a_new_run_from_weights(toy_bin, toy_checkpoint, tmp_path):
    out = run_cli(
        "train", toy_bin, *TOY_TRAIN_ARGS, "--max-update", 20, "--save-dir", tmp_path / "new",
        "--restore-file", toy_checkpoint / "checkpoint_last.pt", "--reset-optimizer", "--reset-dataloader",
        "--reset-meters", "--reset-lr-scheduler",
    ).stdout
    assert "Loaded checkpoint" in out
    # starts from the trained weights: the first validation loss is already that of a trained model
    first_valid = float(re.search(r"valid on 'valid' subset \| loss ([\d.]+)", out).group(1))
    assert first_valid < 1.5


def test_hydra_train_uses_the_same_options(toy_bin, tmp_path):
    """configs/toy_translation.yaml through fairseq-hydra-train, with overrides."""
    run_cli(
        "hydra_train", "--config-dir", REPO / "configs", "--config-name", "toy_translation",
        f"task.data={toy_bin}", f"common.user_dir={PLUGIN}", f"checkpoint.save_dir={tmp_path / 'ckpt'}",
        "optimization.max_update=5", "model.encoder_blocks=3", "+model.norm_type=rms", cwd=tmp_path,
    )
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=True)
    model_cfg = state["cfg"]["model"]
    assert model_cfg["_name"] == "delight_transformer"
    assert model_cfg["encoder_blocks"] == 3 and model_cfg["norm_type"] == "rms"
    assert "encoder.layers.2.ffn_norm.weight" in state["model"]
    assert "encoder.layers.0.ffn_norm.bias" not in state["model"]  # RMSNorm has no bias
