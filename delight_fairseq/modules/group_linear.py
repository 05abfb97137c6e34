"""Group linear transform (GLT) and feature shuffle.

Legend: ``*`` any leading dims (``T x B`` in a layer), ``R`` their product,
``N`` input features, ``M`` output features, ``G`` groups.

DeLighT (Mehta et al., ICLR 2021), Sec. 3.1: the input ``X in R^N`` is split into
``G`` groups ``X_1..X_G`` of ``N/G`` features; group ``i`` has its own weight
``W_i in R^{N/G x M/G}`` and bias, and the outputs ``Y_i = X_i W_i + b_i`` are
concatenated to ``Y in R^M``. Parameters: ``N*M/G + M``. ``G = 1`` is a Linear.

With ``mixed`` (the block input ``B`` features that the input mixer interleaves with
the layer input, DeFINE Sec. 3.2 / Fig. 2c), group ``i`` sees ``[B_i, X_i]`` (the authors'
order): its weight is split into the rows for ``B_i`` and those for ``X_i`` and the two
products summed,
so the ``* x (N + B)`` concatenation is never materialised (nor kept for backward).
"""
from contextlib import nullcontext
from typing import ContextManager, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from .input_mixer import mix_inputs
from .norm_act import build_activation, build_norm, check_dropout
from .recompute import autocast_state, recomputed


def feature_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave ``G`` groups (ShuffleNet channel shuffle): ``* x (G*K) -> * x (K*G)``.

    Output feature ``k*G + g`` is input feature ``g*K + k``.
    """
    if groups == 1:
        return x
    *lead, features = x.shape
    # * x G x K -> * x K x G -> * x (K*G)
    return x.reshape(*lead, groups, features // groups).transpose(-1, -2).reshape(*lead, features)


def group_maps(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """Eq. 1: ``x: R x N`` -> ``R x M``, group ``i``'s ``N/G`` features times ``W_i`` (plus ``b_i``)."""
    g, n, k = weight.shape
    y = torch.bmm(x.reshape(-1, g, n).transpose(0, 1), weight)  # G x R x N/G @ G x N/G x K -> G x R x K
    if bias is not None:
        y = y + bias
    return y.transpose(0, 1).reshape(-1, g * k)  # R x M


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


