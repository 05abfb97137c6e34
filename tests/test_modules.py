"""Building blocks against references written independently of them."""
import math

import pytest
import torch
import torch.nn as nn

from delight_fairseq.modules import (
    DExTra, GroupLinear, LightFFN, block_scaling, default_max_groups, dextra_schedule,
    feature_shuffle, mix_inputs, sequence_dropout,
)


def test_feature_shuffle_is_the_channel_interleave():
    x = torch.arange(12.0)
    # G=3 groups of K=4: [0..3] [4..7] [8..11] -> first of each group, second of each, ...
    assert feature_shuffle(x, 3).tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    assert feature_shuffle(x, 1).tolist() == x.tolist()


def test_input_mixer_interleaves_groups_of_both_inputs():
    x = torch.tensor([0.0, 1, 2, 3])  # A = 4
    inp = torch.tensor([10.0, 11])  # B = 2
    # the block input first in every group, as the authors' DExTra concatenates
    assert mix_inputs(x, inp, 2).tolist() == [10, 0, 1, 11, 2, 3]
    assert mix_inputs(x, inp, 1).tolist() == [10, 11, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="divisible by groups"):
        mix_inputs(x, torch.zeros(3), 2)


def _per_group_reference(glt: GroupLinear, x: torch.Tensor) -> torch.Tensor:
    """GLT built from G separate nn.Linear layers, as Eq. 1 states it."""
    g, n, m = glt.groups, glt.in_features, glt.out_features
    outs = []
    for i, xi in enumerate(x.split(n // g, dim=-1)):
        lin = nn.Linear(n // g, m // g)
        lin.weight.data.copy_(glt.weight[i].t())
        lin.bias.data.copy_(glt.bias[i, 0])
        outs.append(lin(xi))
    return torch.cat(outs, dim=-1)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_group_linear_equals_per_group_linears(groups):
    torch.manual_seed(0)
    glt = GroupLinear(24, 40, groups)
    torch.nn.init.normal_(glt.bias)
    x = torch.randn(5, 3, 24)  # T x B x N
    y = glt(x)
    assert y.shape == (5, 3, 40)
    torch.testing.assert_close(y, _per_group_reference(glt, x), atol=1e-5, rtol=1e-5)
    assert sum(p.numel() for p in glt.parameters()) == 24 * 40 // groups + 40  # N*M/g + M


def test_group_linear_shuffle_then_group_norm_then_activation():
    torch.manual_seed(0)
    glt = GroupLinear(16, 12, 4, shuffle=True, norm="ln", activation="swish")
    torch.nn.init.normal_(glt.bias)
    x = torch.randn(7, 16)  # 2-D input keeps its 2-D shape (a defect of the authors' code)
    ref = feature_shuffle(_per_group_reference(glt, x), 4).view(7, 4, 3)
    ref = nn.functional.silu(nn.functional.layer_norm(ref, (3,), glt.norm.weight, glt.norm.bias)).view(7, 12)
    torch.testing.assert_close(glt(x), ref, atol=1e-5, rtol=1e-5)
    # one norm of M/G features shared by the groups
    assert sum(p.numel() for p in glt.norm.parameters()) == 2 * 3


@pytest.mark.parametrize("groups, shuffle, bias", [(1, False, True), (2, True, True), (4, False, True), (4, True, False)])
def test_group_linear_with_mixed_input_equals_mixing_first(groups, shuffle, bias):
    """``glt(x, mixed=inp)`` is ``glt(mix_inputs(x, inp, G))``: outputs and every gradient."""
    torch.manual_seed(0)
    glt = GroupLinear(24 + 8, 12, groups, bias=bias, shuffle=shuffle, norm="ln", activation="swish").double()
    if bias:
        torch.nn.init.normal_(glt.bias)
    x = torch.randn(5, 3, 24, dtype=torch.double, requires_grad=True)  # T x B x A
    inp = torch.randn(5, 3, 8, dtype=torch.double, requires_grad=True)  # T x B x B
    fused = glt(x, mixed=inp)
    grads = torch.autograd.grad(fused.square().sum(), [x, inp, *glt.parameters()])
    ref = glt(mix_inputs(x, inp, groups))
    ref_grads = torch.autograd.grad(ref.square().sum(), [x, inp, *glt.parameters()])
    torch.testing.assert_close(fused, ref)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want)
    # and the hand-written backward is the true derivative (inputs, weight, bias)
    lin = GroupLinear(24 + 8, 12, groups, bias=bias, shuffle=shuffle).double()
    params = dict(lin.named_parameters())

    def f(a, b, *values):
        return torch.func.functional_call(lin, dict(zip(params, values)), (a,), {"mixed": b})

    assert torch.autograd.gradcheck(f, (x[:2].detach().requires_grad_(), inp[:2].detach().requires_grad_(),
                                        *[p.detach().requires_grad_() for p in params.values()]))
    with pytest.raises(ValueError, match="expected 32 input features, got 30"):
        glt(x, mixed=inp[..., :6])


def test_group_linear_rejects_indivisible_sizes():
    with pytest.raises(ValueError, match=r"divisible by groups \(3\)"):
        GroupLinear(16, 12, 3)


@pytest.mark.parametrize(
    "args, expected",
    [
        # d_m 128 (P 64, N_out 64), N 4, w_m 2, g_max 4: linspace(64, 256, 2), mirrored with the
        # widest repeated; the last layer is N_out wide
        ((128, 64, 64, 4, 2.0, 4), [(64, 2), (256, 4), (256, 4), (64, 2)]),
        # N odd: the widest layer once; raw 178 -> 184 (a multiple of max(8, g_l, g_l+1))
        ((128, 64, 64, 5, 2.286, 4), [(64, 2), (184, 4), (296, 4), (184, 4), (64, 2)]),
        # the authors' d_m 512 block 7 (N 7, w_b 2.857: raw 256, 658, 1060, 1462): each layer
        # rounded up to max(8, its groups, the next layer's), so the mirrored halves differ
        # (664/1072/1472 vs 1064/664)
        ((512, 256, 256, 7, 2.857, 16), [(256, 2), (664, 4), (1072, 8), (1472, 16), (1064, 8), (664, 4), (256, 2)]),
        # d_m 512, N 8, w_m 3, g_max 16: linspace(256, 1536, 4) = 256, 682.7, 1109.3, 1536
        ((512, 256, 256, 8, 3.0, 16), [(256, 2), (688, 4), (1120, 8), (1536, 16), (1536, 16), (1112, 8), (688, 4), (256, 2)]),
        # the embedding DExTra at d_m 512: 128 -> P 256 -> N_out 512, N 4, w 2, g_max 16
        ((128, 256, 512, 4, 2.0, 16), [(256, 2), (256, 4), (256, 4), (512, 2)]),
        ((64, 32, 32, 1, 2.0, 2), [(32, 2)]),
    ],
)
def test_dextra_schedule_authors_code(args, expected):
    assert dextra_schedule(*args) == expected


def test_dextra_schedule_paper_groups_start_at_one():
    assert [g for _, g in dextra_schedule(512, 256, 256, 8, 3.0, 16, schedule="paper")] == [1, 2, 4, 8, 8, 4, 2, 1]
    with pytest.raises(ValueError, match="unknown DExTra schedule"):
        dextra_schedule(512, 256, 256, 8, 3.0, 16, schedule="icml")


def test_default_max_groups_matches_the_recipes():
    # 2^ceil(log2(d_m // 32)): 16 at d_m 384 (the paper's d_m/32 would give 12); integer
    # division as the authors (d_m 48 -> 1, not 2)
    assert [default_max_groups(d) for d in (128, 192, 256, 384, 512, 640, 1024)] == [4, 8, 8, 16, 16, 32, 32]
    assert [default_max_groups(d) for d in (48, 16)] == [1, 1]


def test_dextra_shapes_and_parameter_count():
    torch.manual_seed(0)
    d = DExTra(128, 64, 64, depth=4, width_mult=2.0, max_groups=4, norm="ln")
    y = d(torch.randn(6, 2, 128))
    assert y.shape == (6, 2, 64)

    def glt(n, m, g):  # weights + bias + per-group LayerNorm
        return n * m // g + m + 2 * m // g

    expected = glt(128, 64, 1)  # input layer
    expected += glt(64, 64, 2) + glt(64 + 64, 256, 4) + glt(256 + 64, 256, 4) + glt(256 + 64, 64, 2)
    expected += glt(64 + 64, 64, 1)  # output layer sees the input concatenated to the last layer
    assert sum(p.numel() for p in d.parameters()) == expected


def test_dextra_output_depends_on_every_input_feature():
    torch.manual_seed(0)
    d = DExTra(32, 16, 16, depth=4, width_mult=2.0, max_groups=4).eval()
    x = torch.randn(1, 32, requires_grad=True)
    d(x)[0, 0].backward()
    assert (x.grad != 0).all()


@pytest.mark.parametrize(
    "args, depths",
    [
        ((8, 4, 8, 2.0), [4, 4, 5, 5, 6, 6, 7, 8]),
        ((9, 3, 9, 1.0), [3, 3, 4, 5, 6, 6, 7, 8, 9]),
        ((4, 6, 6, 2.0), [6, 6, 6, 6]),  # min == max: uniform (crashed in the authors' code)
        ((1, 4, 8, 2.0), [4]),
    ],
)
def test_block_scaling_depths(args, depths):
    scaled = block_scaling(*args)
    assert [d for d, _ in scaled] == depths
    b, lo, hi, w = args
    widths = [w for _, w in scaled]
    assert widths[0] == w and math.isclose(widths[-1], w + (hi / lo - 1) if b > 1 else w)
    assert widths == sorted(widths)


def test_block_scaling_rejects_bad_depths():
    with pytest.raises(ValueError, match="min depth <= max depth"):
        block_scaling(4, 9, 8, 2.0)


def test_light_ffn_reduces_then_restores():
    ffn = LightFFN(64, reduction=4)
    assert ffn(torch.randn(3, 2, 64)).shape == (3, 2, 64)
    assert sum(p.numel() for p in ffn.parameters()) == 64 * 16 + 16 + 16 * 64 + 64
    with pytest.raises(ValueError, match="reduction"):
        LightFFN(64, reduction=5)


def test_sequence_dropout_uses_one_mask_per_sequence():
    torch.manual_seed(0)
    x = torch.ones(4, 10, 32)  # B x T x C
    y = sequence_dropout(x, 0.5, training=True)
    assert torch.equal(y, y[:, :1].expand_as(y))  # the same mask at every time step
    assert not torch.equal(y[0], y[1])  # but a different one per sequence
    assert torch.equal(sequence_dropout(x, 0.5, training=False), x)


def test_dextra_fused_path_equals_the_step_by_step_one():
    """GroupLinear's fused path (mixer inside the matmul, hand-written backward) computes what
    its step-by-step path (mix, maps, shuffle as Eq. 1-3 read) computes: outputs and every
    gradient (benchmarks/dextra.py times the two)."""
    torch.manual_seed(0)
    for d_m, depth, w_m in [(64, 4, 2.0), (96, 5, 1.0)]:
        dextra = DExTra(d_m, d_m // 2, d_m // 2, depth, w_m, default_max_groups(d_m, 16)).double()
        x = torch.randn(20, d_m, dtype=torch.double)
        results = []
        for fused in (True, False):
            for m in dextra.modules():
                if isinstance(m, GroupLinear):
                    m.fused = fused
            xi = x.clone().requires_grad_()
            dextra.zero_grad()
            out = dextra(xi)
            out.square().mean().backward()
            results.append([out.detach(), xi.grad] + [p.grad.clone() for p in dextra.parameters()])
        for a, b in zip(*results):
            torch.testing.assert_close(a, b)


def test_dextra_under_torch_compile_equals_eager():
    torch.manual_seed(0)
    dextra = DExTra(32, 16, 16, 4, 2.0, 4)
    x = torch.randn(6, 3, 32, requires_grad=True)  # T x B x C
    outs = []
    for fn in (dextra, torch.compile(dextra)):
        y = fn(x)
        outs.append([y, *torch.autograd.grad(y.square().sum(), [x, *dextra.parameters()])])
    for eager, compiled in zip(*outs):
        torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
