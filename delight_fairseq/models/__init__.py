"""The fairseq plugin: importing this registers the models (``delight_transformer``,
``define_lm``, ``define_lstm_lm``, ``define_transformer``, ``define_transformer_xl`` and their
presets) and ``--lr-scheduler linear``, after applying the fixes to
fairseq that the plugin needs (``delight_fairseq/_compat.py``, each with its reason)."""
from .. import _compat

_compat.apply()

from . import define_lm, define_lstm_lm, define_transformer, define_transformer_xl, delight_transformer  # noqa: E402,F401  (register the models and presets)
from .. import lr_scheduler, training  # noqa: E402,F401  (register --lr-scheduler linear, AWD-LSTM's training)
