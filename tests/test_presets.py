"""Named architectures against the authors' models: parameter counts to the unit (the
authors' code and its published tables), dropouts as their arch functions set them."""
import argparse

import pytest
from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY

from conftest import build_model, make_dictionary, num_params
from delight_fairseq.models.delight_config import DeLighTTransformerConfig
from delight_fairseq.models.delight_transformer import PRESETS

# what the authors' code counts (WMT'14 En-De with its 43,736-entry joined dictionary,
# IWSLT'14 De-En with separate dictionaries de 8,848 / en 6,632)
EXACT = {
    "delight_transformer_wmt14_en_de_128": 8_094_432,
    "delight_transformer_wmt14_en_de_256": 13_788_584,
    "delight_transformer_wmt14_en_de_384": 23_246_072,
    "delight_transformer_wmt14_en_de_512": 36_763_788,
    "delight_transformer_wmt14_en_de_640": 54_036_236,
    "delight_transformer_iwslt_de_en": 19_238_776,
}
# published to 0.01M (DeLighT Table 1)
ROUNDED = {
    "delight_transformer_wmt14_en_fr_128": 8.19, "delight_transformer_wmt14_en_fr_256": 13.89,
    "delight_transformer_wmt14_en_fr_384": 23.35, "delight_transformer_wmt14_en_fr_512": 36.86,
    "delight_transformer_wmt14_en_fr_640": 54.14,
    "delight_transformer_wmt16_en_ro_128": 6.97, "delight_transformer_wmt16_en_ro_256": 12.67,
    "delight_transformer_wmt16_en_ro_384": 22.12,
}
# (dropout = FFN dropout, attention dropout, DExTra dropout) from the authors' arch functions
DROPOUTS = {
    "wmt14_en_de": {128: (0.04, 0.01, 0.0), 256: (0.07, 0.03, 0.0), 384: (0.11, 0.04, 0.0), 512: (0.15, 0.05, 0.0), 640: (0.19, 0.06, 0.0)},
    "wmt14_en_fr": {128: (0.01, 0.01, 0.0), 256: (0.03, 0.03, 0.0), 384: (0.04, 0.04, 0.0), 512: (0.05, 0.05, 0.0), 640: (0.06, 0.06, 0.0)},
    "wmt16_en_ro": {128: (0.04, 0.01, 0.03), 256: (0.07, 0.03, 0.05), 384: (0.11, 0.04, 0.08)},
}


def build_preset(name, **overrides):
    preset = PRESETS[name]
    src = make_dictionary(preset.vocab)
    tgt = make_dictionary(preset.tgt_vocab, "t") if preset.tgt_vocab else src
    return build_model(DeLighTTransformerConfig(**preset.overrides(), **overrides), src_dict=src, tgt_dict=tgt)


@pytest.mark.parametrize("name", sorted(EXACT))
def test_preset_equals_the_authors_count_to_the_unit(name):
    assert PRESETS[name].params == EXACT[name]
    assert num_params(build_preset(name)) == EXACT[name]


@pytest.mark.parametrize("name", sorted(ROUNDED))
def test_one_dictionary_size_gives_every_published_count_of_its_table(name):
    assert round(num_params(build_preset(name)) / 1e6, 2) == ROUNDED[name]


def test_the_authors_block_widths_at_d_m_512():
    """Issue #11, rule 1: block 7 (N 7) is 256, 664, 1072, 1472, 1064, 664, 256."""
    model = build_preset("delight_transformer_wmt14_en_de_512")
    dextra = model.encoder.layers[6].dextra
    assert [dextra.input_layer.out_features] + [l.out_features for l in dextra.glt_layers] == [256, 256, 664, 1072, 1472, 1064, 664, 256]
    # the embedding DExTra (rule 2): 128 -> 256 | 256 -> 256 g2 | 512 -> 256 g4 | 512 -> 256 g4 | 512 -> 512 g2 | 768 -> 512
    emb = model.encoder.embed_tokens.expand
    layers = [emb.input_layer, *emb.glt_layers, emb.output_layer]
    assert [(l.in_features, l.out_features, l.groups) for l in layers] == [
        (128, 256, 1), (256, 256, 2), (512, 256, 4), (512, 256, 4), (512, 512, 2), (768, 512, 1)]
    # the output projection d_m -> map_dim has no bias (rule 3), and there is none at d_m 128
    assert model.decoder.output_proj.bias is None and model.decoder.output_proj.weight.shape == (128, 512)
    assert build_preset("delight_transformer_wmt14_en_de_128").decoder.output_proj is None


