"""Your own data as a user meets it (README, "Your own corpus"): the README's blocks run as
written on a generated corpus, each row of "Which model for my data" composes to exactly the
values its table states, and a broken row is caught."""
import os
import re
import runpy
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from test_custom_corpus import SOURCE, write_corpus, write_text

SECTION = REPO / "README.md"
CUSTOM = runpy.run_path(str(REPO / "data-prep" / "custom.py"), run_name="custom")
BUDGET = {"custom": ["optimization.max_update=6", "lr_scheduler.warmup_updates=2"],  # the only change made to a block
          "custom_lm": ["optimization.max_epoch=1"]}


def readme_section() -> str:
    text = SECTION.read_text()
    start = text.index("## Your own corpus\n")
    return text[start:text.index("\n## ", start + 1)]


def readme_blocks():
    """The section's bash blocks, each as its list of commands (comments stripped)."""
    return [[line.split("  #")[0].strip() for line in block.strip().splitlines()]
            for block in re.findall(r"```bash\n(.*?)```", readme_section(), re.S)]


def readme_table(first_header: str):
    """The rows of the section's table whose first header is ``first_header``, as dicts."""
    lines = readme_section().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip().strip("`") for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip().strip("`") for c in line.strip().strip("|").split("|")))))
    return rows


def user_repo(root):
    """A checkout for the blocks to run in, as a user's: scripts and data-prep copied (they find the
    repository from where they lie), the rest linked; data-bin/ and checkpoints/ its own."""
    root.mkdir(parents=True)
    for name in ("scripts", "data-prep"):
        shutil.copytree(REPO / name, root / name)
    for name in ("configs", "delight_fairseq", ".venv"):
        if (REPO / name).exists():
            (root / name).symlink_to(REPO / name)
    return root


def sh(command: str, cwd, stdin=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, input=stdin, env=env)


def test_the_readme_blocks_run_as_written(tmp_path):
    """Every line of the section's blocks, in order, in a checkout of its own: custom.sh prints
    exactly the README's next lines (joint, --separate, LM); they train (budget shortened),
    evaluate (sacreBLEU with its signature; perplexity) and translate raw text."""
    repo = user_repo(tmp_path / "repo")
    write_corpus(repo / "corpus" / "train", "de", "en", pairs=1200)
    write_text(repo / "corpus" / "text.txt", lines=800)
    commands = [c for block in readme_blocks() for c in block]
    assert sum("custom.sh" in c for c in commands) == 3 and sum("--separate" in c for c in commands) == 1
    printed = []
    for command in commands:
        if printed:  # the lines custom.sh printed, one per README line after it
            assert command == printed.pop(0)
        if "data-prep/custom.sh" in command:
            assert not printed, f"the README skips {printed}"
            proc = sh(command + " --workers 1", repo)
            assert proc.returncode == 0, proc.stderr[-3000:]
            printed = proc.stdout.splitlines()
            continue
        dataset = re.search(r"scripts/\w+\.sh (\w+)", command)
        if "scripts/train.sh" in command:
            proc = sh(" ".join([command, *BUDGET[dataset.group(1)]]), repo)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
            assert re.search(r"done training in", proc.stdout + proc.stderr)
        elif "scripts/evaluate.sh" in command:
            proc = sh(command, repo)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
            if dataset.group(1) == "custom":
                assert re.search(r"BLEU \(detokenised, sacrebleu\) [\d.]+ +\[nrefs:1\|case:mixed\|.*tok:13a", proc.stdout)
            else:
                assert re.search(r"Perplexity: [\d.]+", proc.stdout)
        else:
            assert "fairseq-interactive" in command
            proc = sh(command, repo, stdin=" ".join(SOURCE[:4]) + "\n")
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert "<unk>" not in re.search(r"^S-0\t(.*)$", proc.stdout, re.M).group(1)  # raw text in, encoded
            assert "\u2581" not in re.search(r"^D-0\t[-\d.]+\t(.*)$", proc.stdout, re.M).group(1)  # raw text out
    assert not printed
    assert {p.name for p in (repo / "data-bin").iterdir()} >= {"custom", "custom_separate", "custom_lm"}
    assert {p.name for p in (repo / "data-bin" / "custom_separate").glob("spm*.model")} == {"spm.de.model",
                                                                                             "spm.en.model"}


# ----- every row of "Which model for my data" trains what the table says ----------------------------------

def numbers(cell: str):
    return [float(x.replace(",", "")) for x in re.findall(r"[\d,]*\.?\d+", cell)]


