"""Our models against the DeLighT authors' own code: checkpoints written by their fairseq
0.9 fork (tests/fixtures/authors, README in each) convert, load through fairseq and give
the fork's outputs; freshly built models start from the fork's initialisation."""
import argparse
import copy
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fairseq import checkpoint_utils
from fairseq.data import Dictionary

from conftest import PLUGIN, REPO, run_cli
from delight_fairseq.checkpoints.convert import build_model, convert_checkpoint, fairseq_cfg, our_name
from delight_fairseq import ConfigError
from delight_fairseq.checkpoints.safe_load import load_fork_checkpoint

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "authors"
CONVERT = [sys.executable, str(REPO / "scripts" / "convert_authors_checkpoint.py")]


def fork_checkpoint(kind: str) -> dict:
    return load_fork_checkpoint(str(FIXTURES / kind / "checkpoint.pt"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """Both fixtures converted with the script; each next to a data dir holding the
    fork's dictionaries: {'mt': (checkpoint, data dir), 'lm': ...}."""
    root = tmp_path_factory.mktemp("authors")
    out = {}
    for kind in ("mt", "lm"):
        data = root / f"{kind}-data"
        data.mkdir()
        for d in (FIXTURES / kind).glob("dict*.txt"):
            (data / d.name).write_text(d.read_text())
        proc = subprocess.run([*CONVERT, FIXTURES / kind / "checkpoint.pt", root / f"{kind}.pt"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[kind] = (root / f"{kind}.pt", data)
    return out


def load(path, data):
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(path)], arg_overrides={"data": str(data)})
    return models[0].eval(), task


def test_translation_checkpoint_gives_the_forks_outputs(converted):
    model, task = load(*converted["mt"])
    batch = torch.load(FIXTURES / "mt" / "batch.pt", weights_only=True)
    with torch.no_grad():
        enc = model.encoder(batch["src_tokens"], batch["src_lengths"])
        logits, extra = model.decoder(batch["prev_output_tokens"], enc)
        log_probs = model.get_normalized_probs((logits, extra), log_probs=True)
    torch.testing.assert_close(enc["encoder_out"][0], batch["encoder_out"], atol=1e-4, rtol=0)  # S x B x C, padding too
    torch.testing.assert_close(logits, batch["logits"], atol=1e-4, rtol=0)
    torch.testing.assert_close(log_probs, batch["log_probs"], atol=1e-4, rtol=0)
    assert sum(p.numel() for p in model.parameters()) == 2_585_344  # the fixture README's count
    # step by step (fairseq's incremental decoding) gives the same
    state, steps = {}, []
    with torch.no_grad():
        for t in range(1, batch["prev_output_tokens"].size(1) + 1):
            out = model.decoder(batch["prev_output_tokens"][:, :t], enc, incremental_state=state)
            steps.append(model.get_normalized_probs(out, log_probs=True))
    torch.testing.assert_close(torch.cat(steps, dim=1), batch["log_probs"], atol=1e-4, rtol=0)


def test_language_model_checkpoint_gives_the_forks_outputs(converted):
    model, task = load(*converted["lm"])
    batch = torch.load(FIXTURES / "lm" / "batch.pt", weights_only=True)
    with torch.no_grad():
        log_probs = model.get_normalized_probs(model(batch["src_tokens"]), log_probs=True)
    torch.testing.assert_close(log_probs, batch["log_probs"], atol=1e-4, rtol=0)
    assert sum(p.numel() for p in model.parameters()) == 1_464_092
    # the fork's adaptive input: tied to the adaptive softmax, bands scaled by sqrt(dim)
    head = model.decoder.adaptive_softmax.head.word_proj.weight
    assert head is model.decoder.embed_tokens.table.embeddings[0][0].weight


def test_converted_checkpoint_loads_with_weights_only(converted):
    for path, _ in converted.values():
        assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []


def _write_corpus(path: Path, words, lines: int, length: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    rows = [" ".join(words[i] for i in torch.randint(len(words), (length,), generator=g).tolist()) for _ in range(lines)]
    path.write_text("\n".join(rows) + "\n")


def test_fairseq_generate_and_eval_lm_run_the_converted_checkpoints(converted, tmp_path):
    mt_ckpt, mt_data = converted["mt"]
    words = [line.split()[0] for line in (mt_data / "dict.en.txt").read_text().splitlines()]
    for lang, seed in (("en", 0), ("de", 1)):
        _write_corpus(tmp_path / f"test.{lang}", words, 12, 6, seed)
    run_cli("preprocess", "--source-lang", "en", "--target-lang", "de", "--srcdict", mt_data / "dict.en.txt",
            "--tgtdict", mt_data / "dict.de.txt", "--testpref", tmp_path / "test", "--destdir", mt_data, "--workers", 1)
    gen = run_cli("generate", mt_data, "--user-dir", PLUGIN, "--path", mt_ckpt, "--cpu", "--beam", 3,
                  "--batch-size", 5, "--max-len-b", 10)
    hyps = [line for line in gen.stdout.splitlines() if line.startswith("H-")]
    assert len(hyps) == 12

    # fairseq-eval-lm on the fixture's own text gives the fork's perplexity: each row of
    # batch.pt is <eos> w1 .. w10, one line each (with --sample-break-mode eos the model reads
    # <eos> w1 .. w10 and predicts w1 .. w10 <eos>, as the fork's log-probs are laid out)
    lm_ckpt, lm_data = converted["lm"]
    batch = torch.load(FIXTURES / "lm" / "batch.pt", weights_only=True)
    dictionary = Dictionary.load(str(lm_data / "dict.txt"))
    src = batch["src_tokens"]  # B x T, each row starting with <eos>, no padding
    assert bool((src[:, 0] == dictionary.eos()).all()) and bool((src[:, 1:] >= dictionary.nspecial).all())
    (tmp_path / "test.txt").write_text("".join(dictionary.string(row[1:]) + "\n" for row in src))
    target = torch.cat([src[:, 1:], torch.full_like(src[:, :1], dictionary.eos())], dim=1)
    fork_nll = -batch["log_probs"].gather(2, target.unsqueeze(2)).mean().item()  # nats per token
    fork_bits = fork_nll / math.log(2)
    run_cli("preprocess", "--only-source", "--srcdict", lm_data / "dict.txt", "--testpref", tmp_path / "test.txt",
            "--destdir", lm_data, "--workers", 1)
    ev = run_cli("eval_lm", lm_data, "--user-dir", PLUGIN, "--path", lm_ckpt, "--cpu", "--tokens-per-sample", 64,
                 "--sample-break-mode", "eos", "--batch-size", 4)
    log = ev.stdout + ev.stderr
    bits = float(log.split("Loss (base 2):")[1].split(",")[0])
    ppl = float(log.split("Perplexity:")[1].split()[0])
    assert f"{src.numel()} tokens" in log  # every token of both rows scored, no more
    assert abs(bits - fork_bits) < 1e-3, (bits, fork_bits)
    assert abs(ppl - 2 ** fork_bits) < 0.01 * 2 ** fork_bits
    assert fork_bits > 1.0  # a perturbed random model: the comparison is not between two zeros


@pytest.mark.parametrize("kind", ["mt", "lm"])
def test_fresh_models_start_from_the_forks_initialisation(kind):
    """init_stats.json: every parameter's shape, mean and std under the fork's initialisation;
    ours, built for the same configuration, matches each mapped tensor's std within 10% (1,000
    elements or more) and every constant tensor (norms, biases, zeroed tables) exactly."""
    stats = json.loads((FIXTURES / kind / "init_stats.json").read_text())
    args = fork_checkpoint(kind)["args"]
    cfg, _ = fairseq_cfg(args)
    dicts = {"target": Dictionary.load(str(FIXTURES / kind / ("dict.de.txt" if kind == "mt" else "dict.txt")))}
    if kind == "mt":
        dicts["source"] = Dictionary.load(str(FIXTURES / kind / "dict.en.txt"))
    torch.manual_seed(0)
    ours = dict(build_model(cfg, dicts).named_parameters(remove_duplicate=False))
    checked = 0
    for fork_name, s in stats.items():
        p = ours[our_name(fork_name, kind == "lm")].detach()
        assert p.numel() == torch.Size(s["shape"]).numel(), fork_name
        if s["std"] == 0:
            assert torch.all(p == s["mean"]), fork_name  # constants: exactly
            checked += 1
        elif p.numel() >= 1000:
            assert abs(p.std().item() - s["std"]) <= 0.1 * s["std"], (fork_name, p.std().item(), s["std"])
            checked += 1
    assert checked > 0.9 * len(stats)


def _save(state, path):
    torch.save(state, path)
    return path


def test_unsupported_options_are_one_clear_error_and_nothing_is_written(tmp_path):
    state = fork_checkpoint("mt")
    state["args"] = copy.copy(state["args"])
    state["args"].define_iclr = True
    src, dst = _save(state, tmp_path / "fork.pt"), tmp_path / "out.pt"
    proc = subprocess.run([*CONVERT, src, dst], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("delight_fairseq: the authors' checkpoint uses --define-iclr True")
    assert "Traceback" not in proc.stderr
    assert not dst.exists() and list(tmp_path.iterdir()) == [src]


def test_the_converter_refuses_what_it_cannot_read_or_would_overwrite(tmp_path, converted):
    with pytest.raises(ConfigError, match="needs no conversion"):
        convert_checkpoint(str(converted["mt"][0]), str(tmp_path / "x.pt"))
    with pytest.raises(ConfigError, match="no checkpoint of the authors. fork at"):
        convert_checkpoint(str(tmp_path / "missing.pt"), str(tmp_path / "x.pt"))
    existing = tmp_path / "existing.pt"
    existing.write_text("keep me")
    with pytest.raises(ConfigError, match="exists"):
        convert_checkpoint(str(FIXTURES / "lm" / "checkpoint.pt"), str(existing))
    assert existing.read_text() == "keep me"
    # weights that do not fit the stored options
    state = fork_checkpoint("lm")
    state["args"] = copy.copy(state["args"])
    state["args"].delight_dec_layers = 5
    with pytest.raises(ConfigError, match="the checkpoint.s options do not describe its weights"):
        convert_checkpoint(str(_save(state, tmp_path / "fork.pt")), str(tmp_path / "y.pt"))
    assert not (tmp_path / "y.pt").exists()


def test_the_fork_options_map_onto_ours():
    cfg, task = fairseq_cfg(fork_checkpoint("mt")["args"])
    m = cfg.model
    assert task == "translation" and m._name == "delight_transformer"
    assert (m.encoder_embed_dim, m.embed_map_dim, m.encoder_blocks, m.encoder_min_depth, m.encoder_max_depth) == (192, 128, 5, 3, 5)
    assert (m.embed_depth, m.embed_max_groups, m.dropout, m.attention_dropout, m.pos_dropout, m.embed_dropout) == (3, 8, 0.06, 0.02, 0.1, 0.1)
    assert m.share_all_embeddings and not m.normalize_before
    cfg, task = fairseq_cfg(fork_checkpoint("lm")["args"])
    m = cfg.model
    assert task == "language_modeling" and m._name == "define_lm"
    assert (m.block_type, m.delight_embedding, m.adaptive_input_style, m.no_decoder_final_norm) == ("delight", True, "delight", True)
    assert (m.decoder_layers, m.delight_min_depth, m.delight_max_depth, m.adaptive_input_factor) == (6, 3, 6, 2.0)
    assert isinstance(fork_checkpoint("lm")["args"], argparse.Namespace)
