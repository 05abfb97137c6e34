"""scripts/: checkpoint averaging, BLEU scoring, evaluate.sh, plots."""
import os
import re
import subprocess
import sys

import pytest
import sacrebleu
import torch

from conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import plot  # noqa: E402
import score_bleu  # noqa: E402


def script(name, *args, env=None):
    cmd = ["bash" if name.endswith(".sh") else sys.executable, str(REPO / "scripts" / name), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **(env or {})))


def test_average_of_the_last_checkpoints_is_their_mean(toy_checkpoint, tmp_path):
    out = tmp_path / "avg.pt"
    proc = script("average_checkpoints.py", toy_checkpoint, "--num", 3, "--output", out)
    assert proc.returncode == 0, proc.stderr
    names = sorted(toy_checkpoint.glob("checkpoint_*_*.pt"), key=lambda p: int(p.stem.split("_")[-1]))
    assert [p.stem.split("_")[-1] for p in names] == ["150", "225", "300", "375"]
    states = [torch.load(p, weights_only=True)["model"] for p in names[-3:]]
    avg = torch.load(out, weights_only=True)
    for key, value in avg["model"].items():
        torch.testing.assert_close(value, sum(s[key] for s in states) / 3, rtol=1e-6, atol=1e-7)
    assert "last_optimizer_state" not in avg and avg["cfg"]["model"]["_name"] == "delight_transformer_wmt14_en_de_128"


def test_average_asks_for_more_checkpoints_than_there_are(toy_checkpoint, tmp_path):
    proc = script("average_checkpoints.py", toy_checkpoint, "--num", 9, "--output", tmp_path / "avg.pt")
    assert proc.returncode != 0 and "asked for the last 9 checkpoints" in proc.stderr and "found 4" in proc.stderr
    assert not (tmp_path / "avg.pt").exists()


def test_bleu_scores_and_compound_splitting(tmp_path):
    hyps = ["das ist ein Test-Satz .", "ein kleines Haus"]
    refs = ["das ist ein Test-Satz .", "ein großes Haus"]
    out = tmp_path / "gen.txt"
    out.write_text("".join(f"S-{i}\tx\nT-{i}\t{r}\nH-{i}\t-0.5\t{h}\n" for i, (h, r) in enumerate(zip(hyps, refs))))
    ids, h, r = score_bleu.read_generate(out)
    assert ids == [0, 1] and h == hyps and r == refs
    assert score_bleu.compound_split("ein Test-Satz-Teil") == "ein Test ##AT##-##AT## Satz ##AT##-##AT## Teil"
    plain = score_bleu.scores(ids, h, r, "de")
    split = score_bleu.scores(ids, h, r, "de", compound=True)
    assert plain["tok"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs], tokenize="none").score)
    split_expected = sacrebleu.corpus_bleu([score_bleu.compound_split(x) for x in hyps],
                                           [[score_bleu.compound_split(x) for x in refs]], tokenize="none").score
    assert split["tok"] == pytest.approx(split_expected) and split["tok"] > plain["tok"]  # more matching n-grams
    assert plain["detok"] == pytest.approx(sacrebleu.corpus_bleu(["das ist ein Test-Satz.", "ein kleines Haus"],
                                                                 [["das ist ein Test-Satz.", "ein großes Haus"]]).score)


