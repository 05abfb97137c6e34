"""Matplotlib for the scripts' figures: the file backend, and quiet (fairseq's logging set-up
lets matplotlib's DEBUG messages through)."""
import logging


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
