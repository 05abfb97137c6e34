"""The DeFINE paper's models (Mehta et al., ICLR 2020: Tables 1-4): every preset's parameters, ours
as literals beside the published counts (millions, two decimals), part by part."""
import runpy
from types import SimpleNamespace

import pytest
import torch

from conftest import REPO
from delight_fairseq.models.factory import dictionary_of_size, preset_config

WIKITEXT103_WORDS = 267_735  # the paper's vocabulary (fairseq's dictionary pads it to 267,744)
PTB_WORDS = 10_000


def _build(arch: str, vocab: int):
    """The preset on the meta device (sizes only, nothing allocated)."""
    from fairseq.models import ARCH_MODEL_REGISTRY

    cfg = preset_config(arch, {})
    cfg.max_target_positions = None
    d = dictionary_of_size(vocab)
    with torch.device("meta"):
        return ARCH_MODEL_REGISTRY[arch].build_model(cfg, SimpleNamespace(source_dictionary=d, target_dictionary=d))


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _parts(model):
    """(context, DeFINE, input-output) parameters, as the paper's tables split them."""
    decoder = model.decoder
    if hasattr(decoder, "model"):  # Transformer-XL
        context = decoder.model.transformer.layers
        shared = sum(p.numel() for p in decoder.model.transformer.parameters(recurse=False))  # one r_w/r_r bias
        embedding = decoder.model.transformer.word_emb
    else:
        context, shared, embedding = decoder.layers, 0, decoder.embed_tokens
    define = _count(embedding) - _count(embedding.table) if hasattr(embedding, "expand") else 0
    total = _count(model)
    return _count(context) + shared, define, total - _count(context) - shared - define


# preset: (context, DeFINE, in-out, total) ours; published the same columns
TABLE_1A = {  # WikiText-103, LSTM
    "define_lstm_lm_wiki103_r1": ((23_357_440, 0, 68_807_895, 92_165_335), (23.36, 0.00, 68.81, 92.17)),
    "define_lstm_lm_wiki103_r2": ((23_357_440, 0, 9_253_212, 32_610_652), (23.36, 0.00, 9.25, 32.61)),
    "define_lstm_lm_wiki103_r3": ((23_357_440, 437_120, 9_253_212, 33_047_772), (23.36, 0.41, 9.25, 33.02)),
    "define_lstm_lm_wiki103_r4": ((24_734_720, 1_564_722, 13_895_946, 40_195_388), (24.73, 1.83, 13.90, 40.46)),
    "define_lstm_lm_wiki103_r5": ((26_243_072, 4_688_948, 18_549_432, 49_481_452), (26.24, 3.89, 18.55, 48.69)),
}
TABLE_2 = {  # WikiText-103, Transformer-XL
    "define_transformer_xl_wiki103_base": ((41_068_040, 0, 110_039_498, 151_107_538), (41.07, 0.00, 110.04, 151.11)),
    "define_transformer_xl_wiki103_n384": ((36_251_240, 0, 103_078_310, 139_329_550), (36.25, 0.00, 103.08, 139.33)),
    "define_transformer_xl_wiki103_n384_define": ((36_251_240, 2_097_204, 103_078_310, 141_426_754), (36.25, 1.92, 103.08, 141.25)),
    "define_transformer_xl_wiki103_n256": ((36_251_240, 0, 69_201_062, 105_452_302), (36.25, 0.00, 69.20, 105.45)),
    "define_transformer_xl_wiki103_n256_define": ((36_251_240, 1_819_448, 69_201_062, 107_271_750), (36.25, 1.92, 69.20, 107.37)),
    "define_transformer_xl_wiki103_n128": ((36_251_240, 0, 34_733_990, 70_985_230), (36.25, 0.00, 34.73, 70.98)),
    "define_transformer_xl_wiki103_n128_define": ((36_251_240, 2_033_648, 34_733_990, 73_018_878), (36.25, 1.92, 34.73, 72.90)),
    "define_transformer_xl_wiki103_n64": ((36_251_240, 0, 17_500_454, 53_751_694), (36.25, 0.00, 17.50, 53.75)),
    "define_transformer_xl_wiki103_n64_define": ((36_251_240, 2_431_128, 17_500_454, 56_182_822), (36.25, 1.92, 17.50, 55.67)),
}


