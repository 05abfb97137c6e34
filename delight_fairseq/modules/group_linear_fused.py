"""The memory-saving computation of ``GroupLinear`` (``group_linear.py`` reads as the paper's
Eq. 1-3; this file computes the same while keeping less for backward). Used when a layer's
``fused`` is True (the default); tests/test_modules.py and tests/test_memory.py check that both
compute the same outputs and gradients.

Legend: ``R`` rows (the product of the leading dims), ``A`` features of the layer input,
``B`` features of the mixed (block) input, ``G`` groups, ``K = M/G``.

Three custom autograd functions:

- ``_GroupMatmul``: input mixer, the ``G`` maps (Eq. 1) and the feature shuffle in one
  operation; the mixed ``R x (A + B)`` concatenation is never built (nor kept for backward): each
  group's weight is split into the rows for ``mixed_i`` and those for ``x_i`` and the two products
  summed. Its hand-written backward makes one group-major copy each way.
- ``_RecomputedNormAct``: a layer's norm and activation keeping only their input for backward,
  where they are recomputed (``GroupLinear.recompute``).
- ``_NormActThenMaps``: the previous layer's norm and activation, then this layer's maps, keeping
  only the previous layer's raw map output (a DExTra keeps one tensor per layer).
"""
from contextlib import nullcontext
from typing import ContextManager, List, Optional, Tuple

import torch
import torch.nn.functional as F

from .recompute import autocast_state, recomputed


def _inputs_and_weight_rows(x, mixed, weight):
    """``(input index, input, its rows of W)`` in the order of ``W``'s rows: the mixed
    input's ``B/G`` rows come first in every group (``mix_inputs``), then ``x``'s."""
    if mixed is None:
        return [(0, x, weight)]
    b = mixed.shape[1] // weight.shape[0]
    return [(1, mixed, weight[:, :b]), (0, x, weight[:, b:])]


def _autocast_inputs(x, mixed, weight, bias):
    """Under autocast (fairseq --amp / torch.autocast) the maps compute in its dtype, as its matmuls would."""
    device = x.device.type
    if torch.is_autocast_enabled(device):
        dtype = torch.get_autocast_dtype(device)
        return tuple(None if t is None else t.to(dtype) for t in (x, mixed, weight, bias))
    return x, mixed, weight, bias


