"""Inference-time caching (DeFINE Sec. 3.4): every model's DeFINE / DExTra embedding replaced
by a table of its words' vectors gives the same log-probabilities, through fairseq's loaders
(--model-overrides "{'cache_embeddings': True}"), fairseq-generate and the hub classes;
training with it is refused."""
from types import SimpleNamespace

import pytest
import torch

from conftest import PLUGIN, build_model, make_dictionary, run_cli, tiny_cfg
from delight_fairseq.modules.errors import ConfigError
from delight_fairseq.models.builders import cache_word_embeddings
from delight_fairseq.modules.delight_embedding import MappedEmbedding
from delight_fairseq.models.factory import preset_config


def _lm(arch, **overrides):
    from fairseq.models import ARCH_MODEL_REGISTRY

    cfg = preset_config(arch, overrides)
    cfg.max_target_positions, cfg.tokens_per_sample, cfg.tpu = None, 64, False
    d = make_dictionary(200)
    torch.manual_seed(0)
    return ARCH_MODEL_REGISTRY[arch].build_model(cfg, SimpleNamespace(source_dictionary=d, target_dictionary=d))


def _define_transformer():
    from fairseq import options
    from fairseq.models import ARCH_MODEL_REGISTRY

    args = options.parse_args_and_arch(options.get_training_parser(), ["DATA", "--task", "translation", "--arch",
                                                                       "define_transformer_small"])
    d = make_dictionary(40)
    torch.manual_seed(0)
    return ARCH_MODEL_REGISTRY["define_transformer_small"].build_model(args, SimpleNamespace(source_dictionary=d,
                                                                                            target_dictionary=d))


MODELS = {
    "delight_transformer (DExTra)": lambda: build_model(tiny_cfg(share_all_embeddings=False)),
    "delight_transformer + DeFINE": lambda: build_model(tiny_cfg(define_embedding=True, define_expand_dim=64,
                                                                 define_max_groups=2)),
    "define_lm (DeFINE, DeLighT blocks)": lambda: _lm("define_lm_small"),
    "define_lm (DeFINE over adaptive input)": lambda: _lm("define_lm_small", block_type="transformer", adaptive_input=True,
                                                          adaptive_input_cutoff="50,120", adaptive_input_factor=2),
    "define_lstm_lm (DeFINE)": lambda: _lm("define_lstm_lm_small"),
    "define_lstm_lm (projected lookup)": lambda: _lm("define_lstm_lm_small", define_embedding=False),
    "define_transformer (DeFINE)": _define_transformer,
    "define_transformer_xl (DeFINE)": lambda: _lm("define_transformer_xl_small"),
}


def _log_probs(model, tokens):
    if hasattr(model.decoder, "_mems"):
        model.decoder._mems = None  # Transformer-XL: no memory of an earlier call
    if hasattr(model, "encoder"):
        src = tokens.flip(1)
        return model.get_normalized_probs(model(src, torch.full((src.size(0),), src.size(1)), tokens), log_probs=True)
    return model.get_normalized_probs(model(tokens), log_probs=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_cached_words_give_the_same_log_probabilities(name):
    model = MODELS[name]().eval()
    tokens = torch.randint(4, 36, (3, 9))
    tokens[0, :2] = 1  # padding too
    with torch.no_grad():
        reference = _log_probs(model, tokens)
        cache_word_embeddings(model, SimpleNamespace(cache_embeddings=True))
        cached = _log_probs(model, tokens)
    embeddings = [m for m in model.modules() if isinstance(m, MappedEmbedding)]
    assert embeddings and all(m.word_cache is not None for m in embeddings)  # used: built on the first call
    assert all(m.word_cache.shape == (m.vocab_size, m.embedding_dim) for m in embeddings)
    torch.testing.assert_close(cached, reference, atol=1e-5, rtol=0)
    assert not any("word_cache" in k for k in model.state_dict())  # nothing of it is saved


def test_new_weights_rebuild_the_table_and_training_is_refused():
    model = _lm("define_lstm_lm_small").eval()
    cache_word_embeddings(model, SimpleNamespace(cache_embeddings=True))
    tokens = torch.randint(4, 200, (2, 5))
    with torch.no_grad():
        before = _log_probs(model, tokens)
        other = _lm("define_lstm_lm_small")
        other.decoder.embed_tokens.table.weight.data.mul_(3)
        model.load_state_dict(other.state_dict())
        after = _log_probs(model, tokens)
        other.eval()
        torch.testing.assert_close(after, _log_probs(other, tokens), atol=1e-5, rtol=0)
    assert (after - before).abs().max() > 1e-3
    with pytest.raises(ConfigError, match="cache_embeddings.*for inference"):
        model.train()


def test_a_model_without_an_expanded_embedding_has_nothing_to_cache():
    with pytest.raises(ConfigError, match="no DeFINE or DExTra embedding to cache"):
        cache_word_embeddings(_lm("define_lm_small", define_embedding=False, block_type="transformer",
                                  decoder_input_dim=128), SimpleNamespace(cache_embeddings=True))


def test_generate_and_the_hub_with_cached_embeddings(toy_checkpoint, toy_bin):
    from delight_fairseq import DeLighTTransformerModel

    ckpt = toy_checkpoint / "checkpoint_best.pt"
    common = ["generate", toy_bin, "--user-dir", PLUGIN, "--path", ckpt, "--cpu", "--beam", 4, "--batch-size", 50]
    plain = run_cli(*common).stdout
    cached = run_cli(*common, "--model-overrides", "{'cache_embeddings': True}").stdout
    hyps = [line for line in plain.splitlines() if line.startswith(("H-", "P-"))]
    assert len(hyps) == 200 and hyps == [line for line in cached.splitlines() if line.startswith(("H-", "P-"))]
    hub = DeLighTTransformerModel.from_pretrained(str(toy_checkpoint), "checkpoint_best.pt", str(toy_bin),
                                                  cache_embeddings=True)
    assert hub.translate("a1 a2 a3") == "B3 B2 B1"
    assert all(m.word_cache is not None for m in hub.models[0].modules() if isinstance(m, MappedEmbedding))


def test_training_with_cached_embeddings_is_one_line(toy_bin, tmp_path):
    from conftest import TOY_TRAIN_ARGS

    proc = run_cli("train", toy_bin, *TOY_TRAIN_ARGS, "--max-update", 1, "--save-dir", tmp_path, "--cache-embeddings",
                   check=False)
    assert proc.returncode != 0
    assert "cache_embeddings" in proc.stderr and "for inference" in proc.stderr and "Traceback" not in proc.stderr
