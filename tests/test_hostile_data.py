"""Hostile data through fairseq-preprocess, fairseq-train and fairseq-generate: empty
lines (on one side or both), pairs longer than the model's positions, words outside the
dictionary. Each is handled the way fairseq's options say -- never a crash."""
import math
import random
import re
import shutil

import pytest

from conftest import PLUGIN, TOY_TRAIN_ARGS, run_cli

MAX_POSITIONS = 256
LONG = 300  # tokens in an over-long line (+ EOS: 301 > 256)
N_LONG = {"train": 10, "valid": 2}
UNKNOWN = ("a1 zz9 a3 qq", "qq B3 zz9 B1")  # 2 unknown words on each side


def _hostile_pairs(clean_dir, split: str, rng: random.Random):
    pairs = list(zip((clean_dir / f"{split}.src").read_text().splitlines(),
                     (clean_dir / f"{split}.tgt").read_text().splitlines()))
    extra = [("", "")] * 3 + [("", "B1 B2")] * 3 + [("a1 a2", "")] * 3 + [UNKNOWN] * 5
    for _ in range(N_LONG[split]):
        extra.append((" ".join(f"a{rng.randrange(24)}" for _ in range(LONG)),
                      " ".join(f"B{rng.randrange(24)}" for _ in range(LONG))))
    for pair in extra:
        pairs.insert(rng.randrange(len(pairs)), pair)
    return pairs


@pytest.fixture(scope="module")
def hostile_bin(toy_bin, tmp_path_factory):
    """The toy corpus with hostile pairs mixed in, binarised with the clean corpus's
    dictionaries; returns (bin dir, fairseq-preprocess output, raw dir)."""
    root = tmp_path_factory.mktemp("hostile")
    clean = toy_bin.parent / "raw"
    rng = random.Random(0)
    for split in ("train", "valid"):
        pairs = _hostile_pairs(clean, split, rng)
        (root / f"{split}.src").write_text("".join(s + "\n" for s, _ in pairs))
        (root / f"{split}.tgt").write_text("".join(t + "\n" for _, t in pairs))
    proc = run_cli(
        "preprocess", "--source-lang", "src", "--target-lang", "tgt", "--workers", 1,
        "--srcdict", toy_bin / "dict.src.txt", "--tgtdict", toy_bin / "dict.tgt.txt",
        "--trainpref", root / "train", "--validpref", root / "valid", "--destdir", root / "bin",
    )
    return root / "bin", proc.stdout + proc.stderr, root


def _train(data, save_dir, *extra, check=True):
    return run_cli("train", data, *TOY_TRAIN_ARGS, "--max-source-positions", MAX_POSITIONS,
                   "--max-target-positions", MAX_POSITIONS, "--save-dir", save_dir, *extra, check=check)


def test_preprocess_keeps_every_line_and_maps_unknown_words_to_unk(hostile_bin):
    data, log, raw = hostile_bin
    n_train = len((raw / "train.src").read_text().splitlines())
    assert n_train == 2000 + 14 + N_LONG["train"]
    assert f"train.src: {n_train} sents" in log  # empty lines are kept as empty sentences
    replaced = float(re.search(r"train\.src: \d+ sents, (\d+) tokens, ([\d.]+)% replaced", log).group(2))
    tokens = int(re.search(r"train\.src: \d+ sents, (\d+) tokens", log).group(1))
    assert replaced == pytest.approx(100 * 5 * 2 / tokens, abs=1e-3)  # exactly the 10 unknown words


@pytest.fixture(scope="module")
def hostile_run(hostile_bin, tmp_path_factory):
    save = tmp_path_factory.mktemp("hostile-ckpt")
    proc = _train(hostile_bin[0], save, "--skip-invalid-size-inputs-valid-test", "--max-update", 150)
    return save, proc.stdout + proc.stderr


def test_training_skips_overlong_pairs_and_learns_from_the_rest(hostile_run):
    save, log = hostile_run
    for n in N_LONG.values():  # train and valid each skip exactly their over-long pairs
        assert f"{n} samples have invalid sizes and will be skipped, max_positions=({MAX_POSITIONS}, {MAX_POSITIONS})" in log
    losses = [float(x) for x in re.findall(r"\| train \| epoch \d+ \| loss ([\d.]+)", log)]
    assert all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0], losses
    assert (save / "checkpoint_last.pt").exists()


def test_overlong_validation_pair_without_the_skip_flag_is_one_clear_error(hostile_bin, hostile_run, tmp_path):
    # resuming a run (its checkpoint_last.pt) without the flag: one line, and the checkpoint is untouched
    shutil.copy(hostile_run[0] / "checkpoint_last.pt", tmp_path)
    before = (tmp_path / "checkpoint_last.pt").read_bytes()
    proc = _train(hostile_bin[0], tmp_path, "--max-update", 300, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("delight_fairseq: Size of sample")
    assert "--skip-invalid-size-inputs-valid-test" in last and "--max-target-positions" in last
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint_last.pt"]
    assert (tmp_path / "checkpoint_last.pt").read_bytes() == before


def test_truncate_source_keeps_long_pairs_instead_of_skipping_them(hostile_bin, tmp_path):
    proc = _train(hostile_bin[0], tmp_path, "--truncate-source", "--max-target-positions", LONG + 1,
                  "--max-update", 5)
    assert "invalid sizes" not in proc.stdout + proc.stderr


def test_generate_translates_empty_and_unknown_sources(hostile_bin, hostile_run):
    data, _, raw = hostile_bin
    save, _ = hostile_run
    proc = run_cli("generate", data, "--user-dir", PLUGIN,
                   "--cpu", "--path", save / "checkpoint_last.pt", "--gen-subset", "valid", "--beam", 5,
                   "--batch-size", 32, "--max-source-positions", MAX_POSITIONS, "--max-target-positions", MAX_POSITIONS,
                   "--skip-invalid-size-inputs-valid-test")
    out = proc.stdout
    # every pair but the over-long ones, also the last batch's 114 - 3 * 32 = 18 (not a
    # multiple of the default --required-batch-size-multiple 8: fairseq 0.12 drops it, the plugin does not)
    n_valid = len((raw / "valid.src").read_text().splitlines())
    assert len(re.findall(r"^H-\d+\t", out, re.M)) == n_valid - N_LONG["valid"]
    sources = dict(re.findall(r"^S-(\d+)\t(.*)$", out, re.M))
    assert sum(s == "" for s in sources.values()) == 6  # the empty sources were translated too
    assert sum(s == "a1 <unk> a3 <unk>" for s in sources.values()) == 5
    assert re.search(r"BLEU4? = [\d.]+", out)
