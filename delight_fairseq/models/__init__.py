from . import delight_transformer  # noqa: F401  (registers the model and its presets)
