"""define_lstm_lm: the AWD regularisers, the embeddings it can take, incremental decoding
and the preset sizes (fairseq CLI runs are in test_lm_cli.py)."""
from types import SimpleNamespace

import pytest
import torch

from conftest import make_dictionary, num_params
from delight_fairseq.modules.errors import ConfigError
from delight_fairseq.modules.awd import LockedDropout, WeightDropLSTM, locked_dropout, word_dropout
from delight_fairseq.models.factory import dictionary_of_size, preset_config


def build(arch="define_lstm_lm_small", dictionary=None, seed=0, **overrides):
    from delight_fairseq.models.define_lstm_lm import DefineLSTMLanguageModel

    cfg = preset_config(arch, overrides)
    cfg.max_target_positions = None
    torch.manual_seed(seed)
    dictionary = dictionary or make_dictionary(200)
    return DefineLSTMLanguageModel.build_model(cfg, SimpleNamespace(source_dictionary=dictionary,
                                                                    target_dictionary=dictionary))


# ----- AWD regularisers ------------------------------------------------------------------

def test_weight_drop_changes_the_recurrent_weights_in_training_only():
    torch.manual_seed(0)
    layer = WeightDropLSTM(8, 16, weight_drop=0.5)
    x = torch.randn(5, 3, 8)  # T x B x C
    plain = torch.nn.LSTM(8, 16)
    plain.load_state_dict(layer.lstm.state_dict())
    stored = layer.lstm.weight_hh_l0.detach().clone()
    layer.eval()
    assert torch.equal(layer(x)[0], plain(x)[0])  # evaluation: the stored weights, untouched
    layer.train()
    out, _ = layer(x)
    assert not torch.allclose(out, plain(x)[0], atol=1e-4)  # training: a dropped W_hh
    assert torch.equal(layer.lstm.weight_hh_l0, stored)  # the parameter itself is never changed
    # the first step has h = 0, so W_hh cannot act on it yet: only later steps differ
    assert torch.allclose(out[0], plain(x)[0][0], atol=1e-6)
    out.sum().backward()
    grad = layer.lstm.weight_hh_l0.grad
    assert grad is not None and (grad == 0).any() and (grad != 0).any()  # dropped entries get no gradient
    # the input-to-hidden matrix is not dropped: the same as the plain layer in training
    w_drop = WeightDropLSTM(8, 16, weight_drop=0.0).train()
    w_drop.lstm.load_state_dict(layer.lstm.state_dict())
    assert torch.equal(w_drop(x)[0], plain(x)[0])


def test_weight_drop_draws_a_new_mask_each_forward():
    torch.manual_seed(0)
    layer = WeightDropLSTM(4, 8, weight_drop=0.5).train()
    x = torch.randn(6, 2, 4)
    assert not torch.allclose(layer(x)[0], layer(x)[0])


def test_locked_dropout_uses_one_mask_per_sequence():
    torch.manual_seed(0)
    x = torch.ones(50, 4, 32)  # T x B x C
    y = locked_dropout(x, 0.5, training=True)
    zeros = y == 0
    assert torch.equal(zeros, zeros[:1].expand_as(zeros))  # the same units dropped at every time step
    assert zeros[0].float().mean().item() == pytest.approx(0.5, abs=0.1)
    assert not torch.equal(zeros[:, 0], zeros[:, 1])  # each sequence its own mask
    assert torch.allclose(y[~zeros], torch.tensor(2.0))  # kept units scaled by 1 / (1 - p)
    module = LockedDropout(0.5).eval()
    assert torch.equal(module(x), x)
    with pytest.raises(ValueError, match="locked dropout"):
        LockedDropout(1.0)


def test_word_dropout_drops_every_occurrence_of_a_word():
    torch.manual_seed(0)
    tokens = torch.randint(0, 6, (8, 40))  # B x T: each word occurs many times
    x = torch.ones(8, 40, 5)
    y = word_dropout(x, tokens, 0.5, training=True)
    for w in tokens.unique():
        rows = y[tokens == w]  # every occurrence of w
        assert torch.equal(rows, rows[:1].expand_as(rows))
        assert rows[0, 0].item() in (0.0, 2.0)
    assert torch.equal(word_dropout(x, tokens, 0.5, training=False), x)


