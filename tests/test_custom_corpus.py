"""Your own corpus (data-prep/custom.sh): raw text -> SentencePiece -> binaries -> training ->
fairseq-generate / fairseq-interactive / the hub with --bpe sentencepiece, sacreBLEU on the raw
references; the same for a language model; bad input stops before anything is written."""
import collections
import math
import os
import random
import re
import runpy
import subprocess

import pytest

from conftest import PLUGIN, REPO, TOY_TRAIN_ARGS, run_cli

CUSTOM = ["bash", str(REPO / "data-prep" / "custom.sh")]
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "du"]


def _language(seed, n_words=30):
    g = random.Random(seed)
    words = set()
    while len(words) < n_words:
        words.add("".join(g.choice(SYLLABLES) for _ in range(g.randint(2, 3))))
    return sorted(words)


SOURCE, TARGET = _language(1), _language(2)
LEXICON = dict(zip(SOURCE, TARGET[::-1]))  # a word-for-word translation, order kept


def translate(sentence: str) -> str:
    return " ".join(LEXICON[w] for w in sentence.split())


def custom(*args):
    return subprocess.run([*CUSTOM, *map(str, args)], capture_output=True, text=True)


def _corpus(root, pairs=2500, seed=0):
    """PREFIX.xx / PREFIX.yy, plus the hostile lines the data-prep must drop: bytes that are
    not UTF-8, empty sides, one over-long pair (cleaned after SentencePiece)."""
    g = random.Random(seed)
    src, tgt = [], []
    for _ in range(pairs):
        s = " ".join(g.choice(SOURCE) for _ in range(g.randint(3, 8)))
        src.append(s.encode())
        tgt.append(translate(s).encode())
    src[10], tgt[11] = b"caf\xe9 latin-1", b""  # not UTF-8; an empty target
    long = " ".join(SOURCE * 12)
    src[12], tgt[12] = long.encode(), translate(long).encode()  # 360 words: over --max-len after encoding
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.xx").write_bytes(b"\n".join(src) + b"\n")
    (root / "train.yy").write_bytes(b"\n".join(tgt) + b"\n")
    return root / "train"


@pytest.fixture(scope="module")
def custom_mt(tmp_path_factory):
    """The corpus prepared by custom.sh (valid and test split off) and a small DeLighT trained on it."""
    root = tmp_path_factory.mktemp("custom")
    prefix = _corpus(root / "raw")
    proc = custom("--train", prefix, "--src", "xx", "--tgt", "yy", "--out-dir", root / "bin", "--workers", 2,
                  "--vocab-size", 200, "--valid-size", 100, "--test-size", 100)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_cli("train", root / "bin", *TOY_TRAIN_ARGS, "--max-update", 400, "--save-dir", root / "ckpt")
    return root, proc.stderr


def test_custom_sh_reports_what_it_dropped_and_suggests_a_model(custom_mt):
    root, log = custom_mt
    assert "[read train] done: 2,500 lines in, 2,498 kept" in log and "1 not UTF-8 dropped, 1 empty dropped" in log
    assert re.search(r"\[clean train\] 2,298 pairs in, 2,297 kept .*, 1 dropped", log)  # the over-long pair
    assert "[split] valid 100, test 100 lines drawn off the training text (seed 1)" in log
    assert "suggestion: for 2,297 training pairs, start from --arch delight_transformer_wmt14_en_de_128" in log
    assert {p.name for p in (root / "bin").iterdir()} >= {"spm.model", "dict.xx.txt", "dict.yy.txt",
                                                          "train.xx-yy.xx.bin", "test.xx-yy.yy.idx"}
    refs = (root / "bin.work" / "text" / "test.ref.yy").read_text().splitlines()
    assert len(refs) == 100 and all(r == translate(s) for s, r in zip(
        (root / "bin.work" / "text" / "test.xx").read_text().splitlines(), refs))



def test_the_split_is_fixed_by_the_seed():
    split_off = runpy.run_path(str(REPO / "data-prep" / "custom.py"), run_name="custom")["split_off"]
    sides = [[f"s{i}" for i in range(50)], [f"t{i}" for i in range(50)]]
    a, b, c = (split_off(sides, {"valid": 5, "test": 5}, seed) for seed in (1, 1, 2))
    assert a == b and a != c
    assert sorted(a["train"][0] + a["valid"][0] + a["test"][0]) == sorted(sides[0])  # each line once
    for split in ("train", "valid", "test"):  # pairs stay pairs
        assert [s[1:] for s in a[split][0]] == [t[1:] for t in a[split][1]]


