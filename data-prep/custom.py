#!/usr/bin/env python
"""Your own corpus -> SentencePiece -> fairseq binaries, in one command (``data-prep/custom.sh``).

Translation: ``--train PREFIX --src L1 --tgt L2`` reads ``PREFIX.L1`` / ``PREFIX.L2`` (one
sentence a line, the same number of lines); ``--valid`` / ``--test`` prefixes likewise, or
they are split off the training pairs (``--valid-size`` / ``--test-size``, a fixed draw from
``--seed``). Language model: ``--lm --train FILE`` (``--valid`` / ``--test`` files, or split off).

Steps, each with a progress bar on a terminal (plain lines in a log) and a one-line summary:
1. read: a pair (line) whose bytes are not UTF-8, or that is empty, is dropped and counted
   (test sets keep their empty lines: a system must still answer them);
2. split: valid and test drawn off the training text when not given;
3. SentencePiece (``--model-type unigram|bpe``, ``--vocab-size``; one joint model for both
   languages, or ``--separate`` models), trained on the training text;
4. encode every split (``--workers N`` processes);
5. clean the training and the split-off validation pairs as the papers' scripts do after BPE
   (clean-corpus-n: 1 to ``--max-len`` pieces a side, length ratio at most ``--ratio``);
6. ``fairseq-preprocess`` into ``--out-dir`` (``data-bin/custom``, ``data-bin/custom_lm`` with
   ``--lm``; a joined dictionary with a joint model), the
   SentencePiece model(s) beside the binaries (``spm.model``, or ``spm.L1.model`` /
   ``spm.L2.model``) and the raw test references in ``OUT.work/text/test.ref.L2`` (what
   ``scripts/evaluate.sh custom`` scores against);
7. the recipe for a corpus of this size (README, "Which model for my data"; configs/recipe/)
   and the commands that train, evaluate and use it, on standard output, one a line.

Bad input (a missing side, files of different line counts, an empty file, an existing output
without ``--overwrite``) stops with one line before anything is written.
"""
import argparse
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from multiprocessing import Pool
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prep import atomic_write, pair_kept  # noqa: E402
from progress import Progress, count_lines  # noqa: E402


class InputError(Exception):
    """Bad input: one line, exit 2, nothing written."""


# ----- what suits a corpus of this size (README, "Which model for my data") ------------------

REPO = Path(__file__).resolve().parents[1]
# each row: (training pairs or LM tokens below which it applies, its recipe: configs/recipe/NAME.yaml,
# which holds every setting the row promises)
TRANSLATION_RECIPES = [(50_000, "tiny"), (500_000, "small"), (5_000_000, "medium"), (None, "large")]
LM_RECIPES = [(5_000_000, "lm_small"), (None, "lm_large")]
UNSHARED = ["model.share_all_embeddings=false", "model.share_decoder_input_output_embed=true"]


def default_vocab_size(lines: int) -> int:
    """SentencePiece vocabulary (of each model, with ``--separate``) for ``lines`` training
    lines (sentence pairs, or lines of text for a language model): 8k below 200k, 16k below
    2M, else 32k (the WMT recipes' 32k-40k BPE)."""
    return 8000 if lines < 200_000 else 16000 if lines < 2_000_000 else 32000


def recipe_for(units: int, lm: bool) -> str:
    return next(name for limit, name in (LM_RECIPES if lm else TRANSLATION_RECIPES) if limit is None or units < limit)


def shares_all_embeddings(recipe: str) -> bool:
    """Whether the model a recipe picks ties its encoder's and decoder's tables (which needs
    one joined dictionary)."""
    import yaml

    defaults = yaml.safe_load((REPO / "configs" / "recipe" / f"{recipe}.yaml").read_text())["defaults"]
    model = next(d["override /model"] for d in defaults if "override /model" in d)
    return bool(yaml.safe_load((REPO / "configs" / "model" / f"{model}.yaml").read_text())["model"]
                .get("share_all_embeddings"))


def shown(path) -> str:
    """``path`` as a command should name it: relative to the working directory when inside it,
    quoted for the shell where it needs to be."""
    path = os.path.abspath(path)
    here = os.path.abspath(os.getcwd())
    return shlex.quote(os.path.relpath(path, here) if path.startswith(here + os.sep) else path)


