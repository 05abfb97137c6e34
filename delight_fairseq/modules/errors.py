"""The one exception the package raises for a wrong option, checkpoint or input (no fairseq)."""
import sys

# fairseq-hydra-train runs a job under Hydra, which prints the exceptions it catches with a
# traceback, except its "compact" ones: loaded there (Hydra is imported first), ConfigError
# is one of those too, so a wrong option is one line under Hydra as on fairseq's CLI. The
# building blocks alone import no Hydra for it.
_BASES = (ValueError,)
if "hydra.errors" in sys.modules:
    _BASES += (sys.modules["hydra.errors"].CompactHydraException,)


class ConfigError(*_BASES):
    """An impossible option value, checkpoint or input; the message names it and the fix.
    Uncaught in a fairseq command, it is printed without a traceback (``compat``)."""
