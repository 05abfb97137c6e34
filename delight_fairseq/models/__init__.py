from . import define_lm, delight_transformer  # noqa: F401  (register the models and their presets)
