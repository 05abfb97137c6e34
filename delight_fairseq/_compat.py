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
    # fairseq 0.12 drops the last batch when its size is not a multiple of
    # --required-batch-size-multiple (default 8; fairseq issue #5036): fairseq-generate
    # silently leaves up to 7 test sentences untranslated, validation skips some. Keep it.
    import fairseq.data.data_utils as data_utils

    if not getattr(data_utils.batch_by_size, "_delight_fairseq", False):
        data_utils.batch_by_size = _keep_last_batch(data_utils.batch_by_size)

    # fairseq-train's --bf16 sets --tpu (options.py: "use bfloat16; implies --tpu"), so on
    # a GPU or CPU it dies in torch_xla's absence with "'NoneType' object has no attribute
    # 'xla_device'". Say what happened and what works instead (Hydra does not imply --tpu).
    import fairseq.utils

    if not getattr(fairseq.utils.get_tpu_device, "_delight_fairseq", False):
        fairseq.utils.get_tpu_device = _explain_missing_xla(fairseq.utils.get_tpu_device)


def _keep_last_batch(batch_by_size):
    def wrapper(indices, *args, fixed_shapes=None, **kwargs):
        if not isinstance(indices, np.ndarray):
            indices = np.fromiter(indices, dtype=np.int64, count=-1)
        batches = batch_by_size(indices, *args, fixed_shapes=fixed_shapes, **kwargs)
        covered = sum(len(b) for b in batches)
        if fixed_shapes is None and covered < len(indices):  # batches split `indices` in order
            batches.append(indices[covered:])
        return batches

    wrapper._delight_fairseq = True
    return wrapper


def _explain_missing_xla(get_tpu_device):
    def wrapper():
        try:
            import torch_xla.core.xla_model  # noqa: F401
        except ImportError:
            from .models.delight_config import ConfigError

            raise ConfigError(
                "--tpu needs torch_xla, which is not installed. fairseq-train's --bf16 implies --tpu "
                "(fairseq 0.12); for bf16 on a GPU or CPU use fairseq-hydra-train with common.bf16=true "
                "(scripts/train.sh DATASET precision=bf16), which does not."
            ) from None
        return get_tpu_device()

    wrapper._delight_fairseq = True
    return wrapper
