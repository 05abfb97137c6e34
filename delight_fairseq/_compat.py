"""Fixes for running fairseq-fixed 0.12.3.1 on today's torch and NumPy, applied when the
plugin is imported (``--user-dir`` imports it before any data or checkpoint is read)."""
import argparse
import types

import numpy as np
import torch


def apply() -> None:
    # torch >= 2.6 loads checkpoints with weights_only=True; checkpoints of models
    # configured through argparse hold an argparse.Namespace, which fairseq-generate and
    # --restore-file then refuse. Allow exactly that one global.
    torch.serialization.add_safe_globals([argparse.Namespace])
    # fairseq's TokenBlockDataset (--sample-break-mode eos, fairseq-interactive for
    # language models) and LanguagePairDataset use np.compat.long, removed in NumPy 2.
    if not hasattr(np, "compat"):
        np.compat = types.SimpleNamespace(long=np.int64)
