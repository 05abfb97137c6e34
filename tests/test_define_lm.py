"""define_lm: every block type x input embedding, incremental decoding, tying, errors,
WikiText-103 presets against the published parameter counts."""
import pytest
import torch

from conftest import build_lm, build_model, lm_cfg, make_dictionary, num_params, tiny_cfg
from delight_fairseq import ConfigError
from delight_fairseq.models.builders import DeLighTDecoderLayer
from delight_fairseq.modules import DeFINEEmbedding

SMALL = dict(
    decoder_embed_dim=32, decoder_input_dim=16, decoder_output_dim=32, decoder_layers=3,
    decoder_attention_heads=2, decoder_ffn_embed_dim=48, define_expand_dim=64, define_depth=2,
    define_max_groups=2, delight_min_depth=2, delight_max_depth=4, dropout=0.0,
)
ADAPTIVE = dict(
    adaptive_input=True, adaptive_input_cutoff="50,120", adaptive_softmax_cutoff="50,120",
    adaptive_input_factor=2, adaptive_softmax_factor=2, tie_adaptive_weights=True, tie_adaptive_proj=True,
)
VARIANTS = {
    "transformer": dict(),
    "delight": dict(block_type="delight"),
    "define+transformer": dict(define_embedding=True),
    "define+delight+tied": dict(define_embedding=True, block_type="delight", share_decoder_input_output_embed=True),
    "adaptive+delight": dict(ADAPTIVE, block_type="delight", decoder_input_dim=32),
    "define+adaptive+transformer": dict(ADAPTIVE, define_embedding=True),
    "define-no-reduce+delight": dict(define_embedding=True, define_no_reduce=True, define_expand_dim=32, block_type="delight"),
    # the DeLighT authors' language model: their adaptive input, a DExTra embedding, no final norm
    "authors-delight": dict(ADAPTIVE, adaptive_input_style="delight", delight_embedding=True, block_type="delight",
                            no_decoder_final_norm=True, pos_dropout=0.1, embed_dropout=0.1),
}


def small_lm(**overrides):
    return build_lm(lm_cfg(None, **{**SMALL, **overrides})).eval()


def _log_probs(model, tokens, **kw):
    return model.get_normalized_probs(model(tokens, **kw), log_probs=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_incremental_decoding_equals_full_pass(variant):
    model = small_lm(**VARIANTS[variant])
    tokens = torch.randint(4, 200, (3, 9), generator=torch.Generator().manual_seed(0))
    full = _log_probs(model, tokens)
    assert full.shape == (3, 9, 200)
    state = {}
    steps = [_log_probs(model, tokens[:, : t + 1], incremental_state=state) for t in range(9)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", ["delight", "define+delight+tied"])
def test_language_model_is_causal(variant):
    model = small_lm(**VARIANTS[variant])
    tokens = torch.randint(4, 200, (2, 8), generator=torch.Generator().manual_seed(0))
    changed = tokens.clone()
    changed[:, 5] = 4 + (changed[:, 5] - 3) % 196
    a, b = model(tokens)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :5], b[:, :5], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[:, 5:], b[:, 5:])


def test_blocks_and_embeddings_are_what_the_options_say():
    model = small_lm(**VARIANTS["define+delight+tied"])
    layers = model.decoder.layers
    assert all(isinstance(layer, DeLighTDecoderLayer) for layer in layers)
    assert [layer.dextra.layout.__len__() for layer in layers] == [2, 3, 4]  # block-wise scaling 2 -> 4
    emb = model.decoder.embed_tokens
    assert isinstance(emb, DeFINEEmbedding) and emb.embedding_dim == 32
    # tied: logits against the n-wide map, after a d -> n projection
    assert model.decoder.output_projection.weight is emb.table.weight
    assert model.decoder.project_out_dim.weight.shape == (16, 32)


def test_adaptive_softmax_is_tied_to_the_define_map():
    model = small_lm(**VARIANTS["define+adaptive+transformer"])
    table = model.decoder.embed_tokens.table  # fairseq's AdaptiveInput, n = 16 wide
    softmax = model.decoder.adaptive_softmax
    proj, _, words = softmax.tail[0]  # band 1: projection, dropout, word matrix
    assert words.weight is table.embeddings[1][0].weight and proj.weight is table.embeddings[1][1].weight
    assert model.decoder.project_out_dim.weight.shape == (16, 32)


