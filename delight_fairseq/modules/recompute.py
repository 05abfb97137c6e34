"""Keeping a cheap function's output out of the tensors autograd saves for backward.

A norm keeps its input for backward, and the layer after it keeps the norm's output: two
tensors of the same size where one would do. Within ``recomputed(out, fn)`` autograd keeps, for
any tensor that shares ``out``'s memory, a recipe instead; backward reruns ``fn`` (the norm, on
the input the norm keeps anyway) when it needs the values. The result is the same to the bit:
the same operation on the same input.
"""
from contextlib import contextmanager
from typing import Callable, Iterator, Tuple

import torch


def autocast_state(device: str) -> Tuple[bool, torch.dtype, str]:
    """The autocast state a forward runs under, to recompute in backward under the same."""
    return torch.is_autocast_enabled(device), torch.get_autocast_dtype(device), device


class _Recomputation:
    """``fn`` rerun at most once while the recipes made from one ``out`` are being unpacked: the
    value is kept from the first unpack until the last recipe made so far has been unpacked (a
    DExTra's input layer output, read by each of its GLT layers, is recomputed once, not once per
    layer)."""

    def __init__(self, fn, autocast):
        self.fn, self.autocast = fn, autocast
        self.pending, self.value = 0, None

    def recipe(self, t: torch.Tensor) -> "_Recipe":
        self.pending += 1
        return _Recipe(self, t)

    def unpack(self, size, stride, offset) -> torch.Tensor:
        if self.value is None:
            enabled, dtype, device = self.autocast  # rerun under the autocast state it first ran under
            with torch.no_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
                self.value = self.fn()
        value = self.value
        self.pending -= 1
        if self.pending <= 0:  # every recipe unpacked (once more with retain_graph: recomputed again)
            self.value = None
        return value.as_strided(size, stride, offset)


class _Recipe:
    __slots__ = ("source", "size", "stride", "offset")

    def __init__(self, source: _Recomputation, t: torch.Tensor):
        self.source, self.size, self.stride, self.offset = source, t.size(), t.stride(), t.storage_offset()

    def __call__(self) -> torch.Tensor:
        return self.source.unpack(self.size, self.stride, self.offset)


_keeping_copies = False


@contextmanager
def keeping_copies() -> Iterator[None]:
    """Within this context ``recomputed`` changes nothing: every reader keeps its own copy, as
    without recipes (to compare against: tests, ``benchmarks/kept_memory.py``)."""
    global _keeping_copies
    before, _keeping_copies = _keeping_copies, True
    try:
        yield
    finally:
        _keeping_copies = before


@contextmanager
def recomputed(out: torch.Tensor, fn: Callable[[], torch.Tensor]) -> Iterator[None]:
    """Within this context, a tensor saved for backward that views ``out``'s memory is kept as a
    recipe: ``fn()`` (which must return a tensor equal to ``out``, laid out the same) is rerun in
    backward. Other saved tensors are kept as usual. ``out`` must be a whole contiguous tensor (a
    view of part of a larger one, whose other parts ``fn`` cannot recompute, changes nothing)."""
    whole = out.is_contiguous() and out.storage_offset() == 0 and \
        out.untyped_storage().nbytes() == out.numel() * out.element_size()
    if _keeping_copies or not whole:
        yield
        return
    memory = (out.untyped_storage().data_ptr(), out.device)
    source = _Recomputation(fn, autocast_state(out.device.type))

    def pack(t: torch.Tensor):
        return source.recipe(t) if (t.untyped_storage().data_ptr(), t.device) == memory else t

    def unpack(saved):
        return saved() if isinstance(saved, _Recipe) else saved

    with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
        yield
