"""``--lr-scheduler linear``: the DeLighT authors' linear warmup and linear decay
(their fork's ``linear_scheduler.py``, used by their WMT'16 En-Ro and IWSLT'14 commands),
which fairseq 0.12 does not have.

The learning rate at update ``u`` is entry ``u`` of

    linspace(warmup_init_lr, lr, warmup_updates) ++ linspace(lr, warmup_init_lr, max_update - warmup_updates + 1)

(numpy's ``linspace``, as theirs), and ``warmup_init_lr`` after that. fairseq's
``polynomial_decay`` with ``power 1`` comes close but warms up from 0 and reaches the peak
one update later.
"""
from dataclasses import dataclass, field
from typing import List

import numpy as np
from fairseq.dataclass import FairseqDataclass
from fairseq.optim.lr_scheduler import FairseqLRScheduler, register_lr_scheduler
from omegaconf import II


@dataclass
class LinearScheduleConfig(FairseqDataclass):
    warmup_updates: int = field(default=0, metadata={"help": "warm up linearly over the first N updates"})
    warmup_init_lr: float = field(
        default=1e-7, metadata={"help": "learning rate at update 0 and at the end of the decay"}
    )
    lr: List[float] = II("optimization.lr")
    max_update: int = II("optimization.max_update")


@register_lr_scheduler("linear", dataclass=LinearScheduleConfig)
class LinearSchedule(FairseqLRScheduler):
    def __init__(self, cfg: LinearScheduleConfig, optimizer):
        super().__init__(cfg, optimizer)
        from ..modules.errors import ConfigError

        if len(cfg.lr) != 1:
            raise ConfigError(f"--lr-scheduler linear takes one --lr (the peak), got {list(cfg.lr)}")
        if cfg.max_update <= cfg.warmup_updates:
            raise ConfigError(f"--lr-scheduler linear decays until --max-update ({cfg.max_update}), which must be "
                              f"larger than --warmup-updates ({cfg.warmup_updates})")
        if not 0 <= cfg.warmup_init_lr < cfg.lr[0]:
            raise ConfigError(f"--lr-scheduler linear needs 0 <= --warmup-init-lr ({cfg.warmup_init_lr}) < --lr ({cfg.lr[0]})")
        low, peak, warmup = cfg.warmup_init_lr, cfg.lr[0], cfg.warmup_updates
        self.lrs = np.concatenate([np.linspace(low, peak, warmup), np.linspace(peak, low, cfg.max_update - warmup + 1)])
        self.end_lr = low
        self.optimizer.set_lr(low)

    def step_update(self, num_updates: int) -> float:
        lr = float(self.lrs[num_updates]) if num_updates < len(self.lrs) else self.end_lr
        self.optimizer.set_lr(lr)
        return lr
