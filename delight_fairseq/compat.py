"""What loading the plugin changes in fairseq and Python, in one place: ``PATCHES`` below,
one row per change with why it exists and when it can go, applied by ``apply()`` (called
when ``delight_fairseq`` is imported, which ``--user-dir`` does before any data or
checkpoint is read) through one helper, ``_patch``, which wraps each function once and
marks it. The building blocks (``delight_fairseq.modules``) change nothing.
"""
import collections
import importlib
import os
import pickle
import shutil
import sys
import types
import typing
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .checkpoints.atomic import written_whole
from .modules.errors import ConfigError
from .checkpoints.safe_load import SAFE_GLOBALS, refused_name

# fairseq's own message for an example longer than the model's positions (raised as a
# bare Exception from FairseqTask.filter_indices_by_size, e.g. for a validation set)
_TOO_LONG = "skip this example with --skip-invalid-size-inputs-valid-test"


@dataclass(frozen=True)
class Patch:
    """``owner.name`` wrapped by ``wrap`` (its old value in, the new one out)."""

    owner: Callable[[], object]  # imports and returns the module, class or object to change
    name: str
    wrap: Callable
    why: str
    remove_when: str


def _module(name: str) -> Callable[[], object]:
    return lambda: importlib.import_module(name)


def _truncated_bptt_task():
    from fairseq.examples.truncated_bptt.truncated_bptt_lm_task import TruncatedBPTTLMTask

    return TruncatedBPTTLMTask


def _path_manager():
    from fairseq.file_io import PathManager

    return PathManager


PATCHES = [
    Patch(_module("numpy"), "compat", lambda old: old or types.SimpleNamespace(long=np.int64),
          "fairseq 0.12's TokenBlockDataset / LanguagePairDataset use np.compat.long; NumPy 2 removed np.compat",
          "fairseq stops using it (fixed upstream after 0.12) or NumPy < 2"),
    Patch(_module("fairseq.data.data_utils"), "batch_by_size", lambda old: _keep_last_batch(old),
          "fairseq 0.12 drops a last batch whose size is not a multiple of --required-batch-size-multiple "
          "(fairseq issue #5036): fairseq-generate silently skipped up to 7 test sentences",
          "fixed in fairseq (issue #5036)"),
    Patch(_module("fairseq.utils"), "get_tpu_device", lambda old: _explain_missing_xla(old),
          "fairseq 0.12's --bf16 implies --tpu and dies in torch_xla's absence: say so and what works",
          "fairseq stops implying --tpu"),
    Patch(_module("fairseq.distributed.utils"), "infer_init_method", lambda old: _world_size_from_torchrun(old),
          "fairseq 0.12 ignores torchrun's WORLD_SIZE when --distributed-world-size is left at its default (1 "
          "without GPUs or with one per node: every process then trains alone)",
          "fairseq reads the launcher's world size"),
    Patch(_module("fairseq.distributed.utils"), "_infer_torch_distributed_launch_init", lambda old: _torchrun_device(old),
          "under torchrun fairseq 0.12 takes RANK % torch.cuda.device_count() as the device (a ZeroDivisionError "
          "without GPUs)", "fairseq reads LOCAL_RANK and runs without CUDA"),
    Patch(_module("fairseq.distributed.utils"), "_broadcast_object_slow", lambda old: _with_config_globals(old),
          "fairseq 0.12 loads a resumed run's checkpoint on rank 0 and sends it to the other ranks pickled; they "
          "unpickle it with torch's default weights_only=True, which refuses the OmegaConf config in it, so every "
          "multi-process run failed to resume. The config's classes are allowed there (nothing else)",
          "fairseq broadcasts plain data"),
    Patch(_truncated_bptt_task, "__init__", lambda old: _drop_from_checkpoint(old),
          "fairseq's examples/truncated_bptt task (define_transformer_xl's) does not accept the from_checkpoint "
          "that from_pretrained (hub_utils) passes to every task", "fixed in fairseq's example"),
    Patch(_path_manager, "copy", lambda old: staticmethod(_atomic_copy(old)),
          "fairseq 0.12 copies a checkpoint to checkpoint_last.pt and the others with a plain shutil.copyfile: a run "
          "killed during that copy left a truncated checkpoint_last.pt that no resume could read. Local copies now "
          "go to .tmp and are renamed over the target", "fairseq copies atomically"),
    Patch(_module("sys"), "excepthook", lambda old: _report_config_errors(old),
          "an uncaught ConfigError, fairseq's 'sample is invalid' size error or torch's refusal of a checkpoint "
          "that would run code (weights_only) is printed as one line, not a traceback from deep inside fairseq",
          "never: it is the plugin's error reporting"),
]
# and, not a wrapped function: argparse.Namespace a safe global for torch.load (torch >= 2.6 loads with
# weights_only=True; checkpoints of argparse-configured models hold a Namespace, which fairseq-generate
# and --restore-file then refuse; remove when fairseq saves no Namespace, not in 0.12)
_MARK = "_delight_fairseq"


def _patch(patch: Patch) -> None:
    """Wrap ``patch.owner().name`` once: a value already marked is left alone."""
    owner = patch.owner()
    old = getattr(owner, patch.name, None)
    if getattr(old, _MARK, False):
        return
    new = patch.wrap(old)
    setattr(getattr(new, "__func__", new), _MARK, True)  # a staticmethod: its function
    setattr(owner, patch.name, new)


def apply() -> None:
    """Apply every change of ``PATCHES`` (idempotent)."""
    torch.serialization.add_safe_globals(SAFE_GLOBALS)
    for patch in PATCHES:
        _patch(patch)


def _keep_last_batch(batch_by_size):
    def wrapper(indices, *args, fixed_shapes=None, **kwargs):
        if not isinstance(indices, np.ndarray):
            indices = np.fromiter(indices, dtype=np.int64, count=-1)
        batches = batch_by_size(indices, *args, fixed_shapes=fixed_shapes, **kwargs)
        covered = sum(len(b) for b in batches)
        if fixed_shapes is None and covered < len(indices):  # batches split `indices` in order
            batches.append(indices[covered:])
        return batches

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

    return wrapper


_TORCHRUN = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK")


def _world_size_from_torchrun(infer_init_method):
    def wrapper(cfg, force_distributed=False):
        if (cfg.distributed_init_method is None and cfg.distributed_world_size == 1
                and all(k in os.environ for k in _TORCHRUN) and int(os.environ["WORLD_SIZE"]) > 1):
            cfg.distributed_world_size = int(os.environ["WORLD_SIZE"])  # launched by torchrun: its world
        return infer_init_method(cfg, force_distributed)

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

    return wrapper


def _drop_from_checkpoint(init):
    def wrapper(self, cfg, from_checkpoint=False, **kwargs):
        init(self, cfg, **kwargs)

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

    return excepthook