@pytest.mark.parametrize("arch", [*TABLE_1A, *TABLE_2])
def test_the_papers_wikitext103_models_part_by_part(arch):
    ours, published = {**TABLE_1A, **TABLE_2}[arch]
    model = _build(arch, WIKITEXT103_WORDS)
    context, define, inout = _parts(model)
    assert (context, define, inout, _count(model)) == ours
    # context and input-output are the paper's to 0.01M (they were derived to it); DeFINE's own count
    # is the nearest our DeFINE gets (scripts/fit_define_sizes.py), its difference is in docs/define.md
    assert context / 1e6 == pytest.approx(published[0], abs=0.0051)
    assert inout / 1e6 == pytest.approx(published[2], abs=0.0051 if "n128" not in arch else 0.0061)
    if not define:
        assert _count(model) / 1e6 == pytest.approx(published[3], abs=0.0051 if "n128" not in arch else 0.0061)


def test_penn_treebank_models():
    """Table 1c: AWD-LSTM 24M (24,221,600 on its 10,000 words: ours to the unit) and with DeFINE
    (n 128, k 1024, m 400, N 7) 20M published; AWD-LSTM's own LSTMs are 20.21M, so 20M cannot be
    reached with its context model (docs/define.md)."""
    awd, define = _build("define_lstm_lm_ptb_awd", PTB_WORDS), _build("define_lstm_lm_ptb", PTB_WORDS)
    assert _count(awd) == 24_221_600 and _count(define) == 22_804_144
    assert _parts(awd)[0] == _parts(define)[0] == 20_211_600 > 20e6
    assert define.decoder.embed_tokens.table.weight.shape == (PTB_WORDS, 128)
    assert [layer.in_features for layer in define.decoder.embed_tokens.expand.layers][0] == 128
    assert define.decoder.embed_tokens.reduce.out_features == 400 and len(define.decoder.embed_tokens.expand.layers) == 7


def test_the_define_fit_search_picks_the_presets_groups():
    """scripts/fit_define_sizes.py: no single g_max gives every row of Table 1a (nor of
    Table 2); each preset takes the nearest one."""
    script = runpy.run_path(str(REPO / "scripts" / "fit_define_sizes.py"), run_name="fit")
    results = script["fit"]()
    assert {name: r["max_groups"] for name, r in results.items()} == {
        "define_lstm_lm_wiki103_r3": 32, "define_lstm_lm_wiki103_r4": 128, "define_lstm_lm_wiki103_r5": 512,
        "define_transformer_xl_wiki103_n384_define": 128, "define_transformer_xl_wiki103_n256_define": 256,
        "define_transformer_xl_wiki103_n128_define": 128, "define_transformer_xl_wiki103_n64_define": 64,
    }
    assert all(not fits for fits in script["common_fits"](results).values())
    for name, r in results.items():
        assert preset_config(name, {}).define_max_groups == r["max_groups"]
        assert _parts(_build(name, WIKITEXT103_WORDS))[1] == r["params"]


def test_the_papers_translation_models():
    """Table 3: the Transformer base with DeFINE (n 128, k 1024, m 512, N 3) and without, with
    one shared table (fairseq's shape) and with separate source, target and output tables (the
    paper's 92M baseline, OpenNMT's): ours on our WMT'14 En-De dictionary of 43,736 entries. The
    paper's vocabulary is not stated; 92M implies three tables of ~31,160 words."""
    from fairseq import options
    from fairseq.models import ARCH_MODEL_REGISTRY

    counts, rest = {}, {}
    for arch in ("define_transformer_wmt_en_de_baseline", "define_transformer_wmt_en_de_baseline_separate",
                 "define_transformer_wmt_en_de"):
        args = options.parse_args_and_arch(options.get_training_parser(), ["DATA", "--task", "translation", "--arch", arch])
        d = dictionary_of_size(43_736)
        with torch.device("meta"):
            model = ARCH_MODEL_REGISTRY[arch].build_model(args, SimpleNamespace(source_dictionary=d, target_dictionary=d))
        counts[arch] = _count(model)
        rest[arch] = counts[arch] - sum(p.numel() for n, p in model.named_parameters()
                                        if "embed_tokens" in n or "output_projection" in n)
    assert counts == {"define_transformer_wmt_en_de_baseline": 66_531_328,
                      "define_transformer_wmt_en_de_baseline_separate": 111_316_992,
                      "define_transformer_wmt_en_de": 51_422_226}
    body = rest["define_transformer_wmt_en_de_baseline_separate"]
    assert body == rest["define_transformer_wmt_en_de_baseline"] == 44_138_496  # 6 + 6 layers of d 512, FFN 2048
    assert (92e6 - body) / (3 * 512) == pytest.approx(31_160, abs=1)


def test_the_small_presets_sizes():
    """docs/define.md: the CPU presets on toy dictionaries (200 words; the translation one 40)."""
    assert _count(_build("define_lstm_lm_small", 200)) == 710_336
    assert _count(_build("define_transformer_xl_small", 200)) == 112_106