def _recompute_norm_act(layer: "GroupLinear", y: torch.Tensor, state) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(y_in, layer._norm_act(y_in))`` rebuilt with autograd from the saved ``y``, as the forward computed it
    (``state``: the forward's ``autocast_state``)."""
    enabled, dtype, device = state
    with torch.enable_grad(), torch.autocast(device, dtype=dtype, enabled=enabled):
        y_in = y.detach().requires_grad_()
        return y_in, layer._norm_act(y_in)


class _RecomputedNormAct(torch.autograd.Function):
    """A layer's norm and activation (``layer._norm_act``) keeping only their input for
    backward, where they are recomputed."""

    @staticmethod
    def forward(ctx, layer, y, *params):
        ctx.autocast = autocast_state(y.device.type)
        ctx.layer = layer
        ctx.save_for_backward(y)
        with torch.no_grad():
            return layer._norm_act(y)

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        y_in, out = _recompute_norm_act(ctx.layer, y, ctx.autocast)
        params = ctx.layer.finish_parameters()
        grads = torch.autograd.grad(out, [y_in, *params], grad, allow_unused=True)
        return (None, *grads)


class _FinishThenMaps(torch.autograd.Function):
    """The previous layer's norm and activation (``pre.finish`` without dropout) and then this layer's maps,
    as one operation that keeps only the previous layer's raw map output ``y`` (and
    ``mixed``) for backward: the normed and activated ``x = pre.finish(y)`` that the maps
    would keep is recomputed in backward (elementwise, cheap) instead. A DExTra of N layers
    so keeps one tensor per layer where the layer-by-layer computation keeps two or three."""

    @staticmethod
    def forward(ctx, pre, y, mixed, weight, bias, shuffle: bool, *pre_params):
        ctx.autocast = autocast_state(y.device.type)
        with torch.no_grad():
            x = pre._norm_act(y)  # its dropout draws nothing (finish_recomputable)
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
        params = list(ctx.pre.finish_parameters())
        grads = torch.autograd.grad(x, [y_in, *params], grad_x.to(x.dtype), allow_unused=True)
        return (None, grads[0], grad_mixed, grad_w, grad_b, None, *grads[1:])


class GroupLinear(nn.Module):
    """``G`` independent linear maps on ``G`` slices of the features, computed as one
    batched matmul ``G x R x N/G  @  G x N/G x M/G``.

    Optional, in this order (the authors' order): feature shuffle of the ``G`` output
    groups, a norm over each group's ``M/G`` features (one norm module shared by all
    groups), activation, dropout.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        groups: int = 1,
        bias: bool = True,
        shuffle: bool = False,
        norm: Optional[str] = None,
        activation: Optional[str] = None,
        dropout: float = 0.0,
    ):
        super().__init__()
        if groups < 1 or in_features % groups or out_features % groups:
            raise ValueError(
                f"GroupLinear: in_features ({in_features}) and out_features "
                f"({out_features}) must be divisible by groups ({groups})"
            )
        check_dropout(dropout, "GroupLinear: dropout")
        self.in_features, self.out_features, self.groups = in_features, out_features, groups
        self.shuffle = shuffle and groups > 1
        self.weight = nn.Parameter(torch.empty(groups, in_features // groups, out_features // groups))
        self.bias = nn.Parameter(torch.zeros(groups, 1, out_features // groups)) if bias else None
        self.norm = build_norm(norm, out_features // groups)
        self.act = build_activation(activation) if activation is not None else None
        self.dropout = dropout
        self.fused = True  # False: the step-by-step path of forward(), for reading and testing
        # keep only the map's output for backward and recompute the norm and activation there
        # (their inputs and outputs are not saved): less memory, the same result
        self.recompute = True
        self.reset_parameters()

    def reset_parameters(self):
        """As the authors: a dense layer (``G = 1``) is a 2-D Xavier-uniform ``N x M``
        matrix; a group layer gets torch's ``xavier_uniform_`` on the 3-D ``G x N/G x M/G``
        tensor (fan-in ``N/G * M/G``, fan-out ``M``); biases 0."""
        nn.init.xavier_uniform_(self.weight[0] if self.groups == 1 else self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"groups={self.groups}, bias={self.bias is not None}, shuffle={self.shuffle}"
        )

    def forward(self, x: torch.Tensor, mixed: Optional[torch.Tensor] = None, pre: Optional["GroupLinear"] = None,
                finish: bool = True) -> torch.Tensor:
        """``x``: ``* x A``, ``mixed``: ``* x B`` or None (then ``A = N``) -> ``* x M``.

        DeLighT Eq. 1-3 in order: the input mixer (group ``i`` sees ``[mixed_i, x_i]``), the
        ``G`` linear maps, the feature shuffle (``maps``; with ``pre``, ``x`` is the previous
        layer's raw output), then a norm over each group, the activation and dropout
        (``finish``; ``finish=False`` returns the raw ``R x M`` maps, for a next layer's ``pre``)."""
        *lead, _ = x.shape
        y = self.maps(x, mixed, pre)
        return self.finish(y).reshape(*lead, self.out_features) if finish else y

    def maps(self, x: torch.Tensor, mixed: Optional[torch.Tensor] = None, pre: Optional["GroupLinear"] = None
             ) -> torch.Tensor:
        """``* x A`` (and ``* x B``) -> ``R x M``: mixer, maps and shuffle. With ``fused`` (the
        default) the three run as one operation that never builds the mixed input
        (``_GroupMatmul``); ``fused = False`` runs them one by one as written here. Both
        compute the same (tests/test_modules.py).

        ``pre``: ``x`` is the raw map output of the layer ``pre`` (``pre.maps``), whose
        ``finish`` is applied first, inside one operation that keeps only ``x`` for backward
        (``_FinishThenMaps``; ``pre.finish`` is recomputed there)."""
        a = x.shape[-1]
        n = a + (0 if mixed is None else mixed.shape[-1])
        if n != self.in_features:
            raise ValueError(f"GroupLinear: expected {self.in_features} input features, got {n}")
        x, mixed = x.reshape(-1, a), None if mixed is None else mixed.reshape(-1, n - a)  # R x A, R x B
        if pre is not None and self.fused and pre.finish_recomputable() and torch.is_grad_enabled():
            return _FinishThenMaps.apply(pre, x, mixed, self.weight, self.bias, self.shuffle, *pre.finish_parameters())
        if pre is not None:
            x = pre.finish(x)
        if self.fused:
            return self._fused_maps(x, mixed)
        if mixed is not None:
            x = mix_inputs(x, mixed, self.groups)  # R x N
        y = group_maps(x, self.weight, self.bias)  # R x M
        return feature_shuffle(y, self.groups) if self.shuffle else y

    def finish(self, y: torch.Tensor) -> torch.Tensor:
        """``R x M`` -> ``R x M``: the norm over each group's ``M/G`` features, the activation and
        dropout. In training the norm and activation are recomputed in backward
        (``recompute``): only ``y`` is kept for them."""
        if self.recompute and torch.is_grad_enabled() and y.requires_grad and (self.norm, self.act) != (None, None):
            y = _RecomputedNormAct.apply(self, y, *self.finish_parameters())
        else:
            y = self._norm_act(y)
        return F.dropout(y, p=self.dropout, training=self.training)

    def finished(self, y: torch.Tensor) -> Tuple[torch.Tensor, ContextManager]:
        """``finish(y)`` and the context to run its consumer in: there the consumer keeps a recipe
        that recomputes the result from ``y`` (which ``finish`` keeps) instead of its own copy
        (``recompute.recomputed``); a plain context where ``finish`` draws dropout."""
        out = self.finish(y)
        if self.finish_recomputable() and (self.norm, self.act) != (None, None):
            return out, recomputed(out, lambda: self._norm_act(y))
        return out, nullcontext()

    def finish_recomputable(self) -> bool:
        """``finish`` is a function of its input alone (no dropout drawn), so it can be recomputed."""
        return not (self.training and self.dropout > 0)

    def finish_parameters(self):
        return [] if self.norm is None else list(self.norm.parameters())

    def _norm_act(self, y: torch.Tensor) -> torch.Tensor:
        if self.norm is not None:
            y = self.norm(y.reshape(-1, self.groups, self.out_features // self.groups))  # R x G x M/G
        y = y.reshape(-1, self.out_features)
        return y if self.act is None else self.act(y)

    def _fused_maps(self, x: torch.Tensor, mixed: Optional[torch.Tensor]) -> torch.Tensor:
        """``x: R x A``, ``mixed: R x B`` -> the mixed, mapped and shuffled ``R x M``."""
        if self.groups > 1:
            return _GroupMatmul.apply(x, mixed, self.weight, self.bias, self.shuffle)
        w, b = self.weight[0], 0 if mixed is None else mixed.shape[1]  # N x M: the mixed input's rows, then x's
        y = x @ w[b:] if self.bias is None else torch.addmm(self.bias.view(-1), x, w[b:])
        return y if mixed is None else torch.addmm(y, mixed, w[:b])
