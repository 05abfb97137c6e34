"""DeLighT (Mehta et al., ICLR 2021) and DeFINE (Mehta et al., ICLR 2020) for fairseq.

- ``delight_fairseq.modules``: the building blocks, plain ``torch.nn`` (no fairseq);
- the fairseq plugin, ``delight_fairseq.models``: registers ``delight_transformer``,
  ``define_lm``, ``define_lstm_lm``, ``define_transformer``, ``define_transformer_xl`` and
  ``--lr-scheduler linear``, and applies the fixes of ``_compat``. Importing this package
  loads it as soon as fairseq is loaded, in either order: at once when fairseq is already
  imported (``--user-dir delight_fairseq``), else right after ``import fairseq``
  (``_autoload``). ``import delight_fairseq.models`` and the hub classes in ``MODELS``
  (``delight_fairseq.DeLighTTransformerModel``, ...) load it too.

Importing the building blocks alone imports no fairseq and changes nothing outside.
"""
import sys

from .errors import ConfigError

__version__ = "0.1.0"
# the models' hub classes (``from_pretrained``), each imported (and the plugin registered) on first use
MODELS = {
    "DeLighTTransformerModel": "delight_transformer",
    "DefineLanguageModel": "define_lm",
    "DefineLSTMLanguageModel": "define_lstm_lm",
    "DefineTransformerModel": "define_transformer",
    "DefineTransformerXLLanguageModel": "define_transformer_xl",
}
__all__ = ["ConfigError", *MODELS]


def __getattr__(name):
    if name in MODELS:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.models.{MODELS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if "fairseq" in sys.modules:  # loaded by fairseq (--user-dir) or next to it: register the plugin now
    from . import models  # noqa: E402,F401
else:  # register it when fairseq is imported (``_autoload``), so that every fairseq API sees it
    from . import _autoload  # noqa: E402

    _autoload.watch()
