"""The one exception the package raises for a wrong option, checkpoint or input (no fairseq)."""


class ConfigError(ValueError):
    """An impossible option value, checkpoint or input; the message names it and the fix.
    Uncaught in a fairseq command, it is printed without a traceback (``_compat``)."""
