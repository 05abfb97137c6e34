"""The documented claims about ``data-prep/custom.sh``'s options (README and its --help), each checked by running the
option (issue #31): ``--max-len`` and ``--ratio`` count SentencePiece pieces (inputs inside the
limit in pieces and outside it in characters or words, and the reverse), ``--model-type``,
``--valid-size`` / ``--test-size`` and the default split (2% of the lines), ``--seed``
(the same seed gives the same split and the same binaries, another seed another split).
``--separate`` is tested in tests/test_custom_corpus.py."""
import random
import subprocess

import pytest
from fairseq.data import Dictionary, data_utils

from conftest import REPO

CUSTOM = ["bash", str(REPO / "data-prep" / "custom.sh")]
# two made-up languages, word for word: short source words (4 letters), long target words (12)
SRC_SYLLABLES, TGT_SYLLABLES = ["ka", "lo", "mi", "ne", "su"], ["bra", "gre", "plo", "stu", "dri", "fle"]


def _words(syllables, n_syllables, count, seed):
    g = random.Random(seed)
    words = set()
    while len(words) < count:
        words.add("".join(g.choice(syllables) for _ in range(n_syllables)))
    return sorted(words)


SOURCE, TARGET = _words(SRC_SYLLABLES, 2, 20, 1), _words(TGT_SYLLABLES, 4, 20, 2)
LEXICON = dict(zip(SOURCE, TARGET))