def next_commands(out: Path, units: int, lm: bool, separate: bool, src: str = None) -> Tuple[str, List[str]]:
    """The row of "Which model for my data" for a corpus of ``units`` training pairs (LM:
    tokens) and the commands that train it on the binaries in ``out``, evaluate and use it."""
    recipe = recipe_for(units, lm)
    dataset = "custom_lm" if lm else "custom"
    save = REPO / "checkpoints" / f"{out.name}-{recipe}"
    env = f"DATA_DIR={shown(out)} SAVE_DIR={shown(save)}"
    overrides = UNSHARED if separate and not lm and shares_all_embeddings(recipe) else []
    commands = [" ".join([env, "bash", shown(REPO / "scripts" / "train.sh"), dataset, f"recipe={recipe}", *overrides]),
                " ".join([f"DATA_DIR={shown(out)}", "bash", shown(REPO / "scripts" / "evaluate.sh"), dataset, shown(save)])]
    if not lm:
        interactive = shutil.which("fairseq-interactive") or "fairseq-interactive"
        commands.append(" ".join([shown(interactive) if os.sep in interactive else interactive, shown(out),
                                  "--user-dir", shown(REPO / "delight_fairseq"), "--path",
                                  shown(save / "checkpoint_best.pt"), "--bpe sentencepiece --sentencepiece-model",
                                  shown(out / (f"spm.{src}.model" if separate else "spm.model")), "--beam 5"]))
    what = f"{units:,} training {'tokens' if lm else 'pairs'}"
    return f"{what}: recipe {recipe} (configs/recipe/{recipe}.yaml; README, 'Which model for my data')", commands


# ----- reading, checking, splitting ------------------------------------------------------------

def read_side(path: Path) -> List[bytes]:
    with open(path, "rb") as f:
        return [line.rstrip(b"\n").rstrip(b"\r") for line in f]


def check_inputs(files: Dict[str, Path]) -> Dict[str, int]:
    """Every file exists and is non-empty, and the sides of a pair have the same line count;
    else one ``InputError`` naming the problem."""
    counts = {}
    for what, path in files.items():
        if not path.is_file():
            raise InputError(f"no {what} file {path}")
        counts[what] = count_lines(path)
        if counts[what] == 0:
            raise InputError(f"the {what} file {path} is empty")
    return counts


def decode(sides: Sequence[List[bytes]], keep_empty: bool, what: str, log) -> Tuple[List[List[str]], Dict[str, int]]:
    """The lines (one list per side, aligned) whose every side is UTF-8 (and not empty unless
    ``keep_empty``); the dropped ones counted."""
    out = [[] for _ in sides]
    dropped = {"not UTF-8": 0, "empty": 0}
    progress = Progress(f"read {what}", total=len(sides[0]), log=log)
    for i, lines in enumerate(zip(*sides)):
        try:
            texts = [line.decode("utf-8").strip() for line in lines]
        except UnicodeDecodeError:
            dropped["not UTF-8"] += 1
            continue
        finally:
            progress.update(1)
        if not keep_empty and any(not t for t in texts):
            dropped["empty"] += 1
            continue
        for side, text in zip(out, texts):
            side.append(text)
    progress.close(kept=len(out[0]), detail=", ".join(f"{n} {why} dropped" for why, n in dropped.items() if n))
    return out, dropped


def split_off(sides: List[List[str]], sizes: Dict[str, int], seed: int) -> Dict[str, List[List[str]]]:
    """``{"train", "valid", "test"}``: the splits named in ``sizes`` drawn without replacement
    from a permutation fixed by ``seed``; train keeps the rest in its order."""
    n = len(sides[0])
    order = list(range(n))
    random.Random(seed).shuffle(order)
    out, start = {}, 0
    for split, size in sizes.items():
        picked = sorted(order[start:start + size])
        out[split] = [[side[i] for i in picked] for side in sides]
        start += size
    taken = set(order[:start])
    out["train"] = [[line for i, line in enumerate(side) if i not in taken] for side in sides]
    return out


