"""Every entry point answers ``--help``: exit 0, a ``usage:`` line, an example command, and
each option with its default where it has one. The entry points are found on disk:
scripts/*.sh, scripts/*.py and benchmarks/*.py with a ``__main__`` block, benchmarks/*.sh and
data-prep/*.sh but common.sh (sourced, not run)."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO

PY_ENTRY = sorted(p.relative_to(REPO).as_posix() for d in ("scripts", "benchmarks") for p in (REPO / d).glob("*.py")
                  if "__main__" in p.read_text())
SH_ENTRY = sorted([*(p.relative_to(REPO).as_posix() for d in ("scripts", "benchmarks", "data-prep")
                     for p in (REPO / d).glob("*.sh") if p.name != "common.sh")])
# its examples are the docstring's indented command lines, not a line saying "example"
UNLABELLED_EXAMPLE = {"scripts/mutation_check.py"}

# Runs the script as ``python SCRIPT --help`` does (runpy, as __main__), and records every parser
# that prints its help: each action's flags, default and help, and the help of its sub-commands.
RECORDER = r"""
import argparse, json, os, runpy, sys

_print_help = argparse.ArgumentParser.print_help

def describe(parser):
    actions, sub = [], {}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            sub = {name: describe(p) for name, p in a.choices.items()}
        elif a.help is not argparse.SUPPRESS and not isinstance(a, argparse._HelpAction):
            d = a.default
            shown = not (d is None or d is False or d is argparse.SUPPRESS or d == [])
            actions.append({"flags": a.option_strings, "name": a.metavar or a.dest, "help": a.help or "",
                            "default": str(d) if shown else None})
    return {"help": parser.format_help(), "actions": actions, "sub": sub}

def print_help(self, file=None):
    with open(os.environ["HELP_RECORD"], "w") as f:
        json.dump(describe(self), f)
    _print_help(self, file)

argparse.ArgumentParser.print_help = print_help
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
runpy.run_path(script, run_name="__main__")
"""


def run_help(cmd, **env) -> str:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=dict(os.environ, **env))
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def check_usage_and_example(text: str, labelled: bool = True) -> None:
    lines = text.splitlines()
    assert any(line.startswith("usage:") for line in lines), f"no line starting with 'usage:':\n{text}"
    command = re.compile(r"(\w+=\S+ )*(python|bash) (scripts|benchmarks|data-prep)/\S+")
    if not labelled:
        assert any(command.match(line.strip()) for line in lines if not line.startswith("usage:")), text
        return
    for i, line in enumerate(lines):
        if re.match(r"\s*example", line, re.I):
            after = [line.split(":", 1)[1] if ":" in line else "", *lines[i + 1:i + 3]]
            if any(command.match(a.strip()) for a in after):
                return
    raise AssertionError(f"no 'example' line followed by a command:\n{text}")


def entries(text: str):
    """The help's list entries (a line indented by one to four spaces, with the lines indented
    deeper that continue it), whitespace collapsed; a word broken at a hyphen across lines is
    joined again."""
    out = [""]
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        if not line.strip() or indent == 0:
            out.append("")
        elif indent > 4 and out[-1]:  # the help column: the entry goes on
            out[-1] += ("" if out[-1].endswith("-") else " ") + line.strip()
        else:
            out.append(line.strip())
    return [" ".join(e.split()) for e in out if e]


def entry_of(text: str, flags, name) -> str:
    keys = set(flags) if flags else {name}
    for e in entries(text):
        first = re.split(r"[ ,]", e, maxsplit=1)[0]
        if first in keys:
            return e
    raise AssertionError(f"{flags or name} has no entry in the help:\n{text}")


def check_defaults(record: dict, where: str) -> None:
    for a in record["actions"]:
        entry = entry_of(record["help"], a["flags"], a["name"])
        if a["default"] is not None:
            # shown as its value, or (where the help says so in words) the help's own account of it
            assert a["default"] in entry or "default" in a["help"], \
                f"{where}: {a['flags'] or a['name']} does not show its default {a['default']!r}: {entry!r}"
    for name, sub in record["sub"].items():
        check_usage_and_example(sub["help"])
        check_defaults(sub, f"{where} {name}")


@pytest.mark.parametrize("script", PY_ENTRY)
def test_python_entry_point_answers_help(script, tmp_path):
    record = tmp_path / "help.json"
    text = run_help([sys.executable, "-c", RECORDER, script, "--help"], HELP_RECORD=str(record))
    check_usage_and_example(text, labelled=script not in UNLABELLED_EXAMPLE)
    assert "(default: None)" not in text, text
    described = json.loads(record.read_text())
    assert described["help"].strip() in text
    check_defaults(described, script)


@pytest.mark.parametrize("script", SH_ENTRY)
def test_shell_entry_point_answers_help(script):
    for flag in ("--help", "-h"):
        text = run_help(["bash", script, flag])
        check_usage_and_example(text)
    usage = text.split("\n\n", 1)[0]
    assert usage.startswith("usage:"), text
    # every optional [--option VALUE] (and optional [ARGUMENT]) of the usage: listed with its default, or
    # saying when it is required (data-prep/custom.sh's --src: translation only); flags ([--option]) need none
    for option, value in re.findall(r"\[(--[\w-]+)(?:[ =]([^\]\s]+))?\]", usage):
        entry = entry_of(text, [option], None)
        assert not value or "default" in entry or "required" in entry, f"{script}: {option} has no default in {entry!r}"
    for argument in re.findall(r"\[([A-Z_]+)\]", usage):
        assert "default" in entry_of(text, None, argument), f"{script}: {argument} has no default"


def test_train_sh_lists_every_dataset_of_configs():
    text = run_help(["bash", "scripts/train.sh", "--help"])
    listed = {line.split()[0] for line in text.splitlines() if re.match(r"  \w", line)}
    datasets = {p.stem for p in (REPO / "configs").glob("*.yaml")}
    assert datasets and datasets <= listed, f"not listed: {sorted(datasets - listed)}"


def test_train_sh_cfg_job_composes_a_sweep():
    text = run_help(["bash", "scripts/train.sh", "wikitext103_lstm", "model=lstm_wiki103_r4", "+sweep=define_mixer",
                     "--cfg", "job"])
    assert re.search(r"^model:", text, re.M), text[-3000:]
