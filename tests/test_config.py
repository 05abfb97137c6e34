"""Impossible configurations fail at build time with a message naming the option."""
import argparse
import subprocess
import sys

import pytest
import torch

from conftest import PLUGIN, build_model, make_dictionary, run_cli, tiny_cfg
from delight_fairseq import ConfigError


@pytest.mark.parametrize(
    "overrides, flag",
    [
        (dict(encoder_embed_dim=100), "--encoder-max-groups"),  # 50 not divisible by g_max 4
        (dict(decoder_embed_dim=63), "--decoder-embed-dim"),
        (dict(encoder_min_depth=6, encoder_max_depth=4), "--encoder-min-depth"),
        (dict(dropout=-0.1), "--dropout"),
        (dict(attention_dropout=1.0), "--attention-dropout"),
        (dict(activation_fn="tanh"), "--activation-fn"),
        (dict(norm_type="bn"), "--norm-type"),
        (dict(decoder_ffn_reduction=5), "--decoder-ffn-reduction"),
        (dict(embed_max_groups=3), "--embed-max-groups"),
        (dict(decoder_blocks=0), "--decoder-blocks"),
    ],
)
def test_bad_option_is_named(overrides, flag):
    with pytest.raises(ConfigError, match=flag):
        build_model(tiny_cfg(**overrides))


def test_all_errors_are_reported_at_once():
    with pytest.raises(ConfigError) as e:
        build_model(tiny_cfg(dropout=2.0, encoder_min_depth=9))
    assert "--dropout" in str(e.value) and "--encoder-min-depth" in str(e.value)


def test_share_all_embeddings_needs_a_joined_dictionary():
    with pytest.raises(ConfigError, match="--joined-dictionary"):
        build_model(tiny_cfg(share_all_embeddings=True), src_dict=make_dictionary(40), tgt_dict=make_dictionary(36, "t"))


def test_cli_prints_the_error_without_a_traceback(toy_bin, tmp_path):
    proc = run_cli(
        "train", toy_bin, "--user-dir", PLUGIN, "--cpu", "--arch", "delight_transformer_wmt14_en_de_128",
        "--encoder-min-depth", 9, "--max-tokens", 500, "--save-dir", tmp_path / "ckpt", check=False,
    )
    assert proc.returncode != 0
    assert "--encoder-min-depth (9) must be >= 1 and <= --encoder-max-depth (8)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "ckpt" / "checkpoint_last.pt").exists()


def test_argparse_namespace_checkpoints_load_with_weights_only(tmp_path):
    """torch >= 2.6 refuses argparse.Namespace in weights_only loads; the plugin allows it."""
    path = tmp_path / "legacy.pt"
    torch.save({"args": argparse.Namespace(arch="transformer")}, path)
    code = f"import torch; print(torch.load({str(path)!r}, weights_only=True)['args'].arch)"
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert plain.returncode != 0 and "Namespace" in plain.stderr
    fixed = subprocess.run([sys.executable, "-c", "import delight_fairseq.models; " + code], capture_output=True, text=True)
    assert fixed.returncode == 0 and fixed.stdout.strip() == "transformer"


def test_no_glt_shuffle_turns_the_shuffle_off():
    shuffled = build_model(tiny_cfg()).encoder.layers[0].dextra.glt_layers[1]
    plain = build_model(tiny_cfg(no_glt_shuffle=True)).encoder.layers[0].dextra.glt_layers[1]
    assert shuffled.groups > 1 and shuffled.shuffle and not plain.shuffle


def test_token_blocks_split_at_eos_under_numpy_2():
    """fairseq-fixed uses np.compat.long (gone in NumPy 2) for --sample-break-mode eos."""
    from fairseq.data import TokenBlockDataset

    sentences = [torch.tensor([5, 6, 2]), torch.tensor([7, 2])]
    blocks = TokenBlockDataset(sentences, [3, 2], block_size=None, pad=1, eos=2, break_mode="eos")
    assert [blocks[i].tolist() for i in range(len(blocks))] == [[5, 6, 2], [7, 2]]


def test_checkpoint_of_another_model_or_dictionary_fails_clearly(toy_checkpoint, toy_bin, tmp_path):
    state = torch.load(toy_checkpoint / "checkpoint_last.pt", weights_only=True)["model"]
    other_size = build_model(tiny_cfg(share_all_embeddings=True), src_dict=make_dictionary(56))
    with pytest.raises(ConfigError) as e:
        other_size.load_state_dict(state)
    assert "parameters have other shapes" in str(e.value) and "in the checkpoint" in str(e.value)
    # the data's dictionary grew: the error names both sizes
    proc = run_cli("generate", toy_bin, "--user-dir", PLUGIN, "--cpu", "--path", toy_checkpoint / "checkpoint_last.pt",
                   "--model-overrides", "{'encoder_blocks': 3}", "--beam", 2, check=False)
    assert proc.returncode != 0 and "does not fit this model" in proc.stderr and "Traceback" not in proc.stderr
    grown = tmp_path / "bin"
    grown.mkdir()
    for f in toy_bin.iterdir():
        (grown / f.name).write_bytes(f.read_bytes())
    with open(grown / "dict.src.txt", "a") as f:
        f.write("extra1 1\nextra2 1\nextra3 1\nextra4 1\nextra5 1\nextra6 1\nextra7 1\nextra8 1\n")
    (grown / "dict.tgt.txt").write_text((grown / "dict.src.txt").read_text())
    proc = run_cli("generate", grown, "--user-dir", PLUGIN, "--cpu", "--path", toy_checkpoint / "checkpoint_last.pt",
                   "--beam", 2, check=False)
    assert proc.returncode != 0 and "the source dictionary has 56 entries in the checkpoint, 64 in the data" in proc.stderr
