"""Correlation maps of word embeddings (DeFINE's Fig. 15)."""
import subprocess
import sys

import pytest
import torch

from conftest import REPO, build_lm, lm_cfg
from delight_fairseq.analysis.correlation import correlation_map, distance_to_identity, embedding_maps


def test_an_orthogonal_embedding_gives_the_identity_and_a_low_rank_one_does_not():
    q, _ = torch.linalg.qr(torch.randn(50, 16, dtype=torch.double))  # 50 x 16, orthonormal columns
    corr = correlation_map(q * torch.linspace(1, 5, 16))  # column scale does not matter
    torch.testing.assert_close(corr, torch.eye(16, dtype=torch.double))
    assert distance_to_identity(corr) < 1e-12
    low = torch.randn(50, 2) @ torch.randn(2, 16)  # rank 2: dimensions strongly correlated
    assert distance_to_identity(correlation_map(low)) > 0.3
    rank1 = torch.rand(50, 1) @ torch.rand(1, 16)  # every dimension the same up to scale
    assert abs(distance_to_identity(correlation_map(rank1)) - (15 / 16) ** 0.5) < 1e-9


def test_define_embedding_gives_one_map_per_group_transform_layer():
    model = build_lm(lm_cfg("define_lm_small"))  # DeFINE n 64 -> k 256 (depth 2) -> d 128
    maps = embedding_maps(model.decoder.embed_tokens, 200, first=4)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "map": (64, 64), "hgt layer 1": (160, 160), "hgt layer 2": (256, 256), "embedding": (128, 128)}  # widths 160, 256
    for m in maps.values():
        torch.testing.assert_close(m.diagonal(), torch.ones(m.shape[0], dtype=m.dtype))  # unit columns


def test_the_script_draws_the_maps_of_a_trained_checkpoint(toy_checkpoint, tmp_path):
    out = tmp_path / "map.png"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "correlation_map.py"),
                           str(toy_checkpoint / "checkpoint_last.pt"), "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "embedding" in proc.stdout and "distance to identity" in proc.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = subprocess.run([sys.executable, str(REPO / "scripts" / "correlation_map.py"), str(tmp_path / "none.pt"),
                          "--out", str(out)], capture_output=True, text=True)
    assert bad.returncode == 1 and "no checkpoint at" in bad.stderr


def map_names(checkpoint, out):
    """The maps ``scripts/correlation_map.py CHECKPOINT --out OUT`` prints, in order."""
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "correlation_map.py"), str(checkpoint), "--out", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [line.split("  ")[0].strip() for line in proc.stdout.splitlines() if "distance to identity" in line]


def test_the_script_draws_one_map_per_define_layer_of_a_language_model(trained_models, tmp_path):
    ckpt = trained_models("define+delight")  # define_lm_small, trained through fairseq-train
    assert map_names(ckpt, tmp_path / "lm.png") == ["map", "hgt layer 1", "hgt layer 2", "embedding"]


# the DeFINE paper's hosts, each trained through fairseq-train (conftest.TRAINED)
DEFINE_HOSTS = {"define_lstm_lm_small": "lstm+define+awd", "define_transformer_xl_small": "define_transformer_xl_small",
                "define_transformer_small": "define_transformer_small"}


@pytest.mark.parametrize("arch", sorted(DEFINE_HOSTS))
def test_the_script_reads_every_define_host(arch, trained_models, tmp_path):
    names = map_names(trained_models(DEFINE_HOSTS[arch]), tmp_path / "map.png")
    assert names == ["map", "hgt layer 1", "hgt layer 2", "embedding"]
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