def test_evaluate_translation_averages_and_scores(toy_bin, toy_checkpoint, tmp_path):
    proc = script("evaluate.sh", "iwslt14_de_en", toy_checkpoint, "--average", 3, env={"DATA_DIR": str(toy_bin)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "averaged 3 checkpoints" in proc.stdout and "sentences 100" in proc.stdout
    detok = float(re.search(r"BLEU \(detokenised, sacrebleu\) ([\d.]+)", proc.stdout).group(1))
    tok = float(re.search(r"BLEU \(tokenised\) ([\d.]+)", proc.stdout).group(1))
    assert detok > 95 and tok > 95  # the demo's model: BLEU 100


def test_evaluate_scores_checkpoint_best_for_wmt(toy_bin, toy_checkpoint):
    """The authors scored checkpoint_best.pt for WMT (their READMEs); no averaging then."""
    proc = script("evaluate.sh", "wmt16_en_ro", toy_checkpoint, env={"DATA_DIR": str(toy_bin)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "averaged" not in proc.stdout and "sentences 100" in proc.stdout
    assert "checkpoint_best.pt" in (toy_checkpoint / "generate-test.log").read_text()


def test_evaluate_scores_both_sets_of_the_define_recipe(toy_bin, toy_checkpoint):
    """The DeFINE paper's Transformer: newstest2014 (valid) and newstest2017 (test), each scored,
    with checkpoint_best.pt and no averaging."""
    proc = script("evaluate.sh", "wmt14_en_de_define", toy_checkpoint, env={"DATA_DIR": str(toy_bin)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    sets = re.findall(r"^(valid|test):\n.*?sentences (\d+)", proc.stdout, flags=re.S | re.M)
    assert sets == [("valid", "100"), ("test", "100")] and "averaged" not in proc.stdout
    for subset in ("valid", "test"):
        assert "checkpoint_best.pt" in (toy_checkpoint / f"generate-{subset}.log").read_text()
        assert float(re.findall(r"BLEU \(tokenised, compound-split\) ([\d.]+)", proc.stdout)[("valid", "test").index(subset)]) > 95


def test_romanian_scoring_removes_diacritics_on_both_sides(tmp_path):
    out = tmp_path / "gen.txt"
    out.write_text("S-0\tx\nT-0\tx\nH-0\t-0.5\tAceasta este o tara frumoasa .\n")
    raw = tmp_path / "ref.ro"
    raw.write_text("Aceasta este o ţară frumoasă.\n")  # cedilla t, as in the WMT'16 references
    ids, hyps, refs = score_bleu.read_generate(out)
    raw_refs = raw.read_text().splitlines()
    assert score_bleu.scores(ids, hyps, refs, "ro", raw_refs=raw_refs, romanian=True)["detok"] == pytest.approx(100.0)
    assert score_bleu.scores(ids, hyps, refs, "ro", raw_refs=raw_refs)["detok"] < 60


def test_evaluate_language_model_reports_perplexity(lm_data, trained_models):
    ckpt_dir = trained_models("define+delight").parent  # define_lm_small, 200 updates
    proc = script("evaluate.sh", "wikitext103", ckpt_dir, "--", "--tokens-per-sample", 64, "--context-window", 32,
                  env={"DATA_DIR": str(lm_data / "bin")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(re.search(r"Perplexity: ([\d.]+)", proc.stdout).group(1)) < 8  # measured 4.6; the unigram's is 154


def test_evaluate_explains_missing_pieces(tmp_path):
    proc = script("evaluate.sh", "wmt14_en_de", tmp_path, env={"DATA_DIR": str(tmp_path / "none")})
    assert proc.returncode != 0 and "run bash data-prep/wmt14_en_de.sh first" in proc.stderr


def test_plots(toy_checkpoint, tmp_path):
    curves = plot.read_log(toy_checkpoint / "train.log")
    assert len(curves["train"]) == 50  # one summary per epoch
    assert len(curves["valid"]) == 50 + 5  # per epoch, and at each mid-epoch save (75, 150, ..., 375)
    assert curves["valid"][-1][1] < curves["valid"][0][1]  # the loss went down
    for args in (["curves", toy_checkpoint / "train.log"], ["scaling", "delight_transformer_wmt14_en_de_512"],
                 ["scaling", "define_lm_wiki103_delight"]):
        out = tmp_path / f"{args[0]}.png"
        proc = script("plot.py", *args, "--out", out)
        assert proc.returncode == 0, proc.stderr[-1500:]
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    proc = script("plot.py", "scaling", "define_lm_wiki103_transformer", "--out", tmp_path / "x.png")
    assert proc.returncode != 0 and "has no DeLighT blocks" in proc.stderr


def test_block_layout_of_a_preset():
    layout = dict(plot.block_layout("delight_transformer_wmt14_en_de_512"))
    assert [d for d, _ in layout["encoder"]] == [4, 4, 5, 5, 6, 6, 7, 8]
    assert layout["encoder"][0][1] == 1024 and layout["encoder"][-1][1] == 1536  # w_m d_m = 2 x 512 ... 3 x 512


# the papers' evaluation per dataset (their READMEs and commands): checkpoint, length penalty,
# compound splitting / Romanian normalisation, language-model context
EVALUATION = {
    "wmt14_en_de": ["checkpoint_best.pt", "--lenpen 0.4", "--compound-split"],
    "wmt14_en_fr": ["checkpoint_best.pt", "--lenpen 0.9"],
    "wmt16_en_ro": ["checkpoint_best.pt", "--lenpen 1.0", "--romanian"],
    "iwslt14_de_en": ["--num 10", "averaged_last_10.pt", "--lenpen 1.0"],
    "wmt14_en_de_define": ["checkpoint_best.pt", "--lenpen 0.4", "--compound-split", "--gen-subset valid",
                           "--gen-subset test"],
    "custom": ["--post-process sentencepiece", "--detokenized"],
    "wikitext103": ["--tokens-per-sample 512 --context-window 400"],
    "wikitext103_lstm": ["--tokens-per-sample 256 --context-window 192"],
    "ptb": ["--task bptt_lm --tokens-per-sample 70 --batch-size 1"],
    "wikitext103_txl": ["--task truncated_bptt_lm", "--tokens-per-sample 64",
                        '{"mem_len":640,"clamp_len":400,"same_length":True}'],
}


@pytest.mark.parametrize("dataset", list(EVALUATION))
def test_evaluate_uses_each_datasets_settings(dataset):
    proc = script("evaluate.sh", dataset, "/nowhere", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    for setting in EVALUATION[dataset]:
        assert setting in proc.stdout, (dataset, setting, proc.stdout)
    if dataset in ("wmt14_en_de", "wmt14_en_fr", "wmt16_en_ro", "wmt14_en_de_define"):
        assert "average_checkpoints" not in proc.stdout  # the authors scored checkpoint_best.pt
    if dataset != "wmt14_en_de" and dataset != "wmt14_en_de_define":
        assert "--compound-split" not in proc.stdout