# ----- the model -----------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [
    {},  # DeFINE over a lookup, tied through an O -> n projection
    {"define_embedding": False, "decoder_input_dim": 128},  # a plain lookup, tied
    {"define_embedding": False, "decoder_input_dim": 32},  # a projective lookup n -> d
    {"adaptive_input": True, "adaptive_input_cutoff": "50,120", "adaptive_softmax_cutoff": "50,120",
     "tie_adaptive_weights": True, "tie_adaptive_proj": True, "share_decoder_input_output_embed": False},
    {"share_decoder_input_output_embed": False},  # untied output
])
def test_incremental_decoding_equals_the_full_pass(overrides):
    model = build(**overrides).eval()
    tokens = torch.randint(4, 200, (3, 9))
    full = model.get_normalized_probs(model(tokens), log_probs=True)  # B x T x V
    state, steps = {}, []
    for t in range(tokens.size(1)):
        out = model.decoder(tokens[:, : t + 1], incremental_state=state)
        steps.append(model.get_normalized_probs(out, log_probs=True))
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)
    # beam search reorders the state: row 2's state moved to row 0 gives row 2's next step
    state = {}
    model.decoder(tokens[:, :4], incremental_state=state)
    model.decoder.reorder_incremental_state_scripting(state, torch.tensor([2, 1, 0]))
    step = model.get_normalized_probs(model.decoder(tokens[[2, 1, 0], :5], incremental_state=state),
                                      log_probs=True)[:, -1]
    assert torch.allclose(step, full[[2, 1, 0], 4], atol=1e-5)


def test_tied_output_uses_the_lookup_table():
    model = build()
    table = model.decoder.embed_tokens.table.weight
    assert model.decoder.output_weight is None and model.decoder.output_proj.weight.shape == (64, 128)
    names = [n for n, p in model.named_parameters() if p is table]
    assert names == ["decoder.embed_tokens.table.weight"]


def test_a_tied_adaptive_softmax_shares_the_bands():
    model = build(adaptive_input=True, adaptive_input_cutoff="50,120", adaptive_softmax_cutoff="50,120",
                  tie_adaptive_weights=True, tie_adaptive_proj=True, share_decoder_input_output_embed=False)
    bands = model.decoder.embed_tokens.table.embeddings
    tails = model.decoder.adaptive_softmax.tail
    assert tails[0][-1].weight is bands[1][0].weight and tails[1][-1].weight is bands[2][0].weight


def test_the_small_preset_learns_a_repeating_sequence():
    model = build(dropout=0.0, dropout_input=0.0, dropout_hidden=0.0, weight_drop=0.0, embed_word_dropout=0.0)
    tokens = torch.arange(4, 24).repeat(4, 3)  # B x T, a period of 20
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        lprobs = model.get_normalized_probs(model(tokens[:, :-1]), log_probs=True)
        loss = torch.nn.functional.nll_loss(lprobs.reshape(-1, lprobs.size(-1)), tokens[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 4.5 and losses[-1] < 0.5


def test_bad_options_name_their_flags():
    with pytest.raises(ConfigError) as e:
        build(weight_drop=1.0, decoder_layers=0, adaptive_softmax_cutoff="50,900")
    msg = str(e.value)
    assert "--weight-drop must be in [0, 1)" in msg and "--decoder-layers must be >= 1" in msg
    assert "--adaptive-softmax-cutoff 50,900 does not fit the dictionary of 200 entries" in msg
    with pytest.raises(ConfigError, match="--define-expand-dim"):
        build(define_expand_dim=32)  # k < n


# ----- preset sizes: tests/test_define_paper.py ---------------------------------------------


def test_define_shrinks_awd_lstm_on_ptb():
    awd = num_params(build("define_lstm_lm_ptb_awd", dictionary=dictionary_of_size(10_008)))
    define = num_params(build("define_lstm_lm_ptb", dictionary=dictionary_of_size(10_008)))
    assert define < awd
