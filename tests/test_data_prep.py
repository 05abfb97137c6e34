"""data-prep scripts on tiny corpora laid out as the real downloads."""
import os
import signal
import subprocess
import sys
import time

import pytest
from fairseq.data import Dictionary, data_utils

import corpus_fixtures
from conftest import REPO


def prep(name, *args, check=True):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.run(["bash", str(REPO / "data-prep" / f"{name}.sh"), *map(str, args)],
                          capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def n_sentences(out, split, pair, lang):
    d = Dictionary.load(str(out / f"dict.{lang}.txt"))
    ds = data_utils.load_indexed_dataset(str(out / f"{split}.{pair}.{lang}"), d)
    return len(ds), d


def test_iwslt14(tmp_path):
    """fairseq's prepare-iwslt14.sh: metadata lines dropped but title/description text kept,
    lowercased, cleaned, every 23rd pair valid, test sets in fairseq's order, one dictionary
    per language."""
    raw = corpus_fixtures.iwslt14(tmp_path / "raw")
    out = tmp_path / "iwslt"
    proc = prep("iwslt14_de_en", "--raw-dir", raw, "--out-dir", out, "--workers", 1)
    assert "binaries in" in proc.stderr
    work = out.parent / "iwslt.work"
    text = (work / "text" / "all.de").read_text()
    assert "<url>" not in text and "<talkid>" not in text and "<keywords>" not in text
    assert "\nA talk\n" in text and "\nTED Talk Subtitles and Transcript: a talk\n" in text  # the tags' text stays
    cleaned = (work / "tok" / "all.clean.en").read_text().splitlines()
    assert all(line == line.lower() for line in cleaned)
    valid = (work / "tok" / "valid.en").read_text().splitlines()
    assert valid == cleaned[22::23]  # awk NR%23==0: lines 23, 46, ...
    assert (work / "tok" / "train.en").read_text().splitlines() == [l for i, l in enumerate(cleaned) if (i + 1) % 23]
    n_valid, _ = n_sentences(out, "valid", "de-en", "en")
    n_train, _ = n_sentences(out, "train", "de-en", "en")
    assert (n_valid, n_train) == (len(valid), len(cleaned) - len(valid))
    # test: dev2010, TEDX dev2012, tst2010, tst2011, tst2012 (fixture seeds 10 + index in its list)
    test = (work / "text" / "test.de").read_text().splitlines()
    order = [0, 4, 1, 2, 3]
    assert test == [seg for i in order for seg in corpus_fixtures.sentences("de", 6, 10 + i)]
    assert n_sentences(out, "test", "de-en", "de")[0] == 30
    # separate dictionaries, as fairseq's IWSLT recipe
    assert (out / "dict.de.txt").read_text() != (out / "dict.en.txt").read_text()


@pytest.mark.parametrize("tgt", ["de", "fr"])
def test_wmt14(tmp_path, tgt):
    """The authors' WMT'14 scripts: normalised/tokenised (-a, escaped) training text, every
    100th (En-Fr: 1,333rd) pair valid, BPE, then train and valid cleaned after BPE."""
    n = 150 if tgt == "de" else 280  # En-Fr: 1,400 pairs, so that one is the 1,333rd
    raw = corpus_fixtures.wmt14(tmp_path / "raw", tgt, n)
    out = tmp_path / "bin"
    prep(f"wmt14_en_{tgt}", "--raw-dir", raw, "--out-dir", out, "--workers", 2)
    work = tmp_path / "bin.work"
    every = 100 if tgt == "de" else 1333
    n_corpora = 5 if tgt == "fr" else 3  # + UN and Gigaword (gzipped inside a tar) for En-Fr
    tok = (work / "tok" / "all.en").read_text().splitlines()
    assert len(tok) == n_corpora * n
    assert (work / "tok" / "valid.en").read_text().splitlines() == tok[every - 1::every]
    # cleaning comes after BPE and applies to train and valid, not test
    bpe_train = (work / "bpe" / "train.en").read_text().splitlines()
    clean_train = (work / "bpe" / "train.clean.en").read_text().splitlines()
    assert len(clean_train) <= len(bpe_train) and n_sentences(out, "train", f"en-{tgt}", tgt)[0] == len(clean_train)
    assert n_sentences(out, "valid", f"en-{tgt}", "en")[0] == len((work / "bpe" / "valid.clean.en").read_text().splitlines())
    assert n_sentences(out, "test", f"en-{tgt}", tgt)[0] == 20
    # cased, Moses-tokenised: punctuation split off, capitals kept, & escaped; the test side
    # is not punctuation-normalised; the plain references are kept for scoring
    assert any(c.isupper() for c in "".join(tok)) and " ." in "".join(tok)
    assert (work / "text" / f"test.ref.{tgt}").read_text().splitlines() == corpus_fixtures.sentences(tgt, 20, 12)


def test_wmt14_en_de_for_the_define_paper(tmp_path):
    """The DeFINE paper's split: the same training text as wmt14_en_de.sh, newstest2014 to
    validate and newstest2017 to test, both whole (not cleaned), with plain references."""
    raw = corpus_fixtures.wmt14_en_de_define(tmp_path / "raw")
    out = tmp_path / "bin"
    prep("wmt14_en_de_define", "--raw-dir", raw, "--out-dir", out, "--workers", 1)
    work = tmp_path / "bin.work"
    assert len((work / "tok" / "train.en").read_text().splitlines()) == 3 * 150  # no pair held out of training
    assert n_sentences(out, "valid", "en-de", "de")[0] == 20  # newstest2014
    assert n_sentences(out, "test", "en-de", "en")[0] == 25  # newstest2017, its 300-word line kept
    assert (work / "text" / "valid.ref.de").read_text().splitlines() == corpus_fixtures.sentences("de", 20, 12)
    assert (work / "text" / "test.ref.de").read_text().splitlines()[-1] == "kurz ."


def test_parallel_tokenisation_and_bpe_equal_one_worker(tmp_path):
    src = tmp_path / "in.en"
    src.write_text("".join(line + "\n" for line in corpus_fixtures.sentences("en", 301, 4)) + "A well-known \"test\" & more .\n")
    prep_py = [sys.executable, str(REPO / "data-prep" / "prep.py")]
    outs = []
    for workers in (1, 3):
        out = tmp_path / f"tok{workers}.en"
        subprocess.run([*prep_py, "tokenize", "en", src, out, "--normalize", "--aggressive", "--workers", str(workers)],
                       check=True, capture_output=True)
        outs.append(out.read_text())
    assert outs[0] == outs[1] and outs[0].count("\n") == 302
    assert outs[0].splitlines()[-1] == "A well @-@ known &quot; test &quot; &amp; more ."
    subprocess.run([*prep_py, "bpe-learn", tmp_path / "codes", "--merges", "50", tmp_path / "tok1.en"], check=True)
    bpe = []
    for workers in (1, 3):
        out = tmp_path / f"bpe{workers}.en"
        subprocess.run([*prep_py, "bpe-apply", tmp_path / "codes", tmp_path / "tok1.en", out, "--workers", str(workers)],
                       check=True, capture_output=True)
        bpe.append(out.read_text())
    assert bpe[0] == bpe[1] and "@@" in bpe[0]


def test_a_download_with_the_wrong_checksum_is_refused(tmp_path):
    raw = corpus_fixtures.iwslt14(tmp_path / "raw")
    env = dict(os.environ, IWSLT14_URL=(raw / "de-en.tgz").as_uri())  # curl fetches file:// URLs too
    proc = subprocess.run(["bash", str(REPO / "data-prep" / "iwslt14_de_en.sh"), "--out-dir", str(tmp_path / "bin")],
                          capture_output=True, text=True, env=env)
    assert proc.returncode != 0 and "has md5" in proc.stderr and "not 10936dfdf616504ddbd844e91b94ef4a" in proc.stderr
    assert not list((tmp_path / "bin.work").glob("download/*.tgz"))  # the bad download is not kept
    import hashlib

    env["IWSLT14_DIGEST"] = "md5:" + hashlib.md5((raw / "de-en.tgz").read_bytes()).hexdigest()
    proc = subprocess.run(["bash", str(REPO / "data-prep" / "iwslt14_de_en.sh"), "--out-dir", str(tmp_path / "bin"),
                           "--workers", "1"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_wmt16_en_ro_normalises_romanian(tmp_path):
    raw = corpus_fixtures.wmt16_en_ro(tmp_path / "raw")
    out = tmp_path / "bin"
    prep("wmt16_en_ro", "--raw-dir", raw, "--out-dir", out, "--workers", 1)
    # valid is newsdev2016 (not split from train), cleaned after BPE as the WMT recipes clean it
    valid = (tmp_path / "bin.work" / "bpe" / "valid.clean.ro").read_text().splitlines()
    assert n_sentences(out, "valid", "en-ro", "ro")[0] == len(valid) and 0 < len(valid) <= 15
    assert n_sentences(out, "test", "en-ro", "ro")[0] == 15
    ro = (tmp_path / "bin.work" / "bpe" / "train.clean.ro").read_text().replace("@@ ", "")
    assert "ţ" not in ro and "ş" not in ro and "ă" not in ro and "â" not in ro and "tara" in ro
    assert "ă" in (tmp_path / "bin.work" / "text" / "all.ro").read_text()  # raw text untouched


def prep_lm(name, tmp_path):
    """``data-prep/NAME.sh`` on its fixture archive: (binaries dir, dictionary, test set)."""
    raw = getattr(corpus_fixtures, name)(tmp_path / "raw")
    out = tmp_path / "bin"
    prep(name, "--raw-dir", raw, "--out-dir", out, "--workers", 1)
    d = Dictionary.load(str(out / "dict.txt"))
    return out, d, data_utils.load_indexed_dataset(str(out / "test"), d)


def test_wikitext103(tmp_path):
    _, d, ds = prep_lm("wikitext103", tmp_path)
    assert len(ds) == 42 and d.index("@-@") != d.unk()  # every line, WikiText's tokens kept


def test_ptb(tmp_path):
    out, d, ds = prep_lm("ptb", tmp_path)
    assert len(ds) == 30  # every line
    assert "<unk>" not in d.symbols[d.nspecial:]  # PTB's <unk> is fairseq's own unknown word
    assert (ds[0] == d.unk()).any() and d.index("N") != d.unk()
    stamp = (out / "train.bin").stat().st_mtime_ns
    prep("ptb", "--raw-dir", tmp_path / "raw", "--out-dir", out, "--workers", 1)  # run again: nothing redone
    assert (out / "train.bin").stat().st_mtime_ns == stamp


def test_extracted_files_work_as_well_as_archives(tmp_path):
    raw = corpus_fixtures.iwslt14(tmp_path / "raw")
    extracted = tmp_path / "extracted"
    extracted.mkdir()
    subprocess.run(["tar", "-xzf", raw / "de-en.tgz", "-C", extracted], check=True)  # extracted/de-en/...
    prep("iwslt14_de_en", "--raw-dir", extracted, "--out-dir", tmp_path / "bin", "--workers", 1)
    prep("iwslt14_de_en", "--raw-dir", raw, "--out-dir", tmp_path / "from-archive", "--workers", 1)
    files = sorted(p.name for p in (tmp_path / "bin").iterdir() if p.suffix in (".bin", ".idx", ".txt"))
    assert "test.de-en.de.bin" in files and "dict.en.txt" in files
    for name in files:  # the same binaries and dictionaries either way
        assert (tmp_path / "bin" / name).read_bytes() == (tmp_path / "from-archive" / name).read_bytes(), name


def test_clean_drops_exactly_the_pairs_clean_corpus_n_drops(tmp_path):
    """Moses clean-corpus-n (1-250 tokens a side, ratio <= 1.5): each kind of bad pair dropped, every good one kept."""
    pairs = [("a b c", "x y z"),                      # kept
             ("", "x y"),                              # empty side
             (" ".join(["w"] * 251), " ".join(["v"] * 251)),  # over 250 tokens
             ("a", "x y"),                             # ratio 2
             ("a b", "x y z"),                         # ratio 1.5: kept
             (" ".join(["w"] * 250), " ".join(["v"] * 250)),  # 250 tokens: kept
             ("a  b   c", "x\ty z")]                  # whitespace collapsed, kept
    (tmp_path / "in.src").write_text("".join(s + "\n" for s, _ in pairs))
    (tmp_path / "in.tgt").write_text("".join(t + "\n" for _, t in pairs))
    proc = subprocess.run([sys.executable, str(REPO / "data-prep" / "prep.py"), "clean", tmp_path / "in.src",
                           tmp_path / "in.tgt", tmp_path / "out.src", tmp_path / "out.tgt", "--max", "250"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.src").read_text().splitlines() == ["a b c", "a b", " ".join(["w"] * 250), "a b c"]
    assert (tmp_path / "out.tgt").read_text().splitlines() == ["x y z", "x y z", " ".join(["v"] * 250), "x y z"]
    assert "7 lines in, 4 kept" in proc.stderr and "3 dropped" in proc.stderr


def test_missing_file_is_named_and_nothing_is_binarised(tmp_path):
    raw = corpus_fixtures.wmt16_en_ro(tmp_path / "raw")
    (raw / "dev.tgz").unlink()
    proc = prep("wmt16_en_ro", "--raw-dir", raw, "--out-dir", tmp_path / "bin", check=False)
    assert proc.returncode != 0
    assert "missing from" in proc.stderr and "dev/newsdev2016-enro-src.en.sgm" in proc.stderr
    assert not (tmp_path / "bin").exists()


def test_failed_download_says_how_to_use_raw_dir(tmp_path):
    env_url = "http://127.0.0.1:9/de-en.tgz"  # nothing listens on the discard port
    proc = subprocess.run(["bash", str(REPO / "data-prep" / "iwslt14_de_en.sh"), "--out-dir", str(tmp_path / "bin")],
                          capture_output=True, text=True, env=dict(os.environ, IWSLT14_URL=env_url))
    assert proc.returncode != 0
    assert f"could not download {env_url}" in proc.stderr and "--raw-dir" in proc.stderr
    assert not list((tmp_path / "bin.work").glob("download/*.tgz"))  # no partial archive kept as complete


def test_rerun_skips_finished_steps_and_interrupted_binarising_is_redone(tmp_path):
    raw = corpus_fixtures.iwslt14(tmp_path / "raw")
    out = tmp_path / "bin"
    prep("iwslt14_de_en", "--raw-dir", raw, "--out-dir", out, "--workers", 1)
    stamp = (out / "train.de-en.de.bin").stat().st_mtime_ns
    again = prep("iwslt14_de_en", "--raw-dir", raw, "--out-dir", out, "--workers", 1)
    assert "binarize: done before, skipped" in again.stderr and "tokenize-all.de: done before" in again.stderr
    assert (out / "train.de-en.de.bin").stat().st_mtime_ns == stamp


def test_killed_run_leaves_no_binaries_and_the_next_run_completes(tmp_path):
    raw = corpus_fixtures.iwslt14(tmp_path / "raw")
    out = tmp_path / "bin"
    proc = subprocess.Popen(["bash", str(REPO / "data-prep" / "iwslt14_de_en.sh"), "--raw-dir", str(raw),
                             "--out-dir", str(out), "--workers", "1"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (tmp_path / "bin.tmp").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)  # fairseq-preprocess has started writing
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # killed while binarising: no binaries that look finished
    again = prep("iwslt14_de_en", "--raw-dir", raw, "--out-dir", out, "--workers", 1)
    assert "tokenize-all.de: done before, skipped" in again.stderr
    assert n_sentences(out, "test", "de-en", "de")[0] == 30


def test_hostile_raw_text_is_handled_and_inputs_are_kept(tmp_path):
    """Non-UTF-8 bytes, empty lines and over-long lines: no crash, bad pairs dropped, inputs untouched."""
    src, tgt = tmp_path / "raw.de", tmp_path / "raw.en"
    src_bytes = "Grüße aus Köln .\n".encode("latin-1") + b"\n" + b"ein Satz .\n" + b"lang " * 300 + b"\n"
    src.write_bytes(src_bytes)
    tgt.write_bytes(b"greetings from Cologne .\nnot empty\na sentence .\nlong\n")
    prep_py = [sys.executable, str(REPO / "data-prep" / "prep.py")]
    subprocess.run([*prep_py, "tokenize", "de", src, tmp_path / "tok.de"], check=True, capture_output=True)
    subprocess.run([*prep_py, "tokenize", "en", tgt, tmp_path / "tok.en"], check=True, capture_output=True)
    tokenized = (tmp_path / "tok.de").read_text(encoding="utf-8").splitlines()
    assert len(tokenized) == 4 and "\ufffd" in tokenized[0]  # undecodable bytes became U+FFFD, line kept
    proc = subprocess.run([*prep_py, "clean", tmp_path / "tok.de", tmp_path / "tok.en", tmp_path / "c.de",
                           tmp_path / "c.en", "--max", "250"], capture_output=True, text=True, check=True)
    kept = (tmp_path / "c.de").read_text(encoding="utf-8").splitlines()
    # the empty and the 300-token lines go, and so does the garbled one: Moses splits every
    # U+FFFD into a token of its own, which breaks the 1.5 length ratio
    assert "4 lines in, 1 kept" in proc.stderr
    assert kept == ["ein Satz ."] and (tmp_path / "c.en").read_text().splitlines() == ["a sentence ."]
    assert src.read_bytes() == src_bytes  # nothing already written is touched
