"""From Python in three lines (fairseq's hub interface), and fairseq's own distributed
data parallel: 2 CPU workers equal one worker with --update-freq 2."""
import os
import subprocess
import sys

import torch

from conftest import DEFINE_TRANSFORMER_TRAIN_ARGS, LM_TRAIN_ARGS, TOY_TRAIN_ARGS, run_cli


def test_translate_from_python(toy_checkpoint, toy_bin):
    from delight_fairseq import DeLighTTransformerModel

    model = DeLighTTransformerModel.from_pretrained(str(toy_checkpoint), "checkpoint_last.pt", str(toy_bin))
    assert model.translate("a1 a2 a3", beam=5) == "B3 B2 B1"
    assert model.translate(["a7 a5 a2", "a0 a1 a2 a3"]) == ["B2 B5 B7", "B3 B2 B1 B0"]


def test_score_and_sample_a_language_model_from_python(lm_data, tmp_path):
    from delight_fairseq import DefineLanguageModel

    run_cli("train", lm_data / "bin", *LM_TRAIN_ARGS, "--arch", "define_lm_small", "--max-update", 30, "--save-dir", tmp_path)
    lm = DefineLanguageModel.from_pretrained(str(tmp_path), "checkpoint_last.pt", str(lm_data / "bin"))
    scores = lm.score("w94 w18 w68")["positional_scores"]
    assert scores.shape == (3,) and torch.all(scores < 0)  # w18, w68 and </s>, each given what precedes it
    sample = lm.sample("w94 w18", sampling=True, sampling_topk=3, beam=1, max_len_b=4).split()
    assert sample[:2] == ["w94", "w18"] and len(sample) > 2


def test_the_define_lstm_and_transformer_from_python(lm_data, toy_bin, tmp_path):
    from delight_fairseq import DefineLSTMLanguageModel, DefineTransformerModel

    run_cli("train", lm_data / "bin", *LM_TRAIN_ARGS, "--arch", "define_lstm_lm_small", "--max-update", 30,
            "--save-dir", tmp_path / "lstm")
    lm = DefineLSTMLanguageModel.from_pretrained(str(tmp_path / "lstm"), "checkpoint_last.pt", str(lm_data / "bin"))
    assert lm.score("w94 w18 w68")["positional_scores"].shape == (3,)
    assert lm.sample("w94 w18", beam=2, max_len_b=3).split()[:2] == ["w94", "w18"]
    run_cli("train", toy_bin, *DEFINE_TRANSFORMER_TRAIN_ARGS, "--max-update", 5, "--save-dir", tmp_path / "mt")
    mt = DefineTransformerModel.from_pretrained(str(tmp_path / "mt"), "checkpoint_last.pt", str(toy_bin))
    assert len(mt.translate("a1 a2 a3", beam=2).split()) >= 1


def test_two_workers_equal_one_worker_with_update_freq_2(toy_bin, tmp_path):
    common = [*TOY_TRAIN_ARGS, "--max-tokens", 500, "--ddp-backend", "legacy_ddp",
              "--no-save-optimizer-state", "--disable-validation"]
    run_cli("train", toy_bin, *common, "--max-update", 10, "--update-freq", 2, "--save-dir", tmp_path / "one")
    # fairseq's gloo launch on the CPU (INSTALL-NOTES): one process per rank, no spawning
    env = dict(os.environ, OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "fairseq_cli.train", str(toy_bin), *map(str, common), "--max-update", "10",
             "--save-dir", str(tmp_path / "two"),
             "--distributed-world-size", "2", "--distributed-rank", str(rank), "--distributed-backend", "gloo",
             "--distributed-init-method", "tcp://127.0.0.1:29571", "--distributed-no-spawn"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs[0][-3000:]
    assert "distributed init (rank 1)" in "".join(outputs)
    one = torch.load(tmp_path / "one" / "checkpoint_last.pt", weights_only=True)
    two = torch.load(tmp_path / "two" / "checkpoint_last.pt", weights_only=True)
    assert one["optimizer_history"][-1]["num_updates"] == two["optimizer_history"][-1]["num_updates"] == 10
    for key, value in one["model"].items():  # summation order differs: float noise, amplified by Adam
        torch.testing.assert_close(two["model"][key], value, atol=1e-4, rtol=1e-3, msg=key)
    # a control that sees the same batches, grouped differently, ends far away
    run_cli("train", toy_bin, *common, "--max-update", 20, "--save-dir", tmp_path / "control")
    control = torch.load(tmp_path / "control" / "checkpoint_last.pt", weights_only=True)

    def distance(a, b):
        return max((a["model"][k] - b["model"][k]).abs().max().item() for k in a["model"])

    assert distance(two, one) * 10 < distance(control, one)
