"""The fairseq models: importing this registers ``delight_transformer``, ``define_lm``,
``define_lstm_lm``, ``define_transformer``, ``define_transformer_xl`` and their presets."""
from . import define_lm, define_lstm_lm, define_transformer, define_transformer_xl, delight_transformer  # noqa: F401
