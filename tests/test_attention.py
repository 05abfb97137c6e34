"""Single-head attention against an explicit softmax(QK^T/sqrt(D))V."""
import math

import torch

from delight_fairseq.modules import SingleHeadAttention


def _reference(attn, q_in, kv_in, mask):
    """mask: B x T x S bool, True = may attend."""
    if attn.self_attention:
        q, k, v = attn.qkv_proj(q_in.transpose(0, 1)).chunk(3, -1)
    else:
        q = attn.q_proj(q_in.transpose(0, 1))
        k, v = attn.kv_proj(kv_in.transpose(0, 1)).chunk(2, -1)
    scores = q @ k.transpose(1, 2) / math.sqrt(q.size(-1))
    scores = scores.masked_fill(~mask, float("-inf"))
    return attn.out_proj((scores.softmax(-1) @ v).transpose(0, 1))


def test_self_attention_with_padding_and_causal_masks():
    torch.manual_seed(0)
    attn = SingleHeadAttention(12, 8, 20).eval()
    x = torch.randn(5, 3, 12)  # T x B x C
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[1, 3:] = True
    allowed = ~pad.unsqueeze(1).expand(3, 5, 5)
    torch.testing.assert_close(attn(x, key_padding_mask=pad), _reference(attn, x, None, allowed), atol=1e-5, rtol=1e-5)
    causal = torch.ones(5, 5, dtype=torch.bool).tril().expand(3, 5, 5)
    torch.testing.assert_close(attn(x, causal=True), _reference(attn, x, None, causal), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        attn(x, key_padding_mask=pad, causal=True), _reference(attn, x, None, causal & allowed), atol=1e-5, rtol=1e-5
    )


def test_encoder_decoder_attention_shapes_and_mask():
    torch.manual_seed(0)
    attn = SingleHeadAttention(10, 6, 10, kv_features=14).eval()
    q, kv = torch.randn(4, 2, 10), torch.randn(7, 2, 14)
    pad = torch.zeros(2, 7, dtype=torch.bool)
    pad[0, :2] = True  # left padding
    out = attn(q, kv, key_padding_mask=pad)
    assert out.shape == (4, 2, 10)
    torch.testing.assert_close(out, _reference(attn, q, kv, ~pad.unsqueeze(1).expand(2, 4, 7)), atol=1e-5, rtol=1e-5)


def test_cached_self_attention_equals_causal_full_pass():
    torch.manual_seed(0)
    attn = SingleHeadAttention(12, 8, 12).eval()
    x = torch.randn(6, 2, 12)
    full = attn(x, causal=True)
    cache = {}
    steps = [attn(x[t : t + 1], causal=True, cache=cache) for t in range(6)]
    torch.testing.assert_close(torch.cat(steps), full, atol=1e-5, rtol=1e-5)
    assert cache["k"].shape == (2, 6, 8)  # B x S x D


def _dropped_reference(q, k, v, mask, keep, p):
    """Explicit dropout(softmax(QK^T/sqrt(D) + mask)) V with the given kept weights."""
    scores = (q @ k.transpose(-1, -2) / math.sqrt(q.size(-1))).masked_fill(~mask, float("-inf"))
    return (scores.softmax(-1) * keep / (1 - p)) @ v


def test_dropout_attention_equals_the_explicit_formula_and_is_its_true_derivative():
    from delight_fairseq.modules.dropout_attention import dropout_attention

    torch.manual_seed(0)
    b, t, s, d, p = 2, 5, 6, 4, 0.3
    q, k, v = (torch.randn(b, 1, n, d, dtype=torch.double, requires_grad=True) for n in (t, s, s))
    mask = torch.ones(b, 1, t, s, dtype=torch.bool).tril(s - t)  # causal, aligned at the end
    mask[1, :, :, :1] = False  # a left-padded key
    keep = torch.rand(b, 1, t, s) >= p
    out = dropout_attention(q, k, v, mask, p, keep)
    torch.testing.assert_close(out, _dropped_reference(q, k, v, mask, keep, p))
    assert torch.autograd.gradcheck(lambda q, k, v: dropout_attention(q, k, v, mask, p, keep), (q, k, v))
    # nothing dropped: SDPA's own result, scaled by 1 / (1 - p)
    everything = torch.ones_like(keep)
    sdpa = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(dropout_attention(q, k, v, mask, p, everything) * (1 - p), sdpa)


def test_dropout_attention_drops_p_of_the_weights_and_a_row_with_no_key_is_zero():
    from delight_fairseq.modules.dropout_attention import dropout_attention

    torch.manual_seed(0)
    p = 0.25
    q, k = torch.randn(64, 1, 32, 8), torch.randn(64, 1, 32, 8)
    v = torch.eye(32).expand(64, 1, 32, 32)  # out = the dropped weights themselves
    weights = dropout_attention(q, k, v, None, p) * (1 - p)
    dropped = (weights == 0).float().mean().item()
    assert abs(dropped - p) < 0.01, dropped
    mask = torch.ones(1, 1, 4, 32, dtype=torch.bool)
    mask[..., 2, :] = False  # query 2 may attend to nothing
    q = q[:1, :, :4].requires_grad_()
    out = dropout_attention(q, k[:1], v[:1], mask, p)
    assert out[0, 0, 2].eq(0).all() and out[0, 0, [0, 1, 3]].sum(-1).gt(0).all()
    out.sum().backward()
    assert torch.isfinite(q.grad).all() and q.grad[0, 0, 2].eq(0).all()


def test_attention_dropout_in_training_drops_weights_and_evaluation_does_not():
    torch.manual_seed(0)
    attn = SingleHeadAttention(12, 8, 12, dropout=0.5)
    x = torch.randn(6, 3, 12)
    pad = torch.zeros(3, 6, dtype=torch.bool)
    pad[2, 4:] = True
    reference = _reference(attn, x, None, ~pad.unsqueeze(1).expand(3, 6, 6) & torch.ones(6, 6, dtype=torch.bool).tril())
    attn.eval()
    torch.testing.assert_close(attn(x, key_padding_mask=pad, causal=True), reference, atol=1e-5, rtol=1e-5)
    attn.train()
    torch.manual_seed(1)
    first = attn(x, key_padding_mask=pad, causal=True)
    torch.manual_seed(1)
    torch.testing.assert_close(attn(x, key_padding_mask=pad, causal=True), first)  # the seed decides the mask
    assert (first - reference).abs().max() > 0.1
