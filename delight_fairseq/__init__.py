"""DeLighT (Mehta et al., ICLR 2021) and DeFINE (Mehta et al., ICLR 2020) for fairseq.

- ``delight_fairseq.modules``: the building blocks, plain ``torch.nn`` (no fairseq);
- the fairseq plugin, ``delight_fairseq.models``: registers ``delight_transformer``,
  ``define_lm`` and ``--lr-scheduler linear``, and applies the fixes of ``_compat``. It is
  loaded by ``--user-dir delight_fairseq`` (fairseq is imported then, so importing this
  package registers it), by ``import delight_fairseq.models``, or on first use of
  ``delight_fairseq.DeLighTTransformerModel`` / ``DefineLanguageModel``.

Importing the building blocks alone imports no fairseq and changes nothing outside.
"""
import sys

from .errors import ConfigError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DeLighTTransformerModel", "DefineLanguageModel"]


def __getattr__(name):
    if name == "DeLighTTransformerModel":
        from .models.delight_transformer import DeLighTTransformerModel

        return DeLighTTransformerModel
    if name == "DefineLanguageModel":
        from .models.define_lm import DefineLanguageModel

        return DefineLanguageModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "fairseq" in sys.modules:  # loaded by fairseq (--user-dir) or next to it: register the plugin now
    from . import models  # noqa: E402,F401
