"""Parameter and MAC accounting (the authors' way) against hand-computed values."""
import re
import subprocess
import sys

import torch.nn as nn

from conftest import REPO, build_model, make_dictionary, num_params, tiny_cfg
from delight_fairseq.modules import GroupLinear
from delight_fairseq.analysis.stats import translation_stats


def _weights(module, skip=()):
    """Weights of every Linear / group linear under ``module`` (per-token MACs)."""
    return sum(m.weight.numel() for m in module.modules()
               if isinstance(m, (nn.Linear, GroupLinear)) and m not in skip)


def test_macs_match_the_formulas():
    cfg = tiny_cfg(encoder_blocks=2, decoder_blocks=1, share_all_embeddings=True)
    model = build_model(cfg, src_dict=make_dictionary(40))
    S, T = 7, 5
    stats = translation_stats(model, S, T)
    d_enc, d_dec = 64 // 2, 48 // 2  # attention dims d_m / 2
    # encoder: every weight once per source token, self-attention S*S*D per block
    assert stats.macs["encoder"] == S * _weights(model.encoder) + 2 * S * S * d_enc
    # decoder, step t = 1..T: weights once, self-attention over t positions, cross over S;
    # the cross-attention keys/values are projected once, from the S source positions
    kv = [layer.encoder_attn.kv_proj for layer in model.decoder.layers]
    dec_weights = _weights(model.decoder, skip=(model.decoder.output_proj, *kv))
    assert stats.macs["decoder"] == (T * dec_weights + S * sum(m.weight.numel() for m in kv)
                                     + d_dec * T * (T + 1) // 2 + T * S * d_dec)
    # output: d_m -> map_dim, then V x map_dim logits, per generated token
    assert stats.macs["output"] == T * (48 * 16 + 40 * 16)
    assert stats.params == num_params(model)
    assert stats.embedding_params == 40 * 16  # the shared table, once
    assert [len(v) for v in stats.block_params.values()] == [2, 1]
    assert sum(map(sum, stats.block_params.values())) == sum(num_params(l) for l in model.encoder.layers) + sum(
        num_params(l) for l in model.decoder.layers)


def test_decoder_macs_grow_quadratically_with_the_target_length():
    model = build_model(tiny_cfg(decoder_blocks=1))
    a, b = translation_stats(model, 6, 4).macs["decoder"], translation_stats(model, 6, 8).macs["decoder"]
    d, kv = 48 // 2, model.decoder.layers[0].encoder_attn.kv_proj.weight.numel()
    # doubling T doubles the per-token and cross-attention parts; self-attention goes T(T+1)/2: 10 -> 36;
    # the keys/values of the 6 source positions are projected once whatever T is
    assert b - 2 * a == d * (36 - 2 * 10) - 6 * kv


def test_model_stats_command_on_a_preset_and_a_checkpoint(toy_checkpoint):
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "model_stats.py"), "--arch",
                          "delight_transformer_wmt14_en_de_256"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "parameters            13,788,584  (13.79M)" in out.stdout  # the published count
    assert "MACs, source 20 / target 20 tokens" in out.stdout
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "model_stats.py"), "--checkpoint",
                          str(toy_checkpoint / "checkpoint_last.pt"), "--src-len", "8"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    reported = re.search(r"num\. shared model params: ([\d,]+)", (toy_checkpoint / "train.log").read_text()).group(1)
    assert f"parameters               {reported}" in out.stdout  # what fairseq-train reported for the toy model
    bad = subprocess.run([sys.executable, str(REPO / "scripts" / "model_stats.py"), "--arch", "transformer",
                          "--vocab", "100"], capture_output=True, text=True)
    assert bad.returncode != 0 and "not a delight_transformer architecture" in bad.stderr


# the README's table (source and target of 20 tokens): params, encoder / decoder / output MACs, to the unit
PUBLISHED_MACS = {
    "delight_transformer_wmt14_en_de_128": (8_094_432, 21_977_280, 27_327_680, 111_964_160),
    "delight_transformer_wmt14_en_de_512": (36_763_788, 267_753_920, 352_070_080, 113_274_880),
    "delight_transformer_wmt14_en_de_640": (54_036_236, 416_401_600, 548_011_200, 113_602_560),
    "delight_transformer_wmt16_en_ro_384": (22_123_768, 151_413_120, 198_921_600, 90_501_120),
    "delight_transformer_iwslt_de_en": (19_238_776, 144_562_560, 198_009_600, 17_960_960),
}


def test_presets_params_and_macs_are_the_readme_table():
    """Literal counts (not derived from the model here), and the README's rounded table agrees."""
    from delight_fairseq.models.delight_transformer import PRESETS
    from delight_fairseq.models.factory import build_from_arch

    readme = (REPO / "docs" / "models.md").read_text()  # the MACs table (docs/models.md, "Parameters and MACs")
    for arch, (params, enc, dec, out) in PUBLISHED_MACS.items():
        preset = PRESETS[arch]
        stats = translation_stats(build_from_arch(arch, preset.vocab, preset.tgt_vocab), 20, 20)
        assert (stats.params, stats.macs["encoder"], stats.macs["decoder"], stats.macs["output"]) == (params, enc, dec, out)
        row = (f"| `{arch}` | {params / 1e6:.2f}M | {(params - stats.embedding_params) / 1e6:.2f}M | {enc / 1e6:.0f}M | "
               f"{dec / 1e6:.0f}M | {out / 1e6:.0f}M | {(enc + dec + out) / 1e9:.3f}G |")
        assert row in readme, row
