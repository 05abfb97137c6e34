"""What the plugin changes in fairseq and Python, in one place: applied by
``delight_fairseq.models`` when it registers the models (``--user-dir`` imports it before
any data or checkpoint is read), never by the building blocks. Each fix says why it exists
and when it can go.

| fix | why | remove when |
| --- | --- | --- |
| ``argparse.Namespace`` a safe global for ``torch.load`` | torch >= 2.6 loads with ``weights_only=True``; checkpoints of argparse-configured models hold a Namespace, which fairseq-generate and ``--restore-file`` then refuse | fairseq saves no Namespace (not in 0.12) |
| ``np.compat.long`` | fairseq 0.12's TokenBlockDataset / LanguagePairDataset use it; NumPy 2 removed ``np.compat`` | fairseq stops using it (fixed upstream after 0.12) or NumPy < 2 |
| keep the last batch | fairseq 0.12 drops a last batch whose size is not a multiple of ``--required-batch-size-multiple`` (fairseq issue #5036): fairseq-generate silently skipped up to 7 test sentences | fixed in fairseq (issue #5036) |
| ``--bf16`` without torch_xla | fairseq 0.12's ``--bf16`` implies ``--tpu`` and dies in torch_xla's absence: say so and what works | fairseq stops implying ``--tpu`` |
| ``truncated_bptt_lm`` takes ``from_checkpoint`` | fairseq's ``examples/truncated_bptt`` task (``define_transformer_xl``'s) does not accept the ``from_checkpoint`` that ``from_pretrained`` (hub_utils) passes to every task | fixed in fairseq's example |
| launched by ``torchrun`` | fairseq 0.12 ignores torchrun's ``WORLD_SIZE`` when ``--distributed-world-size`` is left at its default (1 without GPUs or with one per node: every process then trains alone) and takes ``RANK % torch.cuda.device_count()`` as the device (a ZeroDivisionError without GPUs) | fairseq reads the launcher's world size and ``LOCAL_RANK`` |
| a resumed distributed run reads the broadcast checkpoint with ``weights_only`` | fairseq 0.12 loads the checkpoint on rank 0 and sends it to the other ranks pickled (``_broadcast_object_slow``); they unpickle it with torch's default ``weights_only=True``, which refuses the OmegaConf config in it, so every multi-process run failed to resume. The config's classes are allowed there (nothing else) | fairseq broadcasts plain data |
| checkpoint copies are atomic | fairseq 0.12 writes a checkpoint once (to ``.tmp``, then renamed) and copies it to ``checkpoint_last.pt`` and the others with a plain ``shutil.copyfile``: a run killed during that copy left a truncated ``checkpoint_last.pt`` that no resume could read. Local copies now go to ``.tmp`` and are renamed over the target | fairseq copies atomically |
| ``sys.excepthook`` | an uncaught ``ConfigError``, fairseq's "sample is invalid" size error or torch's refusal of a checkpoint that would run code (``weights_only``) is printed as one line, not a traceback from deep inside fairseq | never: it is the plugin's error reporting |
"""
import collections
import os
import pickle
import shutil
import sys
import types
import typing

import numpy as np
import torch

from .atomic import written_whole
from .errors import ConfigError
from .safe_load import SAFE_GLOBALS, refused_name

# fairseq's own message for an example longer than the model's positions (raised as a
# bare Exception from FairseqTask.filter_indices_by_size, e.g. for a validation set)
_TOO_LONG = "skip this example with --skip-invalid-size-inputs-valid-test"


def apply() -> None:
    """Apply every fix of the table above (idempotent)."""
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    if not hasattr(np, "compat"):
        np.compat = types.SimpleNamespace(long=np.int64)

    import fairseq.data.data_utils as data_utils
    import fairseq.utils

    if not getattr(data_utils.batch_by_size, "_delight_fairseq", False):
        data_utils.batch_by_size = _keep_last_batch(data_utils.batch_by_size)
    if not getattr(fairseq.utils.get_tpu_device, "_delight_fairseq", False):
        fairseq.utils.get_tpu_device = _explain_missing_xla(fairseq.utils.get_tpu_device)
    import fairseq.distributed.utils as distributed_utils

    if not getattr(distributed_utils.infer_init_method, "_delight_fairseq", False):
        distributed_utils.infer_init_method = _world_size_from_torchrun(distributed_utils.infer_init_method)
        distributed_utils._infer_torch_distributed_launch_init = _torchrun_device(
            distributed_utils._infer_torch_distributed_launch_init)
        distributed_utils._broadcast_object_slow = _with_config_globals(distributed_utils._broadcast_object_slow)
    from fairseq.examples.truncated_bptt.truncated_bptt_lm_task import TruncatedBPTTLMTask

    if not getattr(TruncatedBPTTLMTask.__init__, "_delight_fairseq", False):
        TruncatedBPTTLMTask.__init__ = _drop_from_checkpoint(TruncatedBPTTLMTask.__init__)
    from fairseq.file_io import PathManager

    if not getattr(PathManager.copy, "_delight_fairseq", False):
        PathManager.copy = staticmethod(_atomic_copy(PathManager.copy))
    if not getattr(sys.excepthook, "_delight_fairseq", False):
        sys.excepthook = _report_config_errors(sys.excepthook)


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


