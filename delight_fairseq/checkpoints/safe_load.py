"""Opening checkpoints without running code from them (torch only, no fairseq).

A checkpoint is a pickle, and a pickle can name any importable function to call while it
loads (``os.system`` among them). Every checkpoint the project opens goes through one of
two loaders, both torch's ``weights_only`` unpickler with an allow-list of globals:

- ``load_checkpoint``: a checkpoint written by fairseq 0.12 with this plugin (tensors,
  plain containers and the ``argparse.Namespace`` that argparse-configured models store);
- ``load_fork_checkpoint``: a checkpoint of the authors' fairseq 0.9 fork, which may also
  hold NumPy scalars and dtypes and objects of fairseq 0.9 classes (its meters in
  ``extra_state``). Those classes are never imported: each is replaced by an inert
  placeholder (``FairseqPlaceholder``). Any other global is refused before unpickling
  starts, with one line naming it.

Bad input (no file, a directory, an empty or truncated file, a refused global) raises
``ConfigError`` with one line saying what is wrong.
"""
import argparse
import io
import os
import pickle
import pickletools
import re
import zipfile
from typing import IO, Dict, Iterator, List, Optional, Set

import numpy as np
import torch

from ..modules.errors import ConfigError

# what checkpoints written through fairseq 0.12 may hold beyond torch's own allow-list
SAFE_GLOBALS = [argparse.Namespace]


def _numpy_globals() -> List[tuple]:
    """NumPy scalars, dtypes and arrays as pickles name them: fairseq 0.9 saved them from
    NumPy 1.x (``numpy.core.*``), NumPy 2 names ``numpy._core.*``."""
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    out = []
    for package in ("numpy.core", "numpy._core"):
        out += [(multiarray.scalar, f"{package}.multiarray.scalar"),
                (multiarray._reconstruct, f"{package}.multiarray._reconstruct")]
    out += [(np.dtype, "numpy.dtype"), (np.ndarray, "numpy.ndarray")]
    out += [(type(np.dtype(t)), f"numpy.dtypes.{type(np.dtype(t)).__name__}")
            for t in (np.float16, np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_)]
    return out


# what a checkpoint of the authors' fork may hold beyond torch's allow-list (tensors, storages,
# OrderedDict, set, complex, ...)
FORK_GLOBALS = [(argparse.Namespace, "argparse.Namespace"), *_numpy_globals()]
_FORK_NAMES = {name for _, name in FORK_GLOBALS}


class FairseqPlaceholder:
    """Stands in for an object of a fairseq 0.9 class (e.g. ``fairseq.meters.AverageMeter``):
    accepts any construction and state and does nothing with them."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _placeholder(name: str) -> tuple:
    module, _, cls = name.rpartition(".")
    return type(cls, (FairseqPlaceholder,), {"__module__": module}), name


def _is_fairseq(name: str) -> bool:
    return name == "fairseq" or name.startswith("fairseq.")


def _pickles(path: str) -> Iterator[IO[bytes]]:
    """The pickle streams of a ``torch.save`` file: ``data.pkl`` of the zip format, or the
    leading pickles of the legacy format (magic number, protocol, system info, the object)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.endswith("data.pkl"):
                    yield io.BytesIO(z.read(name))
        return
    with open(path, "rb") as f:
        for _ in range(4):
            start = f.tell()
            yield f
            if f.tell() == start:
                return