def test_evaluate_generate_interactive_and_hub_on_raw_text(custom_mt):
    from delight_fairseq import DeLighTTransformerModel

    root, _ = custom_mt
    proc = subprocess.run(["bash", str(REPO / "scripts" / "evaluate.sh"), "custom", str(root / "ckpt"), "--average", "1"],
                          capture_output=True, text=True, env=dict(os.environ, DATA_DIR=str(root / "bin")))
    assert proc.returncode == 0, proc.stderr[-2000:]
    bleu = float(re.search(r"BLEU \(detokenised, sacrebleu\) ([\d.]+)", proc.stdout).group(1))
    assert bleu > 50 and "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" in proc.stdout
    hyps = [line.split("\t")[2] for line in (root / "ckpt" / "generate-test.txt").read_text().splitlines()
            if line.startswith("H-")]
    assert len(hyps) == 100 and not any("\u2581" in h for h in hyps)  # detokenised: raw text
    sentence = " ".join(SOURCE[:4])
    inter = run_cli("interactive", root / "bin", "--user-dir", PLUGIN, "--path", root / "ckpt" / "checkpoint_best.pt",
                    "--cpu", "--beam", 4, "--bpe", "sentencepiece", "--sentencepiece-model", root / "bin" / "spm.model",
                    input_text=sentence + "\n")
    assert re.search(r"^D-0\t[-\d.]+\t(.*)$", inter.stdout, re.M).group(1) == translate(sentence)
    hub = DeLighTTransformerModel.from_pretrained(str(root / "ckpt"), "checkpoint_best.pt", str(root / "bin"),
                                                  bpe="sentencepiece", sentencepiece_model=str(root / "bin" / "spm.model"))
    assert hub.translate(sentence) == translate(sentence)


def test_custom_sh_for_a_language_model(lm_data, tmp_path):
    """The Markov-chain corpus with its words spelled in syllables (SentencePiece keeps them whole)."""
    words = _language(3, n_words=200)
    spelled = {}
    for split in ("train", "valid", "test"):
        text = (lm_data / "raw" / f"{split}.txt").read_text()
        spelled[split] = tmp_path / f"{split}.txt"
        spelled[split].write_text(re.sub(r"w(\d+)", lambda m: words[int(m.group(1))], text))
    proc = custom("--lm", "--train", spelled["train"], "--valid", spelled["valid"], "--test", spelled["test"],
                  "--out-dir", tmp_path / "bin", "--vocab-size", 1000, "--workers", 1)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "suggestion: for " in proc.stderr and "--arch define_lstm_lm_ptb" in proc.stderr
    run_cli("train", tmp_path / "bin", "--task", "language_modeling", "--user-dir", PLUGIN, "--cpu", "--arch",
            "define_lm_small", "--tokens-per-sample", 64, "--sample-break-mode", "none", "--optimizer", "adam",
            "--lr", 3e-3, "--lr-scheduler", "inverse_sqrt", "--warmup-updates", 50, "--max-tokens", 2048,
            "--max-update", 200, "--dropout", 0, "--seed", 1, "--num-workers", 0, "--save-dir", tmp_path / "ckpt",
            "--no-epoch-checkpoints")
    out = run_cli("eval_lm", tmp_path / "bin", "--user-dir", PLUGIN, "--cpu", "--path", tmp_path / "ckpt" /
                  "checkpoint_last.pt", "--tokens-per-sample", 64, "--context-window", 32, "--max-tokens", 2048)
    ppl = float(re.search(r"Perplexity: ([\d.]+)", out.stderr).group(1))
    pieces = (tmp_path / "bin.work" / "spm" / "train.txt").read_text().split()
    counts = collections.Counter(pieces)
    unigram = math.exp(-sum(c / len(pieces) * math.log(c / len(pieces)) for c in counts.values()))
    assert unigram > 100 and ppl < unigram / 10, (ppl, unigram)  # every word one piece: the words' unigram (~154)


@pytest.mark.parametrize("case, says", [
    ("lines", "the train files have different line counts"),
    ("empty", "is empty"),
    ("side", "no train.yy file"),
])
def test_bad_input_is_one_line_and_nothing_is_written(case, says, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.xx").write_text("a b\nc d\n")
    if case == "lines":
        (raw / "train.yy").write_text("A B\n")
    elif case == "empty":
        (raw / "train.yy").write_text("")
    proc = custom("--train", raw / "train", "--src", "xx", "--tgt", "yy", "--out-dir", tmp_path / "bin")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_custom_sh_help_states_the_defaults():
    proc = custom("--help")
    assert proc.returncode == 0 and "vocabulary 8k below 200k training sentences" in proc.stdout
    assert "--model-type {unigram,bpe}" in proc.stdout and "--separate" in proc.stdout and "--workers" in proc.stdout
