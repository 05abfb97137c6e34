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
