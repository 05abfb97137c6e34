"""DeLighT and DeFINE for fairseq: ``--user-dir delight_fairseq`` or ``import delight_fairseq``."""
import sys

from . import _compat

__version__ = "0.1.0"

_compat.apply()

from . import lr_scheduler, models  # noqa: E402,F401  (registers delight_transformer, define_lm and --lr-scheduler linear)
from .models.define_lm import DefineLanguageModel  # noqa: E402
from .models.delight_config import ConfigError  # noqa: E402
from .models.delight_transformer import DeLighTTransformerModel  # noqa: E402

__all__ = ["ConfigError", "DeLighTTransformerModel", "DefineLanguageModel"]


# fairseq's own message for an example longer than the model's positions (raised as a
# bare Exception from FairseqTask.filter_indices_by_size, e.g. for a validation set)
_TOO_LONG = "skip this example with --skip-invalid-size-inputs-valid-test"


def _report_config_errors(hook):
    """Print an uncaught ``ConfigError`` (or fairseq's "sample is invalid" size error) as
    one clear message instead of a traceback from deep inside fairseq; every other
    exception goes to the previous hook."""

    def excepthook(kind, value, tb):
        if issubclass(kind, ConfigError):
            print(f"delight_fairseq: {value}", file=sys.stderr)
        elif kind is Exception and _TOO_LONG in str(value):
            print(f"delight_fairseq: {value}, or allow longer inputs (--max-source-positions, "
                  "--max-target-positions, --truncate-source; --tokens-per-sample for language models)",
                  file=sys.stderr)
        else:
            hook(kind, value, tb)

    return excepthook


if not getattr(sys.excepthook, "_delight_fairseq", False):
    sys.excepthook = _report_config_errors(sys.excepthook)
    sys.excepthook._delight_fairseq = True