_STRINGS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"}
_NO_PUSH = {"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "FRAME", "PROTO", "STOP", "POP", "POP_MARK"}


def pickle_globals(path: str) -> Set[str]:
    """Every ``module.name`` a checkpoint's pickles import, read without unpickling: the
    operands of ``GLOBAL``, and of ``STACK_GLOBAL`` the two strings pushed before it (fetched
    from the memo or not); a name built at load time shows as ``<built at load time>``."""
    found: Set[str] = set()
    for stream in _pickles(path):
        memo: Dict[int, object] = {}
        pushed: List[object] = [None, None]  # the last two values pushed (strings as themselves)
        for op, arg, _ in pickletools.genops(stream):
            name, value = op.name, None
            if name == "GLOBAL":
                found.add(arg.replace(" ", "."))
            elif name == "STACK_GLOBAL":
                known = all(isinstance(s, str) for s in pushed)
                found.add(f"{pushed[0]}.{pushed[1]}" if known else "<built at load time>")
            elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = pushed[1]
            elif name == "MEMOIZE":
                memo[len(memo)] = pushed[1]
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                value = memo.get(arg)
            elif name in _STRINGS:
                value = arg
            if name == "STOP":
                break
            if name not in _NO_PUSH:
                pushed = [pushed[1], value]
    return found


def refused_name(message: str) -> Optional[str]:
    """The global that torch's weights-only unpickler names in its refusal ``message``."""
    named = re.search(r"GLOBAL ([\w.]+)", message)
    return named.group(1) if named else None


def _open(path: str, what: str, loader):
    if os.path.isdir(path):
        raise ConfigError(f"{path} is a directory, not a {what} file")
    if not os.path.isfile(path):
        raise ConfigError(f"no {what} at {path}")
    if os.path.getsize(path) == 0:
        raise ConfigError(f"{path} is empty, not a {what}")
    try:
        state = loader()
    except ConfigError:
        raise
    except pickle.UnpicklingError as e:  # torch's weights-only unpickler refused something
        name = refused_name(str(e))
        detail = f"refers to {name}" if name else f"holds what torch refuses ({str(e).strip().splitlines()[0]})"
        raise ConfigError(f"{path} {detail}, which is not allowed in a {what}: refused, nothing loaded "
                          "(unpickling it could run code)") from None
    except Exception as e:  # truncated or not a torch file at all
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{path} is not a readable {what} (truncated or another kind of file: {reason})") from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path} holds a {type(state).__name__}, not a {what}")
    return state


def _checked_globals(path: str, what: str, allowed) -> Set[str]:
    """The file's globals, once none is outside ``allowed``: a name outside it is refused
    before unpickling (torch's own names, and the builtins and collections it allows, are
    left to torch's weights-only unpickler, which refuses the others)."""
    names = pickle_globals(path)
    refused = sorted(n for n in names if not (n.split(".")[0] in ("torch", "builtins", "collections")
                                             or n == "_codecs.encode" or allowed(n)))
    if refused:
        raise ConfigError(f"{path} refers to {', '.join(refused)}, which a {what} does not hold: refused, nothing "
                          "loaded (unpickling it could run code)")
    return names


def _entry_name(entry) -> str:
    return entry[1] if isinstance(entry, tuple) else f"{entry.__module__}.{entry.__qualname__}"


def _allowing(entries):
    """torch's ``safe_globals`` context for ``entries`` less those already allowed process-wide:
    on exit torch's context removes every entry it was given, which would also drop the
    plugin's own process-wide entries (``compat``: ``argparse.Namespace`` for fairseq's loading)."""
    registered = {_entry_name(e) for e in torch.serialization.get_safe_globals()}
    return torch.serialization.safe_globals([e for e in entries if _entry_name(e) not in registered])


def load_checkpoint(path: str, what: str = "checkpoint") -> dict:
    """A checkpoint written by fairseq 0.12 (``torch.load(weights_only=True)`` with
    ``SAFE_GLOBALS``), on the CPU."""
    def load():
        _checked_globals(path, what, lambda n: n == "argparse.Namespace")
        with _allowing(SAFE_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)

    return _open(path, what, load)


def load_fork_checkpoint(path: str) -> dict:
    """A checkpoint of the authors' fairseq 0.9 fork: ``FORK_GLOBALS`` allowed, fairseq's
    own classes replaced by placeholders, anything else refused before unpickling."""
    what = "checkpoint of the authors' fork"

    def load():
        names = _checked_globals(path, what, lambda n: n in _FORK_NAMES or _is_fairseq(n))
        placeholders = [_placeholder(n) for n in names if _is_fairseq(n)]
        with _allowing(FORK_GLOBALS + placeholders):
            return torch.load(path, map_location="cpu", weights_only=True)

    return _open(path, what, load)
