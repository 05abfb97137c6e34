"""DeLighT and DeFINE for fairseq: ``--user-dir delight_fairseq`` or ``import delight_fairseq``."""
import argparse
import sys

import torch

__version__ = "0.1.0"

# torch >= 2.6 loads checkpoints with weights_only=True; checkpoints of models configured
# through argparse hold an argparse.Namespace, which fairseq-generate and --restore-file
# then refuse. Allow exactly that one global.
torch.serialization.add_safe_globals([argparse.Namespace])

from . import models  # noqa: E402,F401  (registers delight_transformer)
from .models.delight_config import ConfigError  # noqa: E402


def _report_config_errors(hook):
    """Print an uncaught ``ConfigError`` as one clear message instead of a traceback
    from deep inside fairseq; every other exception goes to the previous hook."""

    def excepthook(kind, value, tb):
        if issubclass(kind, ConfigError):
            print(f"delight_fairseq: {value}", file=sys.stderr)
        else:
            hook(kind, value, tb)

    return excepthook


if not getattr(sys.excepthook, "_delight_fairseq", False):
    sys.excepthook = _report_config_errors(sys.excepthook)
    sys.excepthook._delight_fairseq = True