def size(cell: str) -> float:
    value, unit = re.fullmatch(r"([\d.,]+)(k|M)?", cell.strip()).groups()
    return float(value.replace(",", "")) * {"k": 1e3, "M": 1e6, None: 1}[unit]


def composed(command: str, cwd) -> dict:
    proc = sh(command + " --cfg job", cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return yaml.safe_load(proc.stdout)


MT_DROPOUTS = ["dropout", "ffn_dropout", "attention_dropout", "dextra_dropout", "activation_dropout", "embed_dropout",
               "pos_dropout"]
LM_DROPOUTS = ["dropout", "dropout_input", "dropout_hidden", "weight_drop", "embed_word_dropout", "define_dropout"]


def row_mismatches(repo, row: dict, lm: bool):
    """What the row's printed command trains, against the README's words for it: one line per
    value that differs."""
    cell = row["training tokens (language model)" if lm else "training pairs"]
    bound = int(size(cell.split()[-1]))
    units = bound - 1 if ("<" in cell or "–" in cell) else bound + (">" in cell)  # inside the row
    title, commands = CUSTOM["next_commands"](repo / "data-bin" / "custom", units, lm, False, "de")
    assert f"recipe {row['recipe=']} " in title
    cfg = composed(commands[0], repo)
    bad = []

    def want(what, got, expected):
        if got != expected:
            bad.append(f"{row['recipe=']}: {what} {got!r}, README {expected!r}")

    model_path = repo / "configs" / "model" / f"{cfg_model_name(repo, row['recipe='])}.yaml"
    model_file, header = yaml.safe_load(model_path.read_text()), model_path.read_text().splitlines()[1]
    want("--arch", header.split()[1].rstrip(":"), row["--arch"])
    for key, value in model_file["model"].items():  # the preset's sizes, untouched by the recipe
        if "drop" not in key:
            want(f"model.{key}", cfg["model"][key], value)
    names = LM_DROPOUTS if lm else MT_DROPOUTS
    column = next(k for k in row if k.startswith("dropout"))
    want("dropouts", [cfg["model"][k] for k in names], numbers(row[column]))
    lr, schedule = row["lr, schedule"].split(", ", 1)
    want("lr", cfg["optimization"]["lr"], [float(lr)])
    if lm:
        want("schedule", [cfg["optimizer"]["_name"], cfg["lr_scheduler"]["_name"]], ["nt_asgd", "nt_asgd"])
        want("batch", [cfg["dataset"]["batch_size"], cfg["task"]["tokens_per_sample"]], numbers(row["batch"]))
        want("epochs", cfg["optimization"]["max_epoch"], int(row["epochs"]))
        want("criterion", [cfg["criterion"][k] for k in ("_name", "ar_alpha", "tar_beta")], ["awd_cross_entropy", 2, 1])
    else:
        kind, warmup = re.fullmatch(r"(\w+), (\d+)k warmup", schedule).groups()
        want("schedule", [cfg["lr_scheduler"]["_name"], cfg["lr_scheduler"]["warmup_updates"]], [kind, int(warmup) * 1000])
        tokens = cfg["dataset"]["max_tokens"] * cfg["optimization"]["update_freq"][0] * \
            cfg["distributed_training"]["distributed_world_size"]
        want("tokens per update", tokens, int(row["tokens per update"].replace(",", "")))
        want("updates", cfg["optimization"]["max_update"], int(size(row["updates"])))
        want("criterion", [cfg["criterion"]["_name"], cfg["criterion"]["label_smoothing"]],
             ["label_smoothed_cross_entropy", 0.1])
        want("optimizer", [cfg["optimizer"]["_name"], cfg["optimizer"]["adam_betas"]], ["adam", [0.9, 0.98]])
    return bad


def cfg_model_name(repo, recipe: str) -> str:
    defaults = yaml.safe_load((repo / "configs" / "recipe" / f"{recipe}.yaml").read_text())["defaults"]
    return next(d["override /model"] for d in defaults if "override /model" in d)


TABLES = {"training pairs": False, "training tokens (language model)": True}
ROWS = [(first, i) for first in TABLES for i in range(len(readme_table(first)))]


@pytest.mark.parametrize("first, index", ROWS, ids=[f"{'lm' if TABLES[f] else 'mt'}{i}" for f, i in ROWS])
def test_each_row_trains_what_its_readme_row_says(first, index):
    assert row_mismatches(REPO, readme_table(first)[index], TABLES[first]) == []


def test_the_rows_cover_every_size_and_every_recipe_pins_every_dropout():
    """The README's ranges are custom.py's: one recipe for each size, changing exactly at the
    stated bounds; each recipe sets every dropout its model has, so no model file decides one."""
    import dataclasses

    from delight_fairseq.models.define_lstm_lm import DefineLSTMLMConfig
    from delight_fairseq.models.delight_config import DeLighTTransformerConfig

    for first, lm in TABLES.items():
        rows = readme_table(first)
        limits = CUSTOM["LM_RECIPES" if lm else "TRANSLATION_RECIPES"]
        assert [r["recipe="] for r in rows] == [name for _, name in limits]
        for (limit, name), row in zip(limits, rows):
            if limit is not None:
                assert CUSTOM["recipe_for"](limit - 1, lm) == name and CUSTOM["recipe_for"](limit, lm) != name
                assert size(row[first].split()[-1]) == limit
            config = DefineLSTMLMConfig if lm else DeLighTTransformerConfig
            dropouts = {f.name for f in dataclasses.fields(config) if "drop" in f.name}
            recipe = yaml.safe_load((REPO / "configs" / "recipe" / f"{name}.yaml").read_text())
            assert dropouts <= set(recipe["model"]), (name, dropouts - set(recipe["model"]))


def test_a_row_that_leaves_a_value_to_its_model_file_is_caught(tmp_path):
    """The check above, on a checkout whose recipe=tiny no longer sets the lr and the dropout:
    the model file's WMT values (lr 0.01, dropout 0.04) are trained, and the check names them."""
    repo = user_repo(tmp_path / "repo")
    (repo / "configs").unlink()
    shutil.copytree(REPO / "configs", repo / "configs")
    recipe = repo / "configs" / "recipe" / "tiny.yaml"
    text = recipe.read_text()
    recipe.write_text(text.replace("  lr: [0.001]\n", "").replace("  dropout: 0.3\n", ""))
    bad = row_mismatches(repo, readme_table("training pairs")[0], False)
    assert bad == ["tiny: dropouts [0.04, 0.3, 0.1, 0.1, 0.0, 0.1, 0.1], README [0.3, 0.3, 0.1, 0.1, 0.0, 0.1, 0.1]",
                   "tiny: lr [0.01], README [0.001]"]


def test_separate_vocabularies_get_models_that_tie_no_tables():
    """With --separate, every row's printed command unties what its model would tie across the
    two dictionaries, and names the source side's SentencePiece model."""
    for limit, name in CUSTOM["TRANSLATION_RECIPES"]:
        units = (limit or 10_000_000) - 1
        _, commands = CUSTOM["next_commands"](REPO / "data-bin" / "sep", units, False, True, "de")
        cfg = composed(commands[0], REPO)
        assert cfg["model"]["share_all_embeddings"] is False, name
        assert "--sentencepiece-model data-bin/sep/spm.de.model" in commands[2]


def test_train_sh_refuses_a_recipe_of_the_other_kind():
    proc = sh("bash scripts/train.sh custom_lm recipe=tiny", REPO)
    assert proc.returncode == 1 and proc.stderr.strip() == \
        "train.sh: recipe=tiny is not one of custom_lm's: lm_large lm_small"


def test_the_larger_lm_row_trains_through_train_sh(lm_data, tmp_path):
    """recipe=lm_large (the README block trains lm_small) as its printed command runs it, the
    model shrunk for the CPU and the budget cut to 2 updates: the AWD criterion with the R1
    model's outputs, NT-ASGD and the bptt_lm task work together."""
    import torch

    shrink = ["++model.decoder_input_dim=16", "++model.decoder_embed_dim=16", "++model.decoder_hidden_size=32",
              "++model.decoder_output_dim=16", "++model.decoder_layers=2"]
    env = f"DATA_DIR={lm_data / 'bin'} SAVE_DIR={tmp_path / 'ckpt'}"
    proc = sh(f"{env} bash scripts/train.sh custom_lm recipe=lm_large {' '.join(shrink)} optimization.max_update=2 "
              "common.cpu=true", REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=True)
    assert state["optimizer_history"][-1]["num_updates"] == 2
    cfg = state["cfg"]
    assert (cfg["criterion"]["_name"], cfg["optimizer"]["_name"], cfg["task"]["_name"], cfg["model"]["decoder_layers"]) \
        == ("awd_cross_entropy", "nt_asgd", "bptt_lm", 2)
    assert re.search(r"\| ar [\d.]+ \| tar [\d.]+", proc.stdout + proc.stderr)  # AR/TAR computed on R1's outputs