def test_define_adds_only_its_transform():
    base, define = small_lm(), small_lm(define_embedding=True)
    d = define.decoder.embed_tokens
    extra = num_params(d.expand) + num_params(d.reduce)
    # the plain model projects its 16-wide lookup to 32 dims; DeFINE replaces that projection
    assert num_params(define) - num_params(base) == extra - num_params(base.decoder.project_in_dim)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(adaptive_input=True, adaptive_input_cutoff="50,300"), "--adaptive-input-cutoff 50,300 does not fit the dictionary of 200"),
        (dict(adaptive_softmax_cutoff="120,50"), "--adaptive-softmax-cutoff 120,50 does not fit"),
        (dict(define_embedding=True, define_expand_dim=8), r"map dim n \(16\) must be <= expanded dim k \(8\)"),
        (dict(define_embedding=True, define_transform="hierarchical"), "unknown DeFINE transform"),
        (dict(define_embedding=True, define_connection="dense"), "unknown DeFINE connection"),
        (dict(define_embedding=True, define_no_reduce=True), "--define-no-reduce"),
        (dict(block_type="delight", delight_activation_fn="tanh"), "--delight-activation-fn"),
        (dict(block_type="delight", delight_min_depth=5), "--delight-min-depth"),
        (dict(tie_adaptive_weights=True), "--tie-adaptive-weights needs --adaptive-input"),
        (dict(dextra_dropout=1.5), "--dextra-dropout"),
        (dict(define_embedding=True, delight_embedding=True), "--define-embedding and --delight-embedding .* choose one"),
        (dict(delight_embedding=True, embed_max_groups=3), r"--embed-max-groups \(3\) must divide --decoder-embed-dim / 2 \(16\)"),
        (dict(delight_embedding=True, pos_dropout=1.0), "--pos-dropout must be in"),
    ],
)
def test_bad_options_fail_at_build_time(overrides, message):
    with pytest.raises(ConfigError, match=message):
        small_lm(**overrides)


def _wikitext103_dictionary():
    d = make_dictionary(267_735 + 4)  # WikiText-103's 267,735 types + fairseq's 4 specials
    d.pad_to_multiple_(8)
    return d


def test_wikitext103_presets_against_the_published_counts():
    d = _wikitext103_dictionary()
    counts = {}
    for arch in ("define_lm_wiki103_delight", "define_lm_wiki103_transformer", "define_lm_wiki103_transformer_baseline"):
        model = build_lm(lm_cfg(arch), d)
        counts[arch] = num_params(model)
        del model
    delight = counts["define_lm_wiki103_delight"]
    define, baseline = counts["define_lm_wiki103_transformer"], counts["define_lm_wiki103_transformer_baseline"]
    assert delight == 99_247_668  # the authors' model, counted by their code (published: 99M)
    assert abs(define / 141.25e6 - 1) < 0.03  # Transformer-XL column with DeFINE
    assert abs(baseline / 139.33e6 - 1) < 0.03  # ... and without
    assert abs((define - baseline) / 1.92e6 - 1) < 0.1  # what DeFINE adds: 2.07M vs 1.92M published


def test_the_authors_adaptive_input_scales_each_band_before_its_projection():
    from fairseq.modules import AdaptiveInput

    from delight_fairseq.models.adaptive_input import DeLighTAdaptiveInput

    torch.manual_seed(0)
    ours = DeLighTAdaptiveInput(200, 1, 32, 2.0, 32, [50, 120])
    # their initialisation: the bands after the first start at zero
    assert all(torch.all(band[0].weight == 0) for band in ours.embeddings[1:])
    assert ours.embeddings[0][0].weight.std() > 0 and torch.all(ours.embeddings[0][0].weight[1] == 0)
    for band in ours.embeddings[1:]:
        torch.nn.init.normal_(band[0].weight)
    plain = AdaptiveInput(200, 1, 32, 2.0, 32, [50, 120])
    plain.load_state_dict(ours.state_dict())
    tokens = torch.tensor([[4, 60, 150, 49], [50, 119, 120, 199]])  # B x T across the three bands
    for i, (lo, hi) in enumerate([(0, 50), (50, 120), (120, 200)]):
        mask = (tokens >= lo) & (tokens < hi)
        scale = (32 / 2**i) ** 0.5  # sqrt of the band's width: 32, 16, 8
        lookup, projection = ours.embeddings[i]
        torch.testing.assert_close(ours(tokens)[mask], projection(lookup(tokens[mask] - lo) * scale))
        torch.testing.assert_close(plain(tokens)[mask], projection(lookup(tokens[mask] - lo)))  # fairseq's: no scale


def test_define_embedding_in_the_translation_model():
    model = build_model(tiny_cfg(define_embedding=True, define_expand_dim=96, define_depth=3, define_max_groups=4)).eval()
    for emb, dim in ((model.encoder.embed_tokens, 64), (model.decoder.embed_tokens, 48)):
        assert isinstance(emb, DeFINEEmbedding) and emb.embedding_dim == dim
    src = torch.randint(4, 40, (2, 6))
    prev = torch.randint(4, 36, (2, 5))
    enc = model.encoder(src)
    full = model.decoder(prev, enc)[0]
    state = {}
    steps = [model.decoder(prev[:, : t + 1], enc, incremental_state=state)[0] for t in range(5)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ConfigError, match="--define-no-reduce"):
        build_model(tiny_cfg(define_embedding=True, define_no_reduce=True))