def _maps_forward(x, mixed, weight, bias, shuffle: bool) -> torch.Tensor:
    """``x: R x A``, ``mixed: R x B`` (or None) -> ``R x M``: group ``i`` is ``[mixed_i, x_i] W_i + b_i``,
    written in feature-shuffled order if ``shuffle``."""
    g, _, k = weight.shape
    r = x.shape[0]
    yg = None
    for _, t, w in _inputs_and_weight_rows(x, mixed, weight):
        tg = t.view(r, g, t.shape[1] // g).transpose(0, 1)  # G x R x A/G (a view)
        if yg is None:
            yg = torch.bmm(tg, w) if bias is None else torch.baddbmm(bias, tg, w)  # G x R x K
        else:
            yg.baddbmm_(tg, w)
    # shuffle: output feature k*G + g is group g's feature k
    return (yg.permute(1, 2, 0) if shuffle else yg.transpose(0, 1)).reshape(r, g * k)  # R x M


def _maps_backward(x, mixed, weight, grad, shuffle: bool, needs: Tuple[bool, bool, bool, bool]):
    """Gradients of ``_maps_forward`` for ``(x, mixed, weight, bias)`` (None where not ``needs``)."""
    g, _, k = weight.shape
    r = x.shape[0]
    grad = grad.view(r, k, g).permute(2, 0, 1) if shuffle else grad.view(r, g, k).transpose(0, 1)
    grad = grad.contiguous()  # G x R x K
    grads_in, grads_w = [None, None], []
    for i, t, w in _inputs_and_weight_rows(x, mixed, weight):
        n = t.shape[1] // g
        if needs[i]:
            grads_in[i] = torch.bmm(grad, w.transpose(1, 2)).transpose(0, 1).reshape(r, g * n)  # R x (G*n)
        if needs[2]:
            grads_w.append(torch.bmm(t.view(r, g, n).permute(1, 2, 0), grad))  # G x n x K
    grad_w = None if not grads_w else (grads_w[0] if len(grads_w) == 1 else torch.cat(grads_w, dim=1))
    grad_b = grad.sum(1, keepdim=True) if needs[3] else None
    return grads_in[0], grads_in[1], grad_w, grad_b


class _GroupMatmul(torch.autograd.Function):
    """``_maps_forward`` with a hand-written backward: autograd of the same composition
    (transpose, baddbmm, transpose, shuffle, reshape) copies every gradient through several
    non-contiguous layouts; here each direction makes one group-major copy (``G x R x M/G``)
    and the bias gradient is a contiguous reduction (``benchmarks/dextra.py`` measures it)."""

    @staticmethod
    def forward(ctx, x, mixed, weight, bias, shuffle: bool):
        x, mixed, weight, bias = _autocast_inputs(x, mixed, weight, bias)
        ctx.save_for_backward(x, mixed, weight)
        ctx.shuffle, ctx.has_bias = shuffle, bias is not None
        return _maps_forward(x, mixed, weight, bias, shuffle)

    @staticmethod
    def backward(ctx, grad):
        # everything in the forward's compute dtype (the saved tensors'); autograd casts
        # each gradient to its input's dtype
        x, mixed, weight = ctx.saved_tensors
        needs = (*ctx.needs_input_grad[:3], ctx.has_bias and ctx.needs_input_grad[3])
        return (*_maps_backward(x, mixed, weight, grad, ctx.shuffle, needs), None)


def _norm_act_parameters(layer) -> List[torch.nn.Parameter]:
    """The parameters of ``layer.norm_act`` (its norm's; the activations have none)."""
    return [] if layer.norm is None else list(layer.norm.parameters())


def _recompute_norm_act(layer, y: torch.Tensor, state) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(y_in, layer.norm_act(y_in))`` rebuilt with autograd from the saved ``y``, as the forward computed it
    (``state``: the forward's ``autocast_state``)."""
    enabled, dtype, device = state
    with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
        y_in = y.detach().requires_grad_()
        return y_in, layer.norm_act(y_in)


class _RecomputedNormAct(torch.autograd.Function):
    """A layer's norm and activation (``layer.norm_act``) keeping only their input for
    backward, where they are recomputed."""

    @staticmethod
    def forward(ctx, layer, y, *params):
        ctx.autocast = autocast_state(y.device.type)
        ctx.layer = layer
        ctx.save_for_backward(y)
        with torch.no_grad():
            return layer.norm_act(y)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        y_in, out = _recompute_norm_act(ctx.layer, y, ctx.autocast)
        params = _norm_act_parameters(ctx.layer)
        grads = torch.autograd.grad(out, [y_in, *params], grad, allow_unused=True)
        return (None, *grads)


class _NormActThenMaps(torch.autograd.Function):
    """The previous layer's norm and activation (``pre.norm_act``, its dropout draws nothing) and then
    this layer's maps, as one operation that keeps only the previous layer's raw map output ``y`` (and
    ``mixed``) for backward: the normed and activated ``x = pre.norm_act(y)`` that the maps
    would keep is recomputed in backward (elementwise, cheap) instead. A DExTra of N layers
    so keeps one tensor per layer where the layer-by-layer computation keeps two or three."""

    @staticmethod
    def forward(ctx, pre, y, mixed, weight, bias, shuffle: bool, *pre_params):
        ctx.autocast = autocast_state(y.device.type)
        with torch.no_grad():
            x = pre.norm_act(y)
        x, mixed_c, weight_c, bias_c = _autocast_inputs(x, mixed, weight, bias)
        ctx.save_for_backward(y, mixed_c, weight_c)
        ctx.pre, ctx.shuffle, ctx.has_bias, ctx.n_pre = pre, shuffle, bias is not None, len(pre_params)
        return _maps_forward(x, mixed_c, weight_c, bias_c, shuffle)

    @staticmethod
    def backward(ctx, grad):
        y, mixed, weight = ctx.saved_tensors
        y_in, x = _recompute_norm_act(ctx.pre, y, ctx.autocast)  # recomputed: R x A
        x_c = _autocast_inputs(x.detach(), None, weight, None)[0] if ctx.autocast[0] else x.detach()
        needs = (True, ctx.needs_input_grad[2], ctx.needs_input_grad[3], ctx.has_bias and ctx.needs_input_grad[4])
        grad_x, grad_mixed, grad_w, grad_b = _maps_backward(x_c, mixed, weight, grad, ctx.shuffle, needs)
        params = _norm_act_parameters(ctx.pre)
        grads = torch.autograd.grad(x, [y_in, *params], grad_x.to(x.dtype), allow_unused=True)
        return (None, grads[0], grad_mixed, grad_w, grad_b, None, *grads[1:])


def fused_maps(layer, x: torch.Tensor, mixed: Optional[torch.Tensor]) -> torch.Tensor:
    """``x: R x A``, ``mixed: R x B`` -> the mixed, mapped and shuffled ``R x M`` (Eq. 1 with the mixer
    and the shuffle), without building the mixed input."""
    if layer.groups > 1:
        return _GroupMatmul.apply(x, mixed, layer.weight, layer.bias, layer.shuffle)
    w, b = layer.weight[0], 0 if mixed is None else mixed.shape[1]  # N x M: the mixed input's rows, then x's
    y = x @ w[b:] if layer.bias is None else torch.addmm(layer.bias.view(-1), x, w[b:])
    return y if mixed is None else torch.addmm(y, mixed, w[:b])


def fused_norm_act_dropout(layer, y: torch.Tensor) -> torch.Tensor:
    """``layer.norm_act_dropout(y)``; in training the norm and activation are recomputed in backward
    (``layer.recompute``): only ``y`` is kept for them."""
    if layer.recompute and torch.is_grad_enabled() and y.requires_grad and (layer.norm, layer.act) != (None, None):
        y = _RecomputedNormAct.apply(layer, y, *_norm_act_parameters(layer))
    else:
        y = layer.norm_act(y)
    return F.dropout(y, p=layer.dropout, training=layer.training)


def fused_group_linear(layer, x: torch.Tensor, mixed: Optional[torch.Tensor], pre, maps_only: bool) -> torch.Tensor:
    """``GroupLinear.forward`` computed keeping less for backward (its arguments are explained there).

    With ``pre`` (``x`` is ``pre``'s raw map output), ``pre``'s norm and activation run inside this
    layer's maps and are recomputed in backward (``_NormActThenMaps``) when ``pre`` recomputes them
    and its dropout draws nothing."""
    *lead, a = x.shape
    x, mixed = x.reshape(-1, a), None if mixed is None else mixed.reshape(-1, mixed.shape[-1])  # R x A, R x B
    if pre is not None and pre.recompute and not pre.draws_dropout() and torch.is_grad_enabled():
        y = _NormActThenMaps.apply(pre, x, mixed, layer.weight, layer.bias, layer.shuffle,
                                   *_norm_act_parameters(pre))
    else:
        if pre is not None:
            x = fused_norm_act_dropout(pre, x)
        y = fused_maps(layer, x, mixed)  # R x M
    if maps_only:
        return y
    return fused_norm_act_dropout(layer, y).reshape(*lead, layer.out_features)


def norm_act_dropout_kept_once(layer, y: torch.Tensor) -> Tuple[torch.Tensor, ContextManager]:
    """``layer.norm_act_dropout(y)`` and the context to run its consumers in: there they keep a recipe
    that recomputes the result from ``y`` (which the norm keeps) instead of their own copy
    (``recompute.recomputed``); a plain context where the dropout draws a mask."""
    out = layer.norm_act_dropout(y)
    if not layer.draws_dropout() and (layer.norm, layer.act) != (None, None):
        return out, recomputed(out, lambda: layer.norm_act(y))
    return out, nullcontext()