def _atomic_copy(copy):
    """``PathManager.copy`` that writes a local target whole or not at all (``written_whole``:
    the target keeps its old content if the copy is cut short)."""
    from fairseq.file_io import PathManager

    def wrapper(src_path: str, dst_path: str, overwrite: bool = False) -> bool:
        if PathManager.path_requires_pathmanager(dst_path):
            return copy(src_path, dst_path, overwrite=overwrite)
        with written_whole(dst_path) as tmp:
            shutil.copyfile(src_path, tmp)
        return True

    wrapper._delight_fairseq = True
    return wrapper


_TORCHRUN = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")


def _world_size_from_torchrun(infer_init_method):
    def wrapper(cfg, force_distributed=False):
        if (cfg.distributed_init_method is None and cfg.distributed_world_size == 1
                and all(k in os.environ for k in _TORCHRUN) and int(os.environ["WORLD_SIZE"]) > 1):
            cfg.distributed_world_size = int(os.environ["WORLD_SIZE"])  # launched by torchrun: its world
        return infer_init_method(cfg, force_distributed)

    wrapper._delight_fairseq = True
    return wrapper


def _torchrun_device(launch_init):
    def wrapper(cfg):
        if torch.cuda.device_count() > 0:
            return launch_init(cfg)
        cfg.distributed_init_method = "env://"  # as fairseq's, with no CUDA device to pick
        cfg.distributed_world_size = int(os.environ["WORLD_SIZE"])
        cfg.distributed_rank = int(os.environ["RANK"])
        cfg.device_id = 0
        cfg.distributed_no_spawn = True

    wrapper._delight_fairseq = True
    return wrapper


def _with_config_globals(broadcast_object_slow):
    from fairseq.distributed.utils import _TensorPlaceholder
    from omegaconf import DictConfig, ListConfig, nodes
    from omegaconf.base import ContainerMetadata, Metadata

    # what a checkpoint's state holds once fairseq has loaded it (its cfg as a DictConfig, the
    # tensors split out as placeholders); pickle protocol 2 names dict, list and int too
    config_globals = [DictConfig, ListConfig, ContainerMetadata, Metadata, nodes.AnyNode, nodes.StringNode,
                      nodes.IntegerNode, nodes.FloatNode, nodes.BooleanNode, typing.Any, collections.defaultdict,
                      _TensorPlaceholder, dict, list, int]

    def wrapper(*args, **kwargs):
        with torch.serialization.safe_globals(config_globals):
            return broadcast_object_slow(*args, **kwargs)

    wrapper._delight_fairseq = True
    return wrapper


def _drop_from_checkpoint(init):
    def wrapper(self, cfg, from_checkpoint=False, **kwargs):
        init(self, cfg, **kwargs)

    wrapper._delight_fairseq = True
    return wrapper


def _explain_missing_xla(get_tpu_device):
    def wrapper():
        try:
            import torch_xla.core.xla_model  # noqa: F401
        except ImportError:
            raise ConfigError(
                "--tpu needs torch_xla, which is not installed. fairseq-train's --bf16 implies --tpu "
                "(fairseq 0.12); for bf16 on a GPU or CPU use fairseq-hydra-train with common.bf16=true "
                "(scripts/train.sh DATASET precision=bf16), which does not."
            ) from None
        return get_tpu_device()

    wrapper._delight_fairseq = True
    return wrapper


def _report_config_errors(hook):
    """Print an uncaught ``ConfigError``, fairseq's "sample is invalid" size error or torch's
    refusal of an unsafe checkpoint as one clear message instead of a traceback; every
    other exception goes to ``hook``."""

    def excepthook(kind, value, tb):
        if issubclass(kind, ConfigError):
            print(f"delight_fairseq: {value}", file=sys.stderr)
        elif issubclass(kind, pickle.UnpicklingError) and "Weights only load failed" in str(value):
            name = refused_name(str(value))
            print("delight_fairseq: the checkpoint " + (f"refers to {name}, which" if name else "holds an object that")
                  + " is not allowed in a checkpoint: refused, nothing loaded (unpickling it could run code). "
                  "A checkpoint of the authors' fork converts with scripts/convert_authors_checkpoint.py", file=sys.stderr)
        elif kind is Exception and _TOO_LONG in str(value):
            print(f"delight_fairseq: {value}, or allow longer inputs (--max-source-positions, "
                  "--max-target-positions, --truncate-source; --tokens-per-sample for language models)",
                  file=sys.stderr)
        else:
            hook(kind, value, tb)

    excepthook._delight_fairseq = True
    return excepthook
