"""define_transformer: fairseq's transformer with DeFINE embeddings and a d -> n tied
output; its sizes, incremental decoding, and a run through fairseq-train, fairseq-generate
and fairseq-hydra-train."""
import re
from types import SimpleNamespace

import pytest
import sacrebleu
import torch
from fairseq import options

from conftest import PLUGIN, REPO, num_params, run_cli
from delight_fairseq.modules.errors import ConfigError
from delight_fairseq.models.delight_transformer import WMT14_EN_DE_VOCAB
from delight_fairseq.models.factory import dictionary_of_size




def build(arch: str, vocab: int = 200, *extra, seed: int = 0):
    """The model ``fairseq-train --arch ARCH EXTRA...`` builds, on a joined dictionary."""
    import delight_fairseq.models  # noqa: F401
    from fairseq.models import ARCH_MODEL_REGISTRY

    args = options.parse_args_and_arch(options.get_training_parser(),
                                       ["/dev/null", "--task", "translation", "--arch", arch, *map(str, extra)])
    d = dictionary_of_size(vocab)
    torch.manual_seed(seed)
    return ARCH_MODEL_REGISTRY[arch].build_model(args, SimpleNamespace(source_dictionary=d, target_dictionary=d))


def test_wmt_preset_sizes_and_the_saving():
    """Transformer base vs the same with DeFINE (n 128, k 1024, N 3) on the WMT'14 En-De
    dictionary of the DeLighT presets; the paper reports 26% fewer parameters."""
    base = num_params(build("define_transformer_wmt_en_de_baseline", WMT14_EN_DE_VOCAB))
    define = num_params(build("define_transformer_wmt_en_de", WMT14_EN_DE_VOCAB))
    assert (base, define) == (66_531_328, 51_422_226)
    assert 1 - define / base == pytest.approx(0.227, abs=0.001)


def test_define_embedding_and_tied_output_layout():
    model = build("define_transformer_small")
    emb = model.encoder.embed_tokens
    assert model.decoder.embed_tokens is emb  # one DeFINE shared by encoder, decoder and output
    assert emb.table.weight.shape == (200, 32) and emb.embedding_dim == 64
    assert emb.expand.layout == [(80, 2), (128, 1)] and emb.reduce.weight.shape == (64, 128)
    assert model.decoder.project_out_dim.weight.shape == (32, 64)  # d -> n, no bias
    assert model.decoder.project_out_dim.bias is None
    assert model.decoder.output_projection.weight is emb.table.weight  # logits against the V x n table
    assert model.encoder.embed_scale == 1.0 and model.decoder.embed_scale == 1.0  # the map scales itself


def test_without_define_it_is_fairseqs_transformer():
    from fairseq.models.transformer import TransformerModel

    import delight_fairseq.models  # noqa: F401
    from fairseq.models import ARCH_MODEL_REGISTRY

    ours = build("define_transformer_wmt_en_de_baseline", 1000)
    args = options.parse_args_and_arch(options.get_training_parser(),
                                       ["/dev/null", "--task", "translation", "--arch", "transformer_wmt_en_de",
                                        "--share-all-embeddings"])
    d = dictionary_of_size(1000)
    torch.manual_seed(0)
    theirs = ARCH_MODEL_REGISTRY["transformer_wmt_en_de"].build_model(args, SimpleNamespace(source_dictionary=d,
                                                                                            target_dictionary=d))
    assert isinstance(ours, TransformerModel)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_incremental_decoding_equals_the_full_pass():
    model = build("define_transformer_small").eval()
    src = torch.randint(4, 200, (3, 7))
    tgt = torch.randint(4, 200, (3, 6))
    lengths = torch.full((3,), 7)
    full = model(src, lengths, tgt)[0]  # B x T x V
    enc = model.encoder(src, lengths)
    state, steps = {}, []
    for t in range(tgt.size(1)):
        steps.append(model.decoder(tgt[:, : t + 1], encoder_out=enc, incremental_state=state)[0])
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)


def test_bad_define_options_name_their_flags():
    with pytest.raises(ConfigError, match="--define-expand-dim"):
        build("define_transformer_small", 200, "--define-expand-dim", 16)  # k < n
    with pytest.raises(ConfigError, match="--define-dropout must be in"):
        build("define_transformer_small", 200, "--define-dropout", 1.5)


@pytest.fixture
def trained(trained_models):
    return trained_models("define_transformer_small")


def test_it_learns_the_toy_task(toy_bin, trained):
    out = run_cli("generate", toy_bin, "--path", trained, "--user-dir", PLUGIN, "--cpu", "--gen-subset", "test",
                  "--beam", 5, "--batch-size", 50).stdout
    hyps = dict(re.findall(r"^H-(\d+)\t\S+\t(.*)$", out, re.M))
    refs = dict(re.findall(r"^T-(\d+)\t(.*)$", out, re.M))
    assert len(hyps) == 100
    bleu = sacrebleu.corpus_bleu([hyps[i] for i in sorted(hyps)], [[refs[i] for i in sorted(hyps)]]).score
    assert bleu > 95, f"BLEU {bleu:.1f} after 400 updates"  # the demo reaches 100
    # and from Python: fairseq's hub interface through the plugin's class
    from delight_fairseq import DefineTransformerModel

    hub = DefineTransformerModel.from_pretrained(str(trained.parent), trained.name, str(toy_bin))
    assert hub.translate("a1 a2 a3", beam=5) == "B3 B2 B1"


def test_hydra_trains_the_preset(toy_bin, tmp_path):
    """The toy experiment's config with its model swapped for the preset, through
    fairseq-hydra-train (``model._name`` is the --arch name, options beside it)."""
    toy = (REPO / "configs" / "toy_translation.yaml").read_text()
    head, rest = toy.split("\nmodel:\n", 1)
    rest = rest[rest.index("\noptimizer:"):]
    (tmp_path / "toy_define.yaml").write_text(head + "\nmodel:\n  _name: define_transformer_small\n"
                                              "  define_expand_dim: 256\n" + rest)
    run_cli("hydra_train", "--config-dir", tmp_path, "--config-name", "toy_define", f"task.data={toy_bin}",
            f"common.user_dir={PLUGIN}", f"checkpoint.save_dir={tmp_path / 'ckpt'}", "optimization.max_update=3",
            cwd=tmp_path)
    state = torch.load(tmp_path / "ckpt" / "checkpoint_last.pt", weights_only=True)
    assert state["cfg"]["model"]["_name"] == "define_transformer_small"
    assert state["model"]["encoder.embed_tokens.table.weight"].shape[1] == 32  # the preset's n
    assert state["model"]["encoder.embed_tokens.reduce.weight"].shape == (64, 256)  # k from the config