def clean(src: List[str], tgt: List[str], max_len: int, ratio: float) -> List[int]:
    """Indices of the pairs clean-corpus-n keeps: 1..max_len pieces a side, ratio <= ``ratio``."""
    return [i for i, (s, t) in enumerate(zip(src, tgt)) if pair_kept(len(s.split()), len(t.split()), 1, max_len, ratio)]


# ----- SentencePiece -----------------------------------------------------------------------------

def train_spm(texts: List[List[str]], prefix: Path, vocab_size: int, model_type: str, seed: int, log) -> Path:
    import sentencepiece as spm

    start = time.time()
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt", delete=False) as f:
        for side in texts:
            for line in side:
                f.write(line + "\n")
    sentences = sum(len(side) for side in texts)
    spm.set_random_generator_seed(seed)  # its sampling of a large corpus, reproducible
    try:
        spm.SentencePieceTrainer.train(
            input=f.name, model_prefix=str(prefix), vocab_size=vocab_size, model_type=model_type,
            character_coverage=1.0, hard_vocab_limit=False,  # a small corpus gets the vocabulary it has
            input_sentence_size=2_000_000, shuffle_input_sentence=True, num_threads=os.cpu_count() or 1,
            minloglevel=2,
        )
    finally:
        os.unlink(f.name)
    model = Path(f"{prefix}.model")
    pieces = spm.SentencePieceProcessor(model_file=str(model)).get_piece_size()
    log(f"[sentencepiece] {model_type} model {model.name} trained on {sentences:,} sentences: {pieces:,} pieces "
        f"(asked {vocab_size:,}; a small corpus has fewer) ({time.time() - start:.0f} s)")
    return model


_model = None


def _load(model_path):
    global _model
    import sentencepiece as spm

    _model = spm.SentencePieceProcessor(model_file=model_path)


def _encode(lines: List[str]) -> List[str]:
    return [" ".join(_model.encode(line, out_type=str)) for line in lines]


