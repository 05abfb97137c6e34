"""Your own corpus (data-prep/custom.sh): raw text -> SentencePiece -> binaries -> training ->
fairseq-generate / fairseq-interactive / the hub with --bpe sentencepiece, sacreBLEU on the raw
references; the same for a language model; bad input stops before anything is written."""
import collections
import math
import os
import random
import re
import runpy
import shutil
import subprocess

import pytest

from conftest import PLUGIN, REPO, run_cli

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


def custom(*args, cwd=None):
    return subprocess.run([*CUSTOM, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def write_corpus(prefix, src="xx", tgt="yy", pairs=2500, seed=0):
    """PREFIX.SRC / PREFIX.TGT, plus the hostile lines the data-prep must drop: bytes that are
    not UTF-8, empty sides, one over-long pair (cleaned after SentencePiece)."""
    g = random.Random(seed)
    lines = {src: [], tgt: []}
    for _ in range(pairs):
        s = " ".join(g.choice(SOURCE) for _ in range(g.randint(3, 8)))
        lines[src].append(s.encode())
        lines[tgt].append(translate(s).encode())
    lines[src][10], lines[tgt][11] = b"caf\xe9 latin-1", b""  # not UTF-8; an empty target
    long = " ".join(SOURCE * 12)
    lines[src][12], lines[tgt][12] = long.encode(), translate(long).encode()  # 360 words: over --max-len after encoding
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for lang, side in lines.items():
        prefix.with_name(f"{prefix.name}.{lang}").write_bytes(b"\n".join(side) + b"\n")
    return prefix


def write_text(path, lines=800, seed=0):
    """Plain text in the source language, a sentence a line, for a language model."""
    g = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(" ".join(g.choice(SOURCE) for _ in range(g.randint(3, 12))) + "\n" for _ in range(lines)))
    return path


# recipe=tiny through scripts/train.sh as custom.sh prints it, with the model shrunk and the
# schedule shortened so that 400 updates on the CPU learn the word-for-word translation
SHRUNK_TINY = ["++model.encoder_embed_dim=64", "++model.decoder_embed_dim=64", "++model.embed_map_dim=32",
               "++model.encoder_blocks=2", "++model.decoder_blocks=2", "++model.encoder_min_depth=2",
               "++model.encoder_max_depth=3", "++model.decoder_min_depth=2", "++model.decoder_max_depth=3",
               *(f"model.{k}=0" for k in ("dropout", "ffn_dropout", "attention_dropout", "dextra_dropout",
                                         "embed_dropout", "pos_dropout")),
               "optimization.lr=[0.003]", "lr_scheduler.warmup_updates=50", "optimization.max_update=400",
               "dataset.max_tokens=2000", "common.cpu=true", "dataset.num_workers=0", "checkpoint.no_epoch_checkpoints=true"]


@pytest.fixture(scope="module")
def custom_mt(tmp_path_factory):
    """The corpus prepared by custom.sh (valid and test split off) and the recipe it printed,
    trained (shrunk) through scripts/train.sh."""
    root = tmp_path_factory.mktemp("custom")
    prefix = write_corpus(root / "raw" / "train")
    proc = custom("--train", prefix, "--src", "xx", "--tgt", "yy", "--out-dir", root / "bin", "--workers", 2,
                  "--vocab-size", 200, "--valid-size", 100, "--test-size", 100, cwd=tmp_path_factory.mktemp("elsewhere"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    train = proc.stdout.splitlines()[0]
    assert train.endswith("/scripts/train.sh custom recipe=tiny"), train
    env = dict(os.environ, DATA_DIR=str(root / "bin"), SAVE_DIR=str(root / "ckpt"))
    run = subprocess.run(["bash", str(REPO / "scripts" / "train.sh"), "custom", "recipe=tiny", *SHRUNK_TINY],
                         capture_output=True, text=True, env=env)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    return root, proc


def test_custom_sh_reports_what_it_dropped_and_prints_the_commands(custom_mt):
    root, proc = custom_mt
    log = proc.stderr
    assert "[read train] done: 2,500 lines in, 2,498 kept" in log and "1 not UTF-8 dropped, 1 empty dropped" in log
    assert re.search(r"\[clean train\] 2,298 pairs in, 2,297 kept .*, 1 dropped", log)  # the over-long pair
    assert "[split] valid 100, test 100 lines drawn off the training text (seed 1)" in log
    assert "[custom] for 2,297 training pairs: recipe tiny (configs/recipe/tiny.yaml;" in log
    bin_, save = root / "bin", REPO / "checkpoints" / "bin-tiny"
    interactive = REPO / ".venv" / "bin" / "fairseq-interactive"
    interactive = interactive if interactive.exists() else shutil.which("fairseq-interactive")
    assert proc.stdout.splitlines() == [  # run from outside the repository: absolute paths
        f"DATA_DIR={bin_} SAVE_DIR={save} bash {REPO}/scripts/train.sh custom recipe=tiny",
        f"DATA_DIR={bin_} bash {REPO}/scripts/evaluate.sh custom {save}",
        f"{interactive} {bin_} --user-dir {REPO}/delight_fairseq --path {save}/checkpoint_best.pt "
        f"--bpe sentencepiece --sentencepiece-model {bin_}/spm.model --beam 5",
    ]
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
    assert re.search(r"\[custom\] for [\d,]+ training tokens: recipe lm_small ", proc.stderr)
    assert proc.stdout.splitlines()[0].endswith("scripts/train.sh custom_lm recipe=lm_small")
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
    assert proc.returncode == 0 and "vocabulary 8k below 200k training lines (sentence pairs" in proc.stdout
    assert "min(1000, 2%) of the training lines" in proc.stdout  # not argparse's escaped 2%%
    for option, default in [("--model-type {unigram,bpe}", "unigram"), ("--max-len MAX_LEN", "250"),
                            ("--ratio RATIO", "1.5"), ("--seed SEED", "1"), ("--workers WORKERS", "4"),
                            ("--out-dir OUT_DIR", "data-bin/custom, data-bin/custom_lm with --lm")]:
        help_text = " ".join(proc.stdout.split("options:", 1)[1].split(option, 1)[1].split("\n  -")[0].split())
        assert f"(default: {default}" in help_text, (option, help_text)


def test_the_default_vocabulary_counts_sentence_pairs(tmp_path):
    """110k pairs (220k sentences on the two sides) ask for the 8k of "below 200k training lines"."""
    namespace = runpy.run_path(str(REPO / "data-prep" / "custom.py"), run_name="custom")
    asked = []

    class Asked(Exception):
        pass

    def train_spm(texts, prefix, vocab_size, *rest):
        asked.append((len(texts), len(texts[0]), vocab_size))
        raise Asked

    namespace["run"].__globals__["train_spm"] = train_spm  # (run_path hands back a copy of the globals)
    for lang in ("xx", "yy"):
        (tmp_path / f"train.{lang}").write_text("".join(f"w{i} {lang}\n" for i in range(112_000)))
    args = namespace["parse"](["--train", str(tmp_path / "train"), "--src", "xx", "--tgt", "yy",
                               "--out-dir", str(tmp_path / "bin"), "--workers", "1"])
    with pytest.raises(Asked):
        namespace["run"](args, log=lambda line: None)
    assert asked == [(2, 110_000, 8000)]  # 2,000 pairs split off for valid and test
    assert [namespace["default_vocab_size"](n) for n in (199_999, 200_000, 1_999_999, 2_000_000)] == \
        [8000, 16000, 16000, 32000]