def test_block_width_multipliers_are_rounded_to_three_places():
    """Rule 4: w_b = round(linspace(2, 3, 8), 3). At d_m 640 block 5 (0-based) shows it: its
    widest layer is floor(2.714 * 640) = 1736, where the unrounded 2.7142857 gives 1737 -> 1744."""
    from delight_fairseq.models.delight_config import block_configs

    cfg = DeLighTTransformerConfig(**PRESETS["delight_transformer_wmt14_en_de_640"].overrides())
    assert [b.dextra.width_mult for b in block_configs(cfg, "encoder")] == [2.0, 2.143, 2.286, 2.429, 2.571, 2.714, 2.857, 3.0]
    model = build_preset("delight_transformer_wmt14_en_de_640")
    assert [l.out_features for l in model.encoder.layers[5].dextra.glt_layers] == [320, 1032, 1736, 1736, 1032, 320]


def test_iwslt_preset_ties_only_the_decoder_tables():
    model = build_preset("delight_transformer_iwslt_de_en")
    assert model.encoder.embed_tokens.table.weight.shape == (8848, 128)
    assert model.decoder.embed_tokens.table.weight.shape == (6632, 128)
    assert model.decoder.output_weight is None  # logits against the decoder's own table


@pytest.mark.parametrize("dataset", sorted(DROPOUTS))
def test_dropouts_are_the_authors(dataset):
    for d_m, (dropout, attention, dextra) in DROPOUTS[dataset].items():
        o = PRESETS[f"delight_transformer_{dataset}_{d_m}"].overrides()
        assert (o["dropout"], o["ffn_dropout"], o["attention_dropout"], o["dextra_dropout"]) == (dropout, dropout, attention, dextra)
        assert (o["activation_dropout"], o["embed_dropout"], o["pos_dropout"]) == (0.0, 0.1, 0.1)
    o = PRESETS["delight_transformer_iwslt_de_en"].overrides()
    assert (o["dropout"], o["ffn_dropout"], o["attention_dropout"], o["dextra_dropout"]) == (0.23, 0.23, 0.08, 0.08)


def test_dropouts_follow_the_authors_formulas():
    """The table's literal values are what the authors' arch functions compute."""

    def authors(scale, d_m, base=1024.0, cap=0.3):
        return max(0.0, min(cap, round(scale / (base / d_m), 2)))

    for d_m in (128, 256, 384, 512, 640):
        assert DROPOUTS["wmt14_en_de"][d_m][:2] == (authors(0.3, d_m), authors(0.1, d_m, cap=0.1))
        assert DROPOUTS["wmt14_en_fr"][d_m][:2] == (authors(0.1, d_m, cap=0.1), authors(0.1, d_m, cap=0.1))
    for d_m in (128, 256, 384):
        assert DROPOUTS["wmt16_en_ro"][d_m][2] == authors(0.1, d_m, 512.0, 0.1)
    assert (authors(0.3, 384, 512.0), authors(0.1, 384, 512.0, 0.1)) == (0.23, 0.08)  # IWSLT


def test_paper_group_schedule_is_larger():
    """With groups from 1 (the paper's Eq. 3) the counts rise by 8.5% (d_m 128) to 41% (d_m 640)."""
    for d_m, ratio in [(128, 1.085), (640, 1.411)]:
        name = f"delight_transformer_wmt14_en_de_{d_m}"
        paper = num_params(build_preset(name, dextra_schedule="paper"))
        assert round(paper / EXACT[name], 3) == ratio


def test_every_preset_is_a_registered_arch_that_sets_its_fields():
    for name, preset in PRESETS.items():
        assert ARCH_MODEL_REGISTRY[name].__name__ == "DeLighTTransformerModel"
        args = argparse.Namespace()
        ARCH_CONFIG_REGISTRY[name](args)
        assert {k: getattr(args, k) for k in preset.overrides()} == preset.overrides()
        # a value given on the command line wins over the preset
        args = argparse.Namespace(encoder_embed_dim=96)
        ARCH_CONFIG_REGISTRY[name](args)
        assert args.encoder_embed_dim == 96