def encode(model: Path, lines: List[str], workers: int, what: str, log) -> List[str]:
    """Every line as its pieces, ``workers`` processes, in order."""
    chunk = max(1, min(10_000, len(lines) // max(1, workers * 4) + 1))
    chunks = [lines[i:i + chunk] for i in range(0, len(lines), chunk)]
    progress = Progress(f"encode {what}", total=len(lines), log=log)
    out: List[str] = []
    if workers > 1 and len(chunks) > 1:
        with Pool(workers, initializer=_load, initargs=(str(model),)) as pool:
            for piece in pool.imap(_encode, chunks):
                out += piece
                progress.update(len(piece))
    else:
        _load(str(model))
        for c in chunks:
            out += _encode(c)
            progress.update(len(c))
    progress.close(kept=len(out))
    return out


def write(path: Path, lines: List[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.writelines(line + "\n" for line in lines)


# ----- the pipeline ----------------------------------------------------------------------------------

class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The module's description as written, and each option's default where its help does not give it."""

    def _split_lines(self, text, width):  # paths stay whole (no break after the hyphen of data-bin)
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action):
        shown = action.default not in (None, False, argparse.SUPPRESS) and "default" not in (action.help or "")
        return f"{action.help} (default: %(default)s)" if shown else action.help


def parse(argv=None):
    p = argparse.ArgumentParser(
        prog="data-prep/custom.sh", formatter_class=_HelpFormatter, description=__doc__.split("\n\n")[0],
        epilog="defaults: vocabulary 8k below 200k training lines (sentence pairs, or lines of text with --lm), "
               "16k below 2M, else 32k (each model's, with --separate); valid and test min(1000, 2%) of the "
               "training lines each when not given\n\nexample:\n  bash data-prep/custom.sh --train corpus/train "
               "--src de --tgt en   # corpus/train.de, corpus/train.en -> data-bin/custom")
    p.add_argument("--train", type=Path, required=True, help="PREFIX (translation: PREFIX.SRC, PREFIX.TGT) or FILE (--lm)")
    p.add_argument("--valid", type=Path, help="PREFIX or FILE (default: split off the training text)")
    p.add_argument("--test", type=Path, help="PREFIX or FILE (default: split off the training text)")
    p.add_argument("--src", help="source language suffix (translation; required without --lm)")
    p.add_argument("--tgt", help="target language suffix (translation; required without --lm)")
    p.add_argument("--lm", action="store_true", help="plain text for a language model")
    p.add_argument("--out-dir", type=Path, help="where the binaries go (default: data-bin/custom, "
                                                "data-bin/custom_lm with --lm)")
    p.add_argument("--vocab-size", type=int, help="SentencePiece vocabulary (default: by corpus size, see below)")
    p.add_argument("--model-type", choices=["unigram", "bpe"], default="unigram", help="SentencePiece's algorithm")
    p.add_argument("--separate", action="store_true", help="one SentencePiece model and dictionary per language "
                                                           "(default: joint); the recipes then share no table "
                                                           "between encoder and decoder")
    p.add_argument("--max-len", type=int, default=250, help="SentencePiece pieces per side kept in training pairs "
                                                            "(clean-corpus-n)")
    p.add_argument("--ratio", type=float, default=1.5, help="longest / shortest side of a training pair at most, "
                                                            "in pieces")
    p.add_argument("--valid-size", type=int, help="pairs (lines) split off for validation (default: see below)")
    p.add_argument("--test-size", type=int, help="pairs (lines) split off for testing (default: see below)")
    p.add_argument("--seed", type=int, default=1, help="the draw of the split-off sets and SentencePiece's")
    p.add_argument("--workers", type=int, default=4, help="processes for encoding and fairseq-preprocess")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out-dir")
    args = p.parse_args(argv)
    if not args.lm and not (args.src and args.tgt):
        p.error("translation needs --src and --tgt (or --lm for a language model)")
    if args.out_dir is None:
        args.out_dir = REPO / "data-bin" / ("custom_lm" if args.lm else "custom")
    return args


def files_of(args) -> Dict[str, Path]:
    sides = [None] if args.lm else [args.src, args.tgt]
    out = {}
    for split in ("train", "valid", "test"):
        prefix = getattr(args, split)
        for lang in sides:
            if prefix is not None:
                out[f"{split}.{lang}" if lang else split] = Path(f"{prefix}.{lang}") if lang else prefix
    return out


def run(args, log=print) -> Path:
    start = time.time()
    langs = [None] if args.lm else [args.src, args.tgt]
    files = files_of(args)
    counts = check_inputs(files)
    for split in ("train", "valid", "test"):
        split_counts = {k: v for k, v in counts.items() if k.split(".")[0] == split}
        if len(set(split_counts.values())) > 1:
            raise InputError(f"the {split} files have different line counts ("
                             + ", ".join(f"{files[k]}: {v:,}" for k, v in split_counts.items())
                             + "): a parallel corpus has one line per sentence pair on each side")
    out = args.out_dir.resolve()
    if out.exists() and not args.overwrite:
        raise InputError(f"{out} exists: choose another --out-dir or pass --overwrite")
    work = Path(f"{out}.work")

    def side_files(split):
        return [files[f"{split}.{l}" if l else split] for l in langs]

    # 1-2. read, drop undecodable / empty lines, split
    data = {}
    data["train"], _ = decode([read_side(f) for f in side_files("train")], keep_empty=False, what="train", log=log)
    n = len(data["train"][0])
    if n == 0:
        raise InputError(f"no usable line in {side_files('train')[0]}: every one was empty or not UTF-8")
    default_size = min(1000, max(1, n // 50))
    to_split = {}
    for split in ("valid", "test"):
        if getattr(args, split) is not None:
            data[split], _ = decode([read_side(f) for f in side_files(split)], keep_empty=split == "test", what=split,
                                    log=log)
        else:
            to_split[split] = getattr(args, f"{split}_size") or default_size
    if to_split:
        if sum(to_split.values()) >= n:
            raise InputError(f"{n:,} training lines cannot give up {sum(to_split.values()):,} for "
                             f"{' and '.join(to_split)}: give smaller --valid-size/--test-size or the sets")
        data.update(split_off(data["train"], to_split, args.seed))
        log(f"[split] {', '.join(f'{s} {k:,}' for s, k in to_split.items())} lines drawn off the training text "
            f"(seed {args.seed}); train keeps {len(data['train'][0]):,}")
    for split, sides in data.items():
        for lang, lines in zip(langs, sides):
            write(work / "text" / (f"{split}.{lang}" if lang else f"{split}.txt"), lines)
    if not args.lm:
        write(work / "text" / f"test.ref.{args.tgt}", data["test"][1])  # the references, as given

    # 3. SentencePiece
    vocab = args.vocab_size or default_vocab_size(len(data["train"][0]))
    (work / "spm").mkdir(parents=True, exist_ok=True)
    if args.separate and not args.lm:
        models = {l: train_spm([side], work / "spm" / f"spm.{l}", vocab, args.model_type, args.seed, log)
                  for l, side in zip(langs, data["train"])}
    else:
        model = train_spm(data["train"], work / "spm" / "spm", vocab, args.model_type, args.seed, log)
        models = {l: model for l in langs}

    # 4-5. encode, clean
    encoded = {split: [encode(models[l], lines, args.workers, f"{split}.{l}" if l else split, log)
                       for l, lines in zip(langs, sides)] for split, sides in data.items()}
    if not args.lm:
        for split in ["train"] + [s for s in to_split if s == "valid"]:
            src, tgt = encoded[split]
            keep = clean(src, tgt, args.max_len, args.ratio)
            log(f"[clean {split}] {len(src):,} pairs in, {len(keep):,} kept (1-{args.max_len} pieces, ratio "
                f"<= {args.ratio}), {len(src) - len(keep):,} dropped")
            encoded[split] = [[side[i] for i in keep] for side in encoded[split]]
    prefixes = {}
    for split, sides in encoded.items():
        for l, lines in zip(langs, sides):
            write(work / "spm" / (f"{split}.{l}" if l else f"{split}.txt"), lines)
        prefixes[split] = str(work / "spm" / (split if not args.lm else f"{split}.txt"))

    # 6. binarise, atomically; the SentencePiece model(s) beside the binaries
    tmp = Path(f"{out}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    command = [shutil.which("fairseq-preprocess") or "fairseq-preprocess", "--destdir", str(tmp),
               "--workers", str(args.workers), "--trainpref", prefixes["train"], "--validpref", prefixes["valid"],
               "--testpref", prefixes["test"]]
    command += ["--only-source"] if args.lm else ["--source-lang", args.src, "--target-lang", args.tgt] + \
        ([] if args.separate else ["--joined-dictionary"])
    progress = Progress("binarize (fairseq-preprocess)", total=None, log=log)
    proc = subprocess.run(command, capture_output=True, text=True)
    (work / "preprocess.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
        raise InputError(f"fairseq-preprocess failed (log: {work / 'preprocess.log'}): "
                         + (proc.stderr.strip().splitlines() or ["?"])[-1])
    progress.close(detail=f"log {work / 'preprocess.log'}")
    for line in proc.stdout.splitlines() + proc.stderr.splitlines():
        if " sents, " in line:  # per split: sentences, tokens, unknown words
            log("    " + line.split("preprocess", 1)[-1].lstrip(":| "))
    for l, model in models.items():
        shutil.copy(model, tmp / ("spm.model" if not args.separate or args.lm else f"spm.{l}.model"))
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)

    # 7. summary and what to run next
    units = len(encoded["train"][0]) if not args.lm else sum(len(line.split()) + 1 for line in encoded["train"][0])
    log(f"[custom] binaries, dictionaries and SentencePiece model(s) in {out} ({time.time() - start:.0f} s)")
    row, commands = next_commands(out, units, args.lm, args.separate and not args.lm, args.src)
    log(f"[custom] for {row}; train, evaluate{'' if args.lm else ', translate'}:")
    for command in commands:
        print(command, flush=True)
    return out


def main(argv=None) -> int:
    args = parse(argv)
    try:
        run(args, log=lambda line: print(line, file=sys.stderr, flush=True))
    except InputError as e:
        print(f"[custom] error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
