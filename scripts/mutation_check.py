#!/usr/bin/env python
"""Mutation check: do the tests notice a realistic bug in the core modules?

Each mutant (``--list``) is a one-line bug written by hand into one core module (GLT, DExTra,
attention, the light FFN, block-wise scaling, DeFINE, adaptive input, NT-ASGD, AR/TAR, the
converter, the lr schedule, safe loading, the BPTT task, data-prep's cleaning and split),
with the tests that should catch it. The script copies the repository to a temporary
directory, checks that the copy imports its own ``delight_fairseq`` (not the installed one)
and that the mapped tests pass there unmutated, then applies one mutant at a time, runs its
tests (``pytest -x -q -n 0``, a time limit per mutant) and restores the file. It prints a
table -- killed (a mapped test failed) or survived (every mapped test passed) -- and exits
non-zero when a mutant survives or its tests cannot run.

    python scripts/mutation_check.py               # every mutant (about 5 minutes on 2 cores)
    python scripts/mutation_check.py --list        # the mutants, their files and tests
    python scripts/mutation_check.py --only nt-asgd-mean-from-first-step --only tar-on-dropped

A survivor means the mapped tests miss that bug: strengthen them (or, if the mutant is
equivalent to the original, replace it). tests/test_mutation_check.py checks that every
mutant's snippet still occurs exactly once in its file, so a refactoring that moves the code
breaks that test rather than silently retiring a mutant.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
# what is not copied: the environment, git, caches and anything a run writes
IGNORED = {".venv", ".git", "data-bin", "checkpoints", "runs", "outputs", "multirun", ".pytest_cache", "__pycache__",
           ".whl", ".hydra"}


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str  # relative to the repository
    old: str  # occurs exactly once in the file
    new: str
    tests: Tuple[str, ...]  # pytest node ids that must fail
    why: str


M = Mutant
MUTANTS: List[Mutant] = [
    # ----- group linear transform (DeLighT Eq. 1) -----
    M("glt-shuffle-is-identity", "delight_fairseq/modules/group_linear.py",
      "return x.reshape(*lead, groups, features // groups).transpose(-1, -2).reshape(*lead, features)",
      "return x.reshape(*lead, groups, features // groups).reshape(*lead, features)",
      ("tests/test_modules.py::test_feature_shuffle_is_the_channel_interleave",),
      "feature shuffle leaves the groups in place"),
    M("glt-fused-path-skips-shuffle", "delight_fairseq/modules/group_linear_fused.py",
      "return (yg.permute(1, 2, 0) if shuffle else yg.transpose(0, 1)).reshape(r, g * k)",
      "return yg.transpose(0, 1).reshape(r, g * k)",
      ("tests/test_modules.py::test_group_linear_with_mixed_input_equals_mixing_first",
       "tests/test_modules.py::test_group_linear_shuffle_then_group_norm_then_activation"),
      "the fused matmul forgets the shuffle"),
    M("glt-mixed-rows-swapped", "delight_fairseq/modules/group_linear_fused.py",
      "return [(1, mixed, weight[:, :b]), (0, x, weight[:, b:])]",
      "return [(1, mixed, weight[:, -b:]), (0, x, weight[:, :-b])]",
      ("tests/test_modules.py::test_group_linear_with_mixed_input_equals_mixing_first",),
      "the block input's rows taken after the layer input's (the input mixer's order reversed)"),
    M("glt-bias-grad-mean", "delight_fairseq/modules/group_linear_fused.py",
      "grad_b = grad.sum(1, keepdim=True) if needs[3] else None",
      "grad_b = grad.mean(1, keepdim=True) if needs[3] else None",
      ("tests/test_modules.py::test_dextra_fused_path_equals_the_step_by_step_one",),
      "the hand-written backward averages the bias gradient over rows"),
    # ----- DExTra (Sec. 3.1) and block-wise scaling (Sec. 3.3) -----
    M("dextra-groups-start-at-one", "delight_fairseq/modules/dextra.py",
      'first = 1 if schedule == "code" else 0', "first = 0",
      ("tests/test_modules.py::test_dextra_schedule_authors_code",),
      "the authors' code's groups start at 2, not the paper's 1"),
    M("dextra-mirror-parity-swapped", "delight_fairseq/modules/dextra.py",
      "tail = slice(None, None, -1) if depth % 2 == 0 else slice(-2, None, -1)",
      "tail = slice(None, None, -1) if depth % 2 == 1 else slice(-2, None, -1)",
      ("tests/test_modules.py::test_dextra_schedule_authors_code",),
      "the reduction half mirrors the expansion half wrongly for even/odd depths"),
    M("dextra-round-to-own-groups", "delight_fairseq/modules/dextra.py",
      "widths = [_round_up(raw[l], max(8, groups[l], groups[l + 1])) for l in range(depth - 1)]",
      "widths = [_round_up(raw[l], max(8, groups[l])) for l in range(depth - 1)]",
      ("tests/test_presets.py::test_preset_equals_the_authors_count_to_the_unit",),
      "a layer's width rounded to its own groups only, not the next layer's"),
    M("block-width-formula", "delight_fairseq/modules/block_scaling.py",
      "widths = np.linspace(width_mult, width_mult + max_depth / min_depth - 1.0, num_blocks)",
      "widths = np.linspace(width_mult, width_mult + max_depth / min_depth, num_blocks)",
      ("tests/test_modules.py::test_block_scaling_depths",),
      "Eq. 4's width grows by N_max / N_min instead of N_max / N_min - 1"),
    M("block-width-not-rounded", "delight_fairseq/modules/block_scaling.py",
      "return [(int(d), float(np.round(w, 3))) for d, w in zip(depths, widths)]",
      "return [(int(d), float(w)) for d, w in zip(depths, widths)]",
      ("tests/test_presets.py::test_block_width_multipliers_are_rounded_to_three_places",),
      "the width multiplier is not rounded to 3 places as the authors' code does"),
    # ----- single-head attention (Sec. 3.2) and the light FFN -----
    M("attention-q-k-swapped", "delight_fairseq/modules/single_head_attention.py",
      "q, k, v = (t.transpose(0, 1) for t in self.qkv_proj(query).chunk(3, dim=-1))",
      "k, q, v = (t.transpose(0, 1) for t in self.qkv_proj(query).chunk(3, dim=-1))",
      ("tests/test_attention.py::test_self_attention_with_padding_and_causal_masks",),
      "query and key projections read from each other's slice"),
    M("attention-causal-offset-lost", "delight_fairseq/modules/single_head_attention.py",
      "allowed = torch.ones(t, s, dtype=torch.bool, device=q.device).tril(s - t)",
      "allowed = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()",
      ("tests/test_over_time.py::test_cached_attention_in_chunks_equals_the_causal_full_pass",),
      "a chunk of queries after a cache is masked as if it started at position 0"),
    M("light-ffn-no-activation", "delight_fairseq/modules/light_ffn.py",
      "with recomputed(a, lambda: self.act(z)):  # swish / GELU keep their input: fc2 recomputes a from it\n"
      "            return self.fc2(a)",
      "with recomputed(a, lambda: self.act(z)):  # swish / GELU keep their input: fc2 recomputes a from it\n"
      "            return self.fc2(z)",
      ("tests/test_authors.py::test_translation_checkpoint_gives_the_forks_outputs",),
      "the FFN skips its swish"),
    # ----- DeFINE and adaptive input -----
    M("define-groups-halved-once-more", "delight_fairseq/modules/define_embedding.py",
      '"hgt": [max(max_groups // 2**l, 1) for l in range(depth)],',
      '"hgt": [max(max_groups // 2**(l + 1), 1) for l in range(depth)],',
      ("tests/test_define.py::test_hgt_groups_halve_and_widths_grow_linearly",),
      "HGT's first layer has half the groups it should"),
    M("define-residual-dropped", "delight_fairseq/modules/define_embedding.py",
      'h = out + h if self.connection == "residual" and l > 0 else out',
      "h = out",
      ("tests/test_define.py::test_residual_adds_the_previous_layer_output",),
      "the residual connection adds nothing"),
    M("adaptive-input-band-unscaled", "delight_fairseq/models/adaptive_input.py",
      "out[mask] = projection(lookup(tokens[mask] - lower) * self.band_scales[i])",
      "out[mask] = projection(lookup(tokens[mask] - lower))",
      ("tests/test_define_lm.py::test_the_authors_adaptive_input_scales_each_band_before_its_projection",),
      "the authors' sqrt(d_i) band scale is lost"),
    M("adaptive-input-keeps-first-projection", "delight_fairseq/models/adaptive_input.py",
      "if self.embeddings[0][0].embedding_dim == self.embedding_dim:",
      "if False:",
      ("tests/test_define_paper.py::test_the_papers_wikitext103_models_part_by_part",),
      "the DeFINE paper's first band keeps fairseq's n x n projection"),
    # ----- AWD-LSTM's training: NT-ASGD, AR/TAR, the BPTT task -----
    M("nt-asgd-mean-from-first-step", "delight_fairseq/training/nt_asgd.py",
      'mu = 1.0 / max(1, group["avg_steps"] - 1)',
      'mu = 1.0 / max(1, group["avg_steps"])',
      ("tests/test_awd_training.py::test_nt_asgd_is_sgd_then_torchs_asgd",),
      "the average includes the first iterate after the switch (torch's ASGD skips it)"),
    M("nt-asgd-compares-with-every-loss", "delight_fairseq/training/nt_asgd.py",
      "if len(self.losses) > nonmono and val_loss > min(self.losses[:-nonmono]):",
      "if len(self.losses) > nonmono and val_loss > min(self.losses):",
      ("tests/test_awd_training.py::test_the_switch_comes_when_awd_lstms_rule_says",
       "tests/test_over_time.py::test_the_switch_at_its_boundaries"),
      "the switch compares with the best of all validations, the last nonmono included"),
    M("nt-asgd-resume-forgets-losses", "delight_fairseq/training/nt_asgd.py",
      'self.losses = list(state_dict.get("losses", []))',
      "self.losses = []",
      ("tests/test_over_time.py::test_nt_asgd_over_epochs_is_awd_lstms",),
      "a resumed run forgets the validation history, so the switch comes late"),
    M("bptt-validates-the-iterate", "delight_fairseq/training/bptt_lm.py",
      "swap_in_average(self._optimizer)  # NT-ASGD: validate (and save) the averaged weights",
      "pass",
      ("tests/test_over_time.py::test_nt_asgd_over_epochs_is_awd_lstms",),
      "validation (and the best checkpoint) sees the SGD iterate, not the average"),
    M("tar-on-dropped", "delight_fairseq/training/awd_criterion.py",
      "tar = beta * (raw[1:] - raw[:-1]).pow(2).mean()",
      "tar = beta * (dropped[1:] - dropped[:-1]).pow(2).mean()",
      ("tests/test_awd_training.py::test_ar_and_tar_are_awd_lstms_penalties_in_training_only",),
      "TAR of the output after dropout instead of before"),
    M("ar-tar-in-evaluation", "delight_fairseq/training/awd_criterion.py",
      "if model.training and (self.ar_alpha or self.tar_beta):",
      "if self.ar_alpha or self.tar_beta:",
      ("tests/test_awd_training.py::test_ar_and_tar_are_awd_lstms_penalties_in_training_only",),
      "the penalties also count in validation"),
    M("bptt-training-starts-from-zeros", "delight_fairseq/models/define_lstm_lm.py",
      "        elif carry:\n", "        elif carry and not self.training:\n",
      ("tests/test_over_time.py::test_training_carries_the_state_between_batches_as_awd_lstm",),
      "every training batch starts from a zero state (evaluation still carries it)"),
    M("bptt-lr-not-scaled", "delight_fairseq/training/bptt_lm.py",
      "optimizer.set_lr(lr * sum(lengths) / len(lengths) / self.cfg.tokens_per_sample)",
      "optimizer.set_lr(lr)",
      ("tests/test_over_time.py::test_training_carries_the_state_between_batches_as_awd_lstm",),
      "variable BPTT without AWD-LSTM's lr * seq_len / bptt"),
    M("bptt-lengths-same-every-epoch", "delight_fairseq/training/bptt_lm.py",
      "rng = np.random.RandomState((seed * 1000003 + epoch) % 2**32)",
      "rng = np.random.RandomState(seed % 2**32)",
      ("tests/test_awd_training.py::test_variable_bptt_lengths_follow_awd_lstm_and_are_fixed_by_the_seed",),
      "every epoch reads the same segments"),
    M("bptt-first-batch-carries", "delight_fairseq/training/bptt_lm.py",
      '"carry": i > 0},', '"carry": True},',
      ("tests/test_awd_training.py::test_streams_are_awd_lstms_batchify",),
      "an epoch's first batch continues the previous epoch's state"),
    # ----- the converter and the lr schedule -----
    M("convert-embed-dropout-from-dropout", "delight_fairseq/checkpoints/convert.py",
      '"embed_dropout": args.delight_emb_dropout,', '"embed_dropout": args.dropout,',
      ("tests/test_authors.py::test_the_fork_options_map_onto_ours",),
      "the embedding dropout taken from the wrong option"),
    M("convert-dense-weights-not-transposed", "delight_fairseq/checkpoints/convert.py",
      "return fork.t().unsqueeze(0)", "return fork.reshape(ours.shape)",
      ("tests/test_authors.py::test_translation_checkpoint_gives_the_forks_outputs",),
      "the fork's out x in matrices reshaped instead of transposed"),
    M("linear-schedule-decay-one-short", "delight_fairseq/training/lr_scheduler.py",
      "np.linspace(peak, low, cfg.max_update - warmup + 1)", "np.linspace(peak, low, cfg.max_update - warmup)",
      ("tests/test_recipes.py::test_linear_schedule_is_the_authors",),
      "the decay reaches the floor one update early"),
    # ----- safe loading -----
    M("safe-load-admits-eval", "delight_fairseq/checkpoints/safe_load.py",
      "SAFE_GLOBALS = [argparse.Namespace]", "SAFE_GLOBALS = [argparse.Namespace, eval]",
      ("tests/test_untrusted_checkpoints.py::test_every_hostile_pickle_is_refused_before_anything_runs",
       "tests/test_untrusted_checkpoints.py::test_every_global_the_loaders_accept_is_stated_with_its_reason"),
      "the allow-list also admits builtins.eval"),
    M("safe-load-fairseq-prefix-loose", "delight_fairseq/checkpoints/safe_load.py",
      'return name == "fairseq" or name.startswith("fairseq.")', 'return name.startswith("fairseq")',
      ("tests/test_untrusted_checkpoints.py::test_every_hostile_pickle_is_refused_before_anything_runs",),
      "any module named fairseq-something (fairseq_meters, fairseq_cli) becomes a placeholder"),
    M("safe-load-fork-admits-numpy-load", "delight_fairseq/checkpoints/safe_load.py",
      'out += [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray")]',
      'out += [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray"), (np.load, "numpy.load")]',
      ("tests/test_untrusted_checkpoints.py::test_every_global_the_loaders_accept_is_stated_with_its_reason",
       "tests/test_untrusted_checkpoints.py::test_the_allowed_globals_load_and_their_near_misses_do_not"),
      "the fork loader also admits numpy.load (which unpickles with allow_pickle)"),
    # ----- data-prep -----
    M("clean-ratio-limit-exclusive", "data-prep/prep.py",
      "return lo <= ns <= hi and lo <= nt <= hi and max(ns, nt) <= ratio * min(ns, nt)",
      "return lo <= ns <= hi and lo <= nt <= hi and max(ns, nt) < ratio * min(ns, nt)",
      ("tests/test_data_prep.py::test_clean_drops_exactly_the_pairs_clean_corpus_n_drops",),
      "a pair at exactly the ratio limit is dropped"),
    M("custom-clean-counts-characters", "data-prep/custom.py",
      "pair_kept(len(s.split()), len(t.split()), 1, max_len, ratio)",
      "pair_kept(len(s), len(t), 1, max_len, ratio)",
      ("tests/test_custom_options.py::test_max_len_and_ratio_count_sentencepiece_pieces",),
      "custom.sh's --max-len / --ratio count characters, not SentencePiece pieces"),
    M("custom-split-ignores-seed", "data-prep/custom.py",
      "random.Random(seed).shuffle(order)", "random.Random().shuffle(order)",
      ("tests/test_custom_options.py::test_the_same_seed_gives_the_same_split_and_binaries_another_seed_another_split",),
      "the split-off sets are drawn afresh on every run"),
]


def by_name(names: Sequence[str]) -> List[Mutant]:
    known = {m.name: m for m in MUTANTS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"mutation_check: no mutant named {', '.join(unknown)} (--list shows them)")
    return [known[n] for n in names]


def copy_repo(dest: Path) -> Path:
    """The working tree (less IGNORED and *.egg-info) copied to ``dest``, with the environment
    linked as ``.venv`` (data-prep/*.sh run their Python from there)."""
    def ignore(_, names):
        return [n for n in names if n in IGNORED or n.endswith(".egg-info") or n.endswith(".pyc")]

    shutil.copytree(REPO, dest, ignore=ignore, symlinks=True)
    venv = Path(sys.prefix) if sys.prefix != sys.base_prefix else REPO / ".venv"
    if venv.exists():
        (dest / ".venv").symlink_to(venv, target_is_directory=True)
    return dest


def environment(copy: Path) -> dict:
    """The copy's package first on the path; no bytecode written (a restored file must never be
    shadowed by its mutant's .pyc)."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(copy), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def check_imports_copy(copy: Path, env: dict) -> None:
    proc = subprocess.run([sys.executable, "-c", "import delight_fairseq; print(delight_fairseq.__file__)"],
                          cwd=copy, env=env, capture_output=True, text=True)
    where = Path(proc.stdout.strip()).resolve() if proc.returncode == 0 else None
    if where is None or copy.resolve() not in where.parents:
        raise SystemExit(f"mutation_check: the copy imports delight_fairseq from {where or proc.stderr.strip()}, "
                         f"not from {copy}: mutants would not be tested")


def run_tests(copy: Path, env: dict, tests: Sequence[str], timeout: float, basetemp: Path) -> Tuple[str, str, float]:
    """``(outcome, detail, seconds)``: outcome ``passed``, ``failed``, ``timeout`` or ``error`` (the
    tests could not run: a node id that is gone, nothing collected)."""
    shutil.rmtree(basetemp, ignore_errors=True)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-n", "0", "-p", "no:cacheprovider", "--basetemp",
               str(basetemp), *tests]
    start = time.time()
    try:
        proc = subprocess.run(command, cwd=copy, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", f"over {timeout:.0f} s", time.time() - start
    seconds = time.time() - start
    output = proc.stdout + proc.stderr
    if proc.returncode == 0:
        return "passed", "", seconds
    if proc.returncode in (4, 5):  # usage error (a node id not found), no tests collected
        return "error", (output.strip().splitlines() or ["?"])[-1][:120], seconds
    failed = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.M)
    return "failed", failed.group(1) if failed else f"pytest exit {proc.returncode}", seconds


def apply(copy: Path, mutant: Mutant) -> str:
    """Write the mutant into the copy; returns the original text."""
    path = copy / mutant.path
    text = path.read_text()
    if text.count(mutant.old) != 1:
        raise ValueError(f"{mutant.name}: its snippet occurs {text.count(mutant.old)} times in {mutant.path}, not once")
    path.write_text(text.replace(mutant.old, mutant.new))
    return text


class _Help(argparse.RawDescriptionHelpFormatter):
    """The docstring as written; each option's default where it has one."""

    def _get_help_string(self, action):
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        return f"{action.help} (default: %(default)s)" if shown else action.help


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=_Help)
    p.add_argument("--list", action="store_true", help="print the mutants (name, file, tests, the bug) and exit")
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="run this mutant (repeatable)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds a mutant's tests may take")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip running the mapped tests on the unmutated copy first")
    p.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = p.parse_args(argv)
    mutants = by_name(args.only) if args.only else MUTANTS
    if args.list:
        for m in mutants:
            print(f"{m.name}\t{m.path}\t{' '.join(m.tests)}\t{m.why}")
        return 0

    start = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="mutation-check-"))
    try:
        copy = copy_repo(tmp / "repo")
        env = environment(copy)
        check_imports_copy(copy, env)
        for m in mutants:  # every snippet in place before anything runs
            if (copy / m.path).read_text().count(m.old) != 1:
                raise SystemExit(f"mutation_check: {m.name}'s snippet no longer occurs exactly once in {m.path}")
        if not args.no_baseline:
            tests = list(dict.fromkeys(t for m in mutants for t in m.tests))
            outcome, detail, seconds = run_tests(copy, env, tests, args.timeout * 3, tmp / "basetemp")
            print(f"baseline: the {len(tests)} mapped tests on the unmutated copy: {outcome} ({seconds:.0f} s)"
                  + (f" {detail}" if detail else ""), flush=True)
            if outcome != "passed":
                print("mutation_check: the mapped tests must pass unmutated first", file=sys.stderr)
                return 2
        width = max(len(m.name) for m in mutants)
        print(f"{'mutant':<{width}}  {'result':<8}  {'time':>6}  caught by", flush=True)
        results = []
        for m in mutants:
            original = apply(copy, m)
            try:
                outcome, detail, seconds = run_tests(copy, env, m.tests, args.timeout, tmp / "basetemp")
            finally:
                (copy / m.path).write_text(original)
            result = {"failed": "killed", "timeout": "killed", "passed": "SURVIVED", "error": "ERROR"}[outcome]
            results.append(result)
            shown = detail if outcome != "passed" else f"{m.path}: {m.why}"
            print(f"{m.name:<{width}}  {result:<8}  {seconds:5.0f}s  {shown}", flush=True)
        survived, errors = results.count("SURVIVED"), results.count("ERROR")
        print(f"{len(results)} mutants: {results.count('killed')} killed, {survived} survived, {errors} could not run "
              f"({time.time() - start:.0f} s)")
        return 1 if survived or errors else 0
    finally:
        if args.keep:
            print(f"copy kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
