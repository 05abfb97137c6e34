"""A clear error when a checkpoint does not fit the model it is loaded into (another
architecture, other sizes, another dictionary), instead of torch's list of tensor names."""
from typing import Dict

import torch

from ..modules.errors import ConfigError


def check_fits(model: torch.nn.Module, state: Dict[str, torch.Tensor], tables: Dict[str, str]) -> None:
    """Raise ``ConfigError`` naming what differs; ``tables`` maps a description
    ('source dictionary') to the parameter whose rows are that dictionary's entries."""
    own = model.state_dict()
    problems = []
    for what, key in tables.items():
        if key in state and key in own and state[key].shape[0] != own[key].shape[0]:
            problems.append(f"the {what} has {state[key].shape[0]} entries in the checkpoint, "
                            f"{own[key].shape[0]} in the data: use the dictionary the model was trained with")
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    resized = [k for k in own if k in state and state[k].shape != own[k].shape and k not in tables.values()]
    if resized:
        k = resized[0]
        problems.append(f"{len(resized)} parameters have other shapes, e.g. {k}: {tuple(state[k].shape)} in the "
                        f"checkpoint, {tuple(own[k].shape)} in this model")
    if missing or unexpected:
        problems.append(f"{len(missing)} parameters of this model are not in the checkpoint"
                        f"{' (e.g. ' + missing[0] + ')' if missing else ''}, {len(unexpected)} of the checkpoint "
                        f"not in this model{' (e.g. ' + unexpected[0] + ')' if unexpected else ''}")
    if problems:
        raise ConfigError(
            "the checkpoint does not fit this model (another architecture or size, or another dictionary):\n  "
            + "\n  ".join(problems)
            + "\n  build the model with the checkpoint's own options (fairseq-generate reads them from the "
            "checkpoint; drop --arch/model overrides that change sizes)"
        )