def custom(*args):
    proc = subprocess.run([*CUSTOM, *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _fillers(n, seed):
    """``n`` translation pairs of 3-8 words, the target word for word (as many pieces a side)."""
    g = random.Random(seed)
    pairs = []
    for _ in range(n):
        src = [g.choice(SOURCE) for _ in range(g.randint(3, 8))]
        pairs.append((" ".join(src), " ".join(LEXICON[w] for w in src)))
    return pairs


def _write(prefix, pairs, src="xx", tgt="yy"):
    prefix.parent.mkdir(parents=True, exist_ok=True)
    for lang, side in ((src, 0), (tgt, 1)):
        prefix.with_name(f"{prefix.name}.{lang}").write_text("".join(p[side] + "\n" for p in pairs))
    return prefix


def _processor(out):
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_file=str(out / "spm.model"))


def _model_type(out) -> str:
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString((out / "spm.model").read_bytes())
    return sentencepiece_model_pb2.TrainerSpec.ModelType.Name(proto.trainer_spec.model_type)


def _model_content(data: bytes):
    """A SentencePiece model's pieces, scores and settings, less the paths it records: the file it
    was trained from (custom.py writes the text to a temporary file) and the output prefix."""
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(data)
    proto.trainer_spec.ClearField("input")
    proto.trainer_spec.ClearField("model_prefix")
    return proto.SerializeToString()


def _n_sentences(out, split, lang, pair="xx-yy"):
    d = Dictionary.load(str(out / f"dict.{lang}.txt"))
    return len(data_utils.load_indexed_dataset(str(out / f"{split}.{pair}.{lang}"), d))


def _lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def _kept(pairs, count, max_len, ratio):
    """clean-corpus-n's rule as the README states it, lengths counted by ``count``."""
    out = []
    for s, t in pairs:
        ns, nt = count(s), count(t)
        if 1 <= ns <= max_len and 1 <= nt <= max_len and max(ns, nt) <= ratio * min(ns, nt):
            out.append((s, t))
    return out


# ----- --max-len and --ratio count SentencePiece pieces --------------------------------------------------

RARE = "qxzjvwyh"  # letters no word uses: SentencePiece spells a word of them in single letters


def _rare_word(g, length):
    return "".join(g.choice(RARE) for _ in range(length))


def _limit_pairs():
    """Pairs that the limits (--max-len 12 --ratio 2) keep or drop depending on what is counted:
    ``{name: (src, tgt)}``; the common words are one piece each (checked on the model)."""
    g = random.Random(5)

    def sentence(n):
        return [g.choice(SOURCE) for _ in range(n)]

    twelve, thirteen = sentence(12), sentence(13)
    three = sentence(3)
    return {
        # 12 pieces a side: at the limit in pieces (kept), 59 and 155 characters (dropped if characters)
        "12 words a side": (" ".join(twelve), " ".join(LEXICON[w] for w in twelve)),
        # 13 pieces: over (dropped) in pieces and in words
        "13 words a side": (" ".join(thirteen), " ".join(LEXICON[w] for w in thirteen)),
        # one 30-letter word a side: 1 word (kept if words), well over 12 pieces (dropped)
        "one rare word a side": (_rare_word(g, 30), _rare_word(g, 30)),
        # 3 pieces against 6: ratio 2, at the limit (kept; dropped at the default 1.5)
        "3 words against 6": (" ".join(three), " ".join(LEXICON[w] for w in three + sentence(3))),
        # 2 words a side, but a rare 12-letter word makes the target over 4 pieces: ratio over 2 in pieces
        # (dropped), 1 in words (kept)
        "2 words against a rare one": (" ".join(sentence(2)), f"{LEXICON[SOURCE[0]]} {_rare_word(g, 12)}"),
        # 4 short words against 4 long ones: ratio 1 in pieces (kept), ~2.7 in characters (dropped)
        "4 short against 4 long": (" ".join(SOURCE[:4]), " ".join(TARGET[:4])),
    }


def test_max_len_and_ratio_count_sentencepiece_pieces(tmp_path):
    """custom.sh --max-len 12 --ratio 2 keeps exactly the training pairs (and split-off validation
    pairs) whose sides are 1-12 *pieces* long with a piece ratio of at most 2 -- not characters,
    not words: each special pair is inside the limits in one unit and outside in another. The
    default unigram model; the validation set drawn off is 2% of the lines; the given test set is
    not cleaned."""
    specials = _limit_pairs()
    pairs = _fillers(600, seed=0) + list(specials.values())
    random.Random(3).shuffle(pairs)
    train = _write(tmp_path / "raw" / "train", pairs)
    long = " ".join(SOURCE * 2)  # 40 pieces: a training pair like it would be dropped
    test = _write(tmp_path / "raw" / "test", _fillers(5, seed=9) + [(long, " ".join(LEXICON[w] for w in long.split()))])
    out = tmp_path / "bin"
    proc = custom("--train", train, "--test", test, "--src", "xx", "--tgt", "yy", "--out-dir", out, "--vocab-size", 300,
                  "--max-len", 12, "--ratio", 2, "--workers", 1)
    assert _model_type(out) == "UNIGRAM"  # --model-type's default
    sp = _processor(out)

    def pieces(text):
        return len(sp.encode(text, out_type=str))

    assert all(pieces(w) == 1 for w in SOURCE + TARGET)  # the common words are one piece each
    sizes = {name: (pieces(s), pieces(t)) for name, (s, t) in specials.items()}
    assert sizes["12 words a side"] == (12, 12) and sizes["13 words a side"] == (13, 13)
    assert min(sizes["one rare word a side"]) > 12 and sizes["3 words against 6"] == (3, 6)
    assert sizes["2 words against a rare one"][1] > 4 and sizes["4 short against 4 long"] == (4, 4)
    by_pieces = _kept(pairs, pieces, 12, 2.0)
    by_chars = _kept(pairs, len, 12, 2.0)
    by_words = _kept(pairs, lambda text: len(text.split()), 12, 2.0)
    kept_specials = {name for name, pair in specials.items() if pair in by_pieces}
    assert kept_specials == {"12 words a side", "3 words against 6", "4 short against 4 long"}
    assert {name for name, pair in specials.items() if pair in by_words} == set(specials) - {"13 words a side"}
    assert not {"12 words a side", "4 short against 4 long"} & {n for n, p in specials.items() if p in by_chars}
    assert specials["3 words against 6"] not in _kept(pairs, pieces, 12, 1.5)  # --ratio 2 matters, so does --max-len:
    assert specials["13 words a side"] in _kept(pairs, pieces, 250, 2.0)

    # what custom.sh kept: training + split-off validation pairs, decoded back from their pieces
    work = tmp_path / "bin.work"
    got = []
    for split in ("train", "valid"):
        src, tgt = (_lines(work / "spm" / f"{split}.{lang}") for lang in ("xx", "yy"))
        got += [(sp.decode(s.split()), sp.decode(t.split())) for s, t in zip(src, tgt)]
    assert sorted(got) == sorted(by_pieces)
    assert sorted(got) != sorted(by_chars) and sorted(got) != sorted(by_words)
    n_valid = len(_lines(work / "text" / "valid.xx"))  # drawn off before cleaning
    assert n_valid == len(pairs) // 50  # the default: min(1000, 2%) of the lines
    assert _n_sentences(out, "train", "xx") + _n_sentences(out, "valid", "yy") == len(by_pieces)
    assert _n_sentences(out, "test", "xx") == 6  # the test set keeps its 40-piece pair
    assert "[clean train] " in proc.stderr and "(1-12 pieces, ratio <= 2.0)" in proc.stderr


# ----- --model-type, --valid-size / --test-size, --seed ------------------------------------------------

@pytest.fixture(scope="module")
def seeded_runs(tmp_path_factory):
    """One corpus prepared three times with --model-type bpe --valid-size 37 --test-size 23: twice
    with --seed 5, once with --seed 6. ``{name: (out dir, pairs)}``."""
    root = tmp_path_factory.mktemp("custom-options")
    pairs = _fillers(600, seed=1)
    train = _write(root / "raw" / "train", pairs)
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("other seed", 6)):
        out = root / name.replace(" ", "-") / "bin"
        custom("--train", train, "--src", "xx", "--tgt", "yy", "--out-dir", out, "--vocab-size", 300,
               "--model-type", "bpe", "--valid-size", 37, "--test-size", 23, "--seed", seed, "--workers", 1)
        runs[name] = out
    return runs, pairs


