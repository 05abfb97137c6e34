#!/usr/bin/env python
"""Average the parameters of the last N checkpoints of a run (the papers evaluate averaged
models). "Last" means the most updates: checkpoint_EPOCH_UPDATES.pt files, else
checkpointEPOCH.pt files.

    python scripts/average_checkpoints.py CKPT_DIR --num 10 --output CKPT_DIR/averaged.pt
"""
import argparse
import re
import textwrap
from pathlib import Path

import torch

from delight_fairseq import ConfigError
from delight_fairseq.checkpoints.atomic import written_whole
from delight_fairseq.checkpoints.safe_load import load_checkpoint

BY_UPDATES = re.compile(r"checkpoint_\d+_(\d+)\.pt$")
BY_EPOCH = re.compile(r"checkpoint(\d+)\.pt$")


def last_checkpoints(folder: Path, num: int):
    if not folder.is_dir():
        raise SystemExit(f"average_checkpoints: no checkpoint directory {folder}")
    for pattern in (BY_UPDATES, BY_EPOCH):
        found = sorted((int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.search(p.name)))
        if found:
            break
    if len(found) < num:
        names = ", ".join(p.name for _, p in found) or "none"
        raise SystemExit(
            f"average_checkpoints: asked for the last {num} checkpoints in {folder}, found {len(found)} ({names}); "
            "save more (checkpoint.save_interval_updates / keep_interval_updates) or lower --num"
        )
    return [p for _, p in found[-num:]]


def average(paths):
    states = [load_checkpoint(str(p)) for p in paths]
    for p, s in zip(paths, states):
        if not isinstance(s.get("model"), dict):
            raise ConfigError(f"{p} holds no model weights ('model')")
    keys = list(states[-1]["model"])
    for p, s in zip(paths, states):
        if list(s["model"]) != keys:
            raise ConfigError(f"{p} has other parameters than {paths[-1]}: not the same model")
    out = dict(states[-1])  # config, dictionary sizes etc. of the newest
    out["model"] = {
        k: (sum(s["model"][k].double() for s in states) / len(states)).to(states[-1]["model"][k].dtype)
        if states[-1]["model"][k].is_floating_point() else states[-1]["model"][k]
        for k in keys
    }
    out.pop("last_optimizer_state", None)  # an average is for evaluation, not for resuming
    return out


class _Help(argparse.RawDescriptionHelpFormatter):
    """The description as written; each option's default where it has one and its help does not say it."""

    def _split_lines(self, text, width):  # no break after a hyphen: en-de, data-bin stay whole
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if default is None or default is False or default is argparse.SUPPRESS or default == [] or "default" in text:
            return text
        return f"{text} (default: %(default)s)".strip()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help,
                                epilog="example:\n  python scripts/average_checkpoints.py checkpoints/iwslt14_de_en-iwslt_de_en --num 10 --output checkpoints/iwslt14_de_en-iwslt_de_en/averaged.pt")
    p.add_argument("folder", type=Path, help="the run's save dir (checkpoint_*.pt files)")
    p.add_argument("--num", type=int, default=10, help="how many of the last checkpoints to average")
    p.add_argument("--output", type=Path, required=True, help="where to write the averaged checkpoint")
    args = p.parse_args(argv)
    paths = last_checkpoints(args.folder, args.num)
    try:
        state = average(paths)
    except ConfigError as e:
        raise SystemExit(f"average_checkpoints: {e}") from None
    with written_whole(args.output) as tmp:
        torch.save(state, tmp)
    print(f"averaged {len(paths)} checkpoints ({paths[0].name} .. {paths[-1].name}) into {args.output}")


if __name__ == "__main__":
    main()
