"""delight_transformer as a whole: shapes, masking, incremental decoding, beam search."""
import pytest
import torch
from fairseq.models import FairseqDecoder, FairseqEncoderDecoderModel
from fairseq.sequence_generator import SequenceGenerator

from conftest import build_model, make_dictionary, num_params, tiny_cfg


def _batch(model, bsz=3, src_len=7, tgt_len=6, seed=1):
    g = torch.Generator().manual_seed(seed)
    nsrc, ntgt = len(model.encoder.dictionary), len(model.decoder.dictionary)
    src = torch.randint(4, nsrc, (bsz, src_len), generator=g)
    prev = torch.randint(4, ntgt, (bsz, tgt_len), generator=g)
    prev[:, 0] = model.decoder.dictionary.eos()
    return src, torch.full((bsz,), src_len), prev


def test_forward_shapes():
    model = build_model().eval()
    src, lengths, prev = _batch(model)
    enc = model.encoder(src, lengths)
    assert enc["encoder_out"][0].shape == (7, 3, 64)  # S x B x C_enc
    logits, extra = model(src, lengths, prev)
    assert logits.shape == (3, 6, 36)  # B x T x V_tgt
    assert len(extra["inner_states"]) == 1 + 2


def test_padding_does_not_change_other_positions():
    model = build_model().eval()
    src, _, prev = _batch(model, bsz=1)
    pad = model.encoder.dictionary.pad()
    padded = torch.cat([torch.full((1, 3), pad), src], dim=1)  # left padding, fairseq's default
    out = model.encoder(src)["encoder_out"][0]
    out_padded = model.encoder(padded)["encoder_out"][0]
    torch.testing.assert_close(out_padded[3:], out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(
        model(padded, None, prev)[0], model(src, None, prev)[0], atol=1e-5, rtol=1e-5
    )


def test_decoder_is_causal():
    model = build_model().eval()
    src, lengths, prev = _batch(model)
    changed = prev.clone()
    changed[:, 4] = (changed[:, 4] + 1 - 4) % (len(model.decoder.dictionary) - 4) + 4
    a, b = model(src, lengths, prev)[0], model(src, lengths, changed)[0]
    torch.testing.assert_close(a[:, :4], b[:, :4], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[:, 4:], b[:, 4:])


@pytest.mark.parametrize("normalize_before", [False, True])
def test_incremental_decoding_equals_full_pass(normalize_before):
    model = build_model(tiny_cfg(normalize_before=normalize_before)).eval()
    src, lengths, prev = _batch(model)
    enc = model.encoder(src, lengths)
    full = model.decoder(prev, enc)[0]
    state = {}
    steps = [model.decoder(prev[:, : t + 1], enc, incremental_state=state)[0] for t in range(prev.size(1))]
    assert all(s.shape == (3, 1, 36) for s in steps)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


def test_reorder_incremental_state_follows_the_beam():
    model = build_model().eval()
    src, lengths, prev = _batch(model)
    order = torch.tensor([2, 0, 0])
    enc = model.encoder(src, lengths)
    state = {}
    for t in range(3):
        model.decoder(prev[:, : t + 1], enc, incremental_state=state)
    model.decoder.reorder_incremental_state_scripting(state, order)
    enc = model.encoder.reorder_encoder_out(enc, order)
    prev = prev.index_select(0, order)
    steps = [model.decoder(prev[:, : t + 1], enc, incremental_state=state)[0] for t in range(3, prev.size(1))]
    full = model.decoder(prev, enc)[0][:, 3:]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


class _FullPassDecoder(FairseqDecoder):
    """Recomputes the whole prefix every step: beam search without any cache."""

    def __init__(self, inner):
        super().__init__(inner.dictionary)
        self.inner = inner

    def forward(self, prev_output_tokens, encoder_out=None, **unused):
        return self.inner(prev_output_tokens, encoder_out)

    def max_positions(self):
        return self.inner.max_positions()


def test_beam_search_equals_beam_search_without_cache():
    model = build_model(tiny_cfg(share_all_embeddings=True), src_dict=make_dictionary(40)).eval()
    full = FairseqEncoderDecoderModel(model.encoder, _FullPassDecoder(model.decoder)).eval()
    src, lengths, _ = _batch(model, bsz=4)
    sample = {"net_input": {"src_tokens": src, "src_lengths": lengths}}
    tgt = model.decoder.dictionary
    hyps = [
        SequenceGenerator([m], tgt, beam_size=5, max_len_b=12).generate([m], sample)
        for m in (model, full)
    ]
    for cached, uncached in zip(*hyps):
        assert len(cached) == 5
        for a, b in zip(cached, uncached):
            assert a["tokens"].tolist() == b["tokens"].tolist()
            assert abs(float(a["score"]) - float(b["score"])) < 1e-4


def test_shared_embeddings_are_tied():
    d = make_dictionary(40)
    model = build_model(tiny_cfg(share_all_embeddings=True), src_dict=d)
    enc_table, dec_table = model.encoder.embed_tokens.table, model.decoder.embed_tokens.table
    assert enc_table.weight is dec_table.weight
    assert model.decoder.output_weight is None  # logits use the lookup table
    untied = build_model(tiny_cfg(), src_dict=d, tgt_dict=d)
    # one more V x map_dim table and one more V x map_dim output matrix
    assert num_params(untied) - num_params(model) == 2 * 40 * 16


def test_model_trains_on_a_batch():
    torch.manual_seed(0)
    model = build_model()
    src, lengths, prev = _batch(model, bsz=4)
    target = torch.roll(prev, -1, dims=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        logits = model(src, lengths, prev)[0]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
