"""NT-ASGD (Merity et al., 2018, Sec. 3; AWD-LSTM's ``main.py``): SGD that switches to averaged
SGD once the validation loss stops improving, and validates with the averaged weights.

- ``--optimizer nt_asgd`` (``NTASGD``): plain SGD with weight decay; after ``start_averaging()``
  it also keeps ``ax``, the running mean of the weights after each step, exactly as
  ``torch.optim.ASGD(t0=0, lambd=0)`` (which AWD-LSTM switches to) keeps it.
- ``--lr-scheduler nt_asgd``: a constant learning rate; at each validation (the end of an
  epoch) it starts the averaging when the loss is worse than the best of all but the last
  ``--nonmono`` validations (AWD-LSTM's rule: ``len(losses) > nonmono and loss >
  min(losses[:-nonmono])``).
- ``swap_in_average`` / ``swap_out_average``: ``--task bptt_lm`` puts the averaged weights
  into the model before a validation (so the validation loss, the best checkpoint and the
  checkpoint written after it hold them, as AWD-LSTM saves its averaged model) and the SGD
  iterate back before the next training step. The swap exchanges tensors, copies nothing,
  and its state is in the optimizer's state dict, so a run resumed from such a checkpoint
  continues from the iterate.
"""
import logging
from dataclasses import dataclass, field
from typing import List

import torch
from fairseq.dataclass import FairseqDataclass
from fairseq.optim import FairseqOptimizer, register_optimizer
from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from omegaconf import II

from ..modules.errors import ConfigError

logger = logging.getLogger(__name__)

class NTASGD(torch.optim.Optimizer):
    """SGD, then (after ``start_averaging``) SGD plus the average ``ax`` of its iterates."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, averaging=False, avg_steps=0,
                                      average_in_model=False))

    @property
    def averaging(self) -> bool:
        return self.param_groups[0]["averaging"]

    def start_averaging(self):
        for group in self.param_groups:
            group["averaging"], group["avg_steps"] = True, 0

    @torch.no_grad()
    def step(self, closure=None):
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            if group["average_in_model"]:
                raise RuntimeError("NT-ASGD stepped with the averaged weights in the model: swap them out first")
            if group["averaging"]:
                group["avg_steps"] += 1
            # torch's ASGD averages with mu = 1 / max(1, k - 1) at its k-th step (t0 = 0): the
            # first two steps copy the weights, then ax is the mean of the iterates from the second on
            mu = 1.0 / max(1, group["avg_steps"] - 1)
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad if group["weight_decay"] == 0 else p.grad.add(p, alpha=group["weight_decay"])
                p.add_(grad, alpha=-group["lr"])
                if group["averaging"]:
                    state = self.state[p]
                    if mu == 1.0 or "ax" not in state:
                        state["ax"] = p.detach().clone()
                    else:
                        state["ax"].add_(p.sub(state["ax"]).mul_(mu))
        return loss

    def swap(self, average_in_model: bool) -> bool:
        """Put the averaged weights into the parameters (or the iterate back); False where
        there is nothing to do (not averaging, or already so)."""
        groups = [g for g in self.param_groups if g["averaging"] and g["average_in_model"] != average_in_model]
        for group in groups:
            for p in group["params"]:
                state = self.state[p]
                if "ax" in state:
                    p.data, state["ax"] = state["ax"], p.data
            group["average_in_model"] = average_in_model
        return bool(groups)


def _nt_asgd(optimizer):
    """The ``NTASGD`` under a fairseq optimizer wrapper, or None."""
    inner = getattr(optimizer, "optimizer", None)
    return inner if isinstance(inner, NTASGD) else None


def swap_in_average(optimizer) -> bool:
    inner = _nt_asgd(optimizer)
    return inner is not None and inner.swap(True)


def swap_out_average(optimizer) -> bool:
    inner = _nt_asgd(optimizer)
    return inner is not None and inner.swap(False)


@dataclass
class NTASGDConfig(FairseqDataclass):
    weight_decay: float = field(default=0.0, metadata={"help": "weight decay (AWD-LSTM's --wdecay)"})
    lr: List[float] = II("optimization.lr")


@register_optimizer("nt_asgd", dataclass=NTASGDConfig)
class FairseqNTASGD(FairseqOptimizer):
    def __init__(self, cfg: NTASGDConfig, params):
        super().__init__(cfg)
        self._optimizer = NTASGD(params, lr=cfg.lr[0], weight_decay=cfg.weight_decay)

    @property
    def optimizer_config(self):
        return {"lr": self.cfg.lr[0], "weight_decay": self.cfg.weight_decay}


@dataclass
class NTASGDScheduleConfig(FairseqDataclass):
    nonmono: int = field(
        default=5, metadata={"help": "start averaging when the validation loss is worse than the best of all but "
                                     "the last N validations (AWD-LSTM's --nonmono)"}
    )
    lr: List[float] = II("optimization.lr")


@register_lr_scheduler("nt_asgd", dataclass=NTASGDScheduleConfig)
class NTASGDSchedule(FairseqLRScheduler):
    """A constant lr; the non-monotonic trigger that starts NT-ASGD's averaging."""

    def __init__(self, cfg: NTASGDScheduleConfig, optimizer):
        super().__init__(cfg, optimizer)
        if _nt_asgd(optimizer) is None:
            raise ConfigError(f"--lr-scheduler nt_asgd starts the averaging of --optimizer nt_asgd, not of "
                              f"{type(optimizer).__name__}: use both")
        if cfg.nonmono < 1:
            raise ConfigError(f"--nonmono must be >= 1, got {cfg.nonmono}")
        self.losses: List[float] = []
        self.optimizer.set_lr(cfg.lr[0])

    def step(self, epoch, val_loss=None):
        if val_loss is not None:
            inner = _nt_asgd(self.optimizer)
            nonmono = self.cfg.nonmono
            if not inner.averaging:
                if len(self.losses) > nonmono and val_loss > min(self.losses[:-nonmono]):
                    inner.start_averaging()
                    logger.info(f"NT-ASGD: validation loss {val_loss:.4f} after epoch {epoch} is worse than the best "
                                f"before the last {nonmono}: switching to averaged SGD")
                self.losses.append(float(val_loss))
        super().step(epoch, val_loss)
        return self.optimizer.get_lr()

    def step_update(self, num_updates):
        return self.optimizer.get_lr()

    def state_dict(self):
        return {"best": self.best, "losses": list(self.losses)}

    def load_state_dict(self, state_dict):
        self.best = state_dict.get("best")
        self.losses = list(state_dict.get("losses", []))
