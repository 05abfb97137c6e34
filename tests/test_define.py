"""DeFINE embedding: every ablation variant, parameter counts from the formulas, wiring."""
import pytest
import torch
import torch.nn as nn

from delight_fairseq.modules import DeFINEEmbedding, HierarchicalGroupTransform, hgt_schedule, mix_inputs
from delight_fairseq.modules.define_embedding import CONNECTIONS, TRANSFORMS


def _glt(n, m, g):  # weights + bias + one LayerNorm over M/g shared by the groups
    return n * m // g + m + 2 * m // g


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("reduce", [True, False])
def test_every_variant_maps_tokens_to_the_model_dim(transform, connection, reduce):
    torch.manual_seed(0)
    table = nn.Embedding(50, 32, padding_idx=1)
    emb = DeFINEEmbedding(table, 128, 48 if reduce else None, depth=3, max_groups=4,
                          transform=transform, connection=connection)
    tokens = torch.randint(2, 50, (3, 7))  # B x T
    out = emb(tokens)
    assert out.shape == (3, 7, 48 if reduce else 64 if connection == "residual" else 128)
    assert emb.embedding_dim == out.size(-1) and emb.padding_idx == 1
    assert torch.isfinite(out).all()


def test_hgt_groups_halve_and_widths_grow_linearly():
    assert hgt_schedule(64, 512, 4, 8, "hgt") == [(176, 8), (288, 4), (400, 2), (512, 1)]
    assert [g for _, g in hgt_schedule(64, 512, 4, 8, "glt")] == [8, 8, 8, 8]
    assert [g for _, g in hgt_schedule(64, 512, 4, 8, "lt")] == [1, 1, 1, 1]
    assert hgt_schedule(64, 512, 3, 4, "hgt", "residual") == [(256, 4), (256, 2), (256, 1)]  # k/2 (Table 6a)


@pytest.mark.parametrize(
    "transform, connection, expected",
    [
        # n 32 -> widths 64, 96, 128; split-mix/concat layers also see the n map features
        ("lt", "none", _glt(32, 64, 1) + _glt(64, 96, 1) + _glt(96, 128, 1)),
        ("lt", "split_mix", _glt(32, 64, 1) + _glt(64 + 32, 96, 1) + _glt(96 + 32, 128, 1)),
        ("glt", "concat", _glt(32, 64, 4) + _glt(64 + 32, 96, 4) + _glt(96 + 32, 128, 4)),
        ("hgt", "split_mix", _glt(32, 64, 4) + _glt(64 + 32, 96, 2) + _glt(96 + 32, 128, 1)),
        ("hgt", "residual", _glt(32, 64, 4) + _glt(64, 64, 2) + _glt(64, 64, 1)),
    ],
)
def test_parameter_counts_follow_the_formulas(transform, connection, expected):
    hgt = HierarchicalGroupTransform(32, 128, depth=3, max_groups=4, transform=transform, connection=connection)
    assert sum(p.numel() for p in hgt.parameters()) == expected


def test_fewer_groups_mean_more_parameters():
    count = {t: sum(p.numel() for p in HierarchicalGroupTransform(32, 128, 3, 4, t).parameters()) for t in TRANSFORMS}
    assert count["glt"] == count["glt_shuffle"] < count["hgt"] < count["lt"]


def _layer_inputs(hgt, e):
    """Each layer's effective input (``mixed`` interleaved in, as the layer computes it) and output."""
    seen = []

    def hook(m, args, kwargs, out):
        x, mixed = args[0], kwargs.get("mixed")
        seen.append((x if mixed is None else mix_inputs(x, mixed, m.groups), out))

    handles = [layer.register_forward_hook(hook, with_kwargs=True) for layer in hgt.layers]
    out = hgt(e)
    for h in handles:
        h.remove()
    return seen, out


def test_split_mix_gives_every_group_its_slice_of_the_map_output():
    torch.manual_seed(0)
    hgt = HierarchicalGroupTransform(32, 128, depth=3, max_groups=4, connection="split_mix")
    e = torch.randn(5, 32)
    seen, out = _layer_inputs(hgt, e)
    assert torch.equal(seen[0][0], e)
    for l in (1, 2):
        assert torch.equal(seen[l][0], mix_inputs(seen[l - 1][1], e, hgt.layers[l].groups))
    assert torch.equal(out, seen[-1][1])


def test_concat_feeds_the_map_output_beside_the_previous_layer():
    torch.manual_seed(0)
    hgt = HierarchicalGroupTransform(32, 128, depth=3, max_groups=4, connection="concat")
    e = torch.randn(5, 32)
    seen, _ = _layer_inputs(hgt, e)
    for l in (1, 2):
        assert torch.equal(seen[l][0], torch.cat([e, seen[l - 1][1]], dim=-1))  # [e, h]: not interleaved
    assert not torch.equal(seen[1][0], mix_inputs(seen[0][1], e, hgt.layers[1].groups))


@pytest.mark.parametrize("transform, spread", [("glt", False), ("glt_shuffle", True)])
def test_glt_shuffle_interleaves_the_groups_inside_define(transform, spread):
    """An input that only reaches the first group: without the shuffle only the first
    group's outputs move; with it, its outputs are interleaved into every group."""
    torch.manual_seed(0)
    hgt = HierarchicalGroupTransform(32, 128, depth=3, max_groups=4, transform=transform, connection="none")
    for layer in hgt.layers:
        assert layer.shuffle == spread
        nn.init.zeros_(layer.bias)
    x = torch.zeros(2, 32)
    x[:, :8] = torch.randn(2, 8)  # group 0 of 4
    out = hgt.layers[0](x)  # 2 x 64: groups of 16
    moved = out.abs().view(2, 4, 16).sum(dim=(0, 2)) > 0
    assert moved.tolist() == ([True] * 4 if spread else [True, False, False, False])


def test_residual_adds_the_previous_layer_output():
    torch.manual_seed(0)
    hgt = HierarchicalGroupTransform(32, 64, depth=3, max_groups=4, connection="residual")
    seen, out = _layer_inputs(hgt, torch.randn(5, 32))
    h1 = seen[0][1]
    h2 = seen[1][1] + h1
    assert torch.equal(seen[1][0], h1) and torch.equal(seen[2][0], h2)
    torch.testing.assert_close(out, seen[2][1] + h2)


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(in_features=256, out_features=128), r"map dim n \(256\) must be <= expanded dim k \(128\)"),
        (dict(transform="hierarchical"), "unknown DeFINE transform"),
        (dict(connection="dense"), "unknown DeFINE connection"),
        (dict(in_features=30), "must be divisible"),
    ],
)
def test_bad_settings_fail_clearly(args, message):
    kwargs = dict(in_features=32, out_features=128, depth=3, max_groups=4)
    kwargs.update(args)
    with pytest.raises(ValueError, match=message):
        hgt_schedule(**kwargs)