def test_model_type_bpe_trains_a_bpe_model(seeded_runs):
    runs, pairs = seeded_runs
    assert _model_type(runs["a"]) == "BPE"
    sp = _processor(runs["a"])
    assert sp.decode(sp.encode(pairs[0][1])) == pairs[0][1]


def test_valid_size_and_test_size_split_off_that_many_pairs(seeded_runs):
    """37 and 23 pairs drawn off the 600, each pair in one split only, the sides still aligned;
    binarised whole (these pairs are all within the limits)."""
    runs, pairs = seeded_runs
    work = runs["a"].parent / "bin.work"
    splits = {split: list(zip(*(_lines(work / "text" / f"{split}.{lang}") for lang in ("xx", "yy"))))
              for split in ("train", "valid", "test")}
    assert {k: len(v) for k, v in splits.items()} == {"train": 540, "valid": 37, "test": 23}
    assert sorted(splits["train"] + splits["valid"] + splits["test"]) == sorted(pairs)  # aligned, each once
    assert all(t == " ".join(LEXICON[w] for w in s.split()) for split in splits.values() for s, t in split)
    for split, n in (("train", 540), ("valid", 37), ("test", 23)):
        assert _n_sentences(runs["a"], split, "xx") == n == _n_sentences(runs["a"], split, "yy")
    assert _lines(work / "text" / "test.ref.yy") == [t for _, t in splits["test"]]


def test_the_same_seed_gives_the_same_split_and_binaries_another_seed_another_split(seeded_runs):
    runs, _ = seeded_runs

    def files(out):
        return {p.relative_to(out.parent).as_posix(): p.read_bytes()
                for base in (out, out.parent / "bin.work") for p in sorted(base.rglob("*"))
                if p.is_file() and not p.name.endswith(".log")}

    a, b, other = files(runs["a"]), files(runs["b"]), files(runs["other seed"])
    assert a.keys() == b.keys() and any(k.startswith("bin/") and k.endswith(".bin") for k in a)
    models = [k for k in a if k.endswith("spm.model")]
    assert len(models) == 2 and all(_model_content(a[k]) == _model_content(b[k]) for k in models)
    assert [k for k in a if a[k] != b[k] and k not in models] == []  # every split, dictionary and binary
    for split in ("valid", "test"):
        key = f"bin.work/text/{split}.xx"
        assert a[key] != other[key]
        assert len(set(a[key].splitlines()) & set(other[key].splitlines())) < 10  # another draw, not a shuffle
