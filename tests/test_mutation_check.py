"""scripts/mutation_check.py cannot rot: every mutant it ships still finds its snippet exactly
once and names tests that exist, the core modules each have mutants, and the machinery tells a
killed mutant from a surviving one."""
import importlib.util
import re
import subprocess
import sys

from conftest import REPO

SCRIPT = REPO / "scripts" / "mutation_check.py"
CORE = ["delight_fairseq/modules/group_linear.py", "delight_fairseq/modules/dextra.py",
        "delight_fairseq/modules/single_head_attention.py", "delight_fairseq/modules/light_ffn.py",
        "delight_fairseq/modules/block_scaling.py", "delight_fairseq/modules/define_embedding.py",
        "delight_fairseq/models/adaptive_input.py", "delight_fairseq/training/nt_asgd.py",
        "delight_fairseq/training/awd_criterion.py", "delight_fairseq/training/bptt_lm.py",
        "delight_fairseq/checkpoints/convert.py", "delight_fairseq/training/lr_scheduler.py", "delight_fairseq/checkpoints/safe_load.py",
        "data-prep/custom.py"]


def _script():
    spec = importlib.util.spec_from_file_location("mutation_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_mutant_still_applies_and_names_existing_tests():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--list"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    listed = [line.split("\t") for line in proc.stdout.splitlines()]
    mutants = _script().MUTANTS
    assert [row[0] for row in listed] == [m.name for m in mutants] and len({m.name for m in mutants}) == len(mutants)
    assert 20 <= len(mutants) <= 40
    for m in mutants:
        text = (REPO / m.path).read_text()
        assert text.count(m.old) == 1, f"{m.name}: its snippet occurs {text.count(m.old)} times in {m.path}"
        assert m.new != m.old and text.replace(m.old, m.new) != text
        assert m.tests, m.name
        for node in m.tests:
            path, _, name = node.partition("::")
            assert (REPO / path).is_file() and re.search(rf"^def {re.escape(name.split('[')[0])}\(",
                                                          (REPO / path).read_text(), re.M), f"{m.name}: no {node}"
    assert set(CORE) <= {m.path for m in mutants}  # every core module has its mutants


def test_a_mutant_is_killed_and_an_equivalent_one_survives(capsys):
    """One real mutant and one that only edits a comment, end to end (copy, import check,
    baseline, each mutant's tests): killed, survived, exit 1."""
    script = _script()
    real = next(m for m in script.MUTANTS if m.name == "glt-shuffle-is-identity")
    comment = script.Mutant("comment-only", real.path, "# * x G x K -> * x K x G -> * x (K*G)",
                            "# (a comment edited)", real.tests, "no behaviour changes")
    script.MUTANTS = [real, comment]
    before = (REPO / real.path).read_text()
    assert script.main([]) == 1
    assert (REPO / real.path).read_text() == before  # mutants go into the copy only
    out = capsys.readouterr().out
    assert "the 1 mapped tests on the unmutated copy: passed" in out
    assert re.search(r"^glt-shuffle-is-identity\s+killed .*test_feature_shuffle_is_the_channel_interleave", out, re.M)
    assert re.search(r"^comment-only\s+SURVIVED ", out, re.M)
    assert "2 mutants: 1 killed, 1 survived, 0 could not run" in out
