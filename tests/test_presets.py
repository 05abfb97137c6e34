"""Named architectures against the published parameter counts (DESIGN.md)."""
import argparse

import pytest
from fairseq.models import ARCH_CONFIG_REGISTRY, ARCH_MODEL_REGISTRY

from conftest import build_model, make_dictionary, num_params
from delight_fairseq.models.delight_config import DeLighTTransformerConfig
from delight_fairseq.models.delight_transformer import PRESETS

SIZED = {name: p for name, p in PRESETS.items() if name.split("_")[-1].isdigit()}


@pytest.mark.parametrize("name", sorted(SIZED))
def test_preset_matches_published_parameter_count(name):
    preset = SIZED[name]
    model = build_model(DeLighTTransformerConfig(**preset.overrides()), src_dict=make_dictionary(preset.vocab))
    n = num_params(model)
    # the issue asks for 3%; we are within 0.3% everywhere (exact at d_m 256, see README)
    assert abs(n - preset.params) / preset.params < 0.003, (n, preset.params)


def test_wmt14_en_de_256_is_exact():
    preset = PRESETS["delight_transformer_wmt14_en_de_256"]
    model = build_model(DeLighTTransformerConfig(**preset.overrides()), src_dict=make_dictionary(preset.vocab))
    assert num_params(model) == 13_788_584


def test_paper_group_schedule_is_larger():
    """DESIGN.md: with groups from 1 the counts rise by 8.5% (d_m 128) to 41% (d_m 640)."""
    preset = PRESETS["delight_transformer_wmt14_en_de_128"]
    d = make_dictionary(preset.vocab)
    code = num_params(build_model(DeLighTTransformerConfig(**preset.overrides()), src_dict=d))
    paper = num_params(build_model(DeLighTTransformerConfig(**preset.overrides(), dextra_schedule="paper"), src_dict=d))
    assert 1.05 < paper / code < 1.12


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


def test_wmt_dropout_follows_the_recipe():
    assert [PRESETS[f"delight_transformer_wmt14_en_de_{d}"].dropout for d in (128, 256, 512)] == [0.04, 0.07, 0.15]
