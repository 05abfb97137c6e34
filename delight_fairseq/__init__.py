"""DeLighT (Mehta et al., ICLR 2021) and DeFINE (Mehta et al., ICLR 2020) for fairseq.

The package, as the papers are built (docs/code-map.md draws it):

- ``modules/``: the building blocks, plain ``torch.nn`` (their source imports no fairseq);
- ``models/``: the fairseq models ``delight_transformer``, ``define_lm``, ``define_lstm_lm``,
  ``define_transformer``, ``define_transformer_xl`` and their presets;
- ``training/``: ``--lr-scheduler linear`` and AWD-LSTM's training (``bptt_lm``, NT-ASGD,
  AR/TAR);
- ``checkpoints/``: safe loading, atomic writes, the converter of the authors' fork, fit checks;
- ``analysis/``: parameters and MACs, correlation maps, ablation sweeps, plots;
- ``compat.py``: what loading the plugin changes in fairseq, one table (``PATCHES``).

``import delight_fairseq`` imports fairseq and registers the plugin (as ``--user-dir
delight_fairseq`` does), so every fairseq API sees its models.
"""
from .modules.errors import ConfigError

__version__ = "0.1.0"

from . import compat  # noqa: E402

compat.apply()

from . import models, training  # noqa: E402,F401  (register the models, presets, schedulers, task, criterion)
from .models.define_lm import DefineLanguageModel  # noqa: E402
from .models.define_lstm_lm import DefineLSTMLanguageModel  # noqa: E402
from .models.define_transformer import DefineTransformerModel  # noqa: E402
from .models.define_transformer_xl import DefineTransformerXLLanguageModel  # noqa: E402
from .models.delight_transformer import DeLighTTransformerModel  # noqa: E402

# the models' hub classes (``from_pretrained``)
MODELS = {
    "DeLighTTransformerModel": DeLighTTransformerModel,
    "DefineLanguageModel": DefineLanguageModel,
    "DefineLSTMLanguageModel": DefineLSTMLanguageModel,
    "DefineTransformerModel": DefineTransformerModel,
    "DefineTransformerXLLanguageModel": DefineTransformerXLLanguageModel,
}
__all__ = ["ConfigError", *MODELS]
