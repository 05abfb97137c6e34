"""define_transformer_xl: fairseq's Transformer-XL (examples/truncated_bptt, over Hugging
Face's TransfoXL) with DeFINE embeddings: sizes against the paper, the tied output, memory
(incremental) decoding, and a run through fairseq-train / fairseq-eval-lm."""
import re
from types import SimpleNamespace

import pytest
import torch

from conftest import PLUGIN, run_cli, seen_and_unseen
from delight_fairseq.modules.errors import ConfigError
from delight_fairseq.models.factory import dictionary_of_size, preset_config

def build(arch="define_transformer_xl_small", vocab=200, seed=0, **overrides):
    from delight_fairseq.models.define_transformer_xl import DefineTransformerXLLanguageModel

    cfg = preset_config(arch, overrides)
    cfg.max_target_positions = None
    torch.manual_seed(seed)
    d = dictionary_of_size(vocab)
    return DefineTransformerXLLanguageModel.build_model(cfg, SimpleNamespace(source_dictionary=d, target_dictionary=d))


def test_define_embedding_and_tied_adaptive_softmax():
    model = build()
    hf = model.decoder.model
    emb = hf.transformer.word_emb
    assert emb.table.weight.shape == (200, 32) and emb.embedding_dim == 64  # V x n lookup, n -> k -> d
    assert hf.crit.out_layers[0].weight is emb.table.weight  # logits against the lookup
    projs = list(hf.crit.out_projs)
    assert len(projs) == 3 and all(p.shape == (64, 32) for p in projs)  # d -> n, one per cluster
    assert len({id(p) for p in projs}) == 3


def test_memory_decoding_equals_the_full_pass():
    model = build(mem_len=16).eval()
    tokens = torch.randint(4, 200, (2, 10))
    full = model.get_normalized_probs(model(tokens), log_probs=True)  # B x T x V
    state, steps = {}, []
    for t in range(tokens.size(1)):
        steps.append(model.get_normalized_probs(model.decoder(tokens[:, : t + 1], incremental_state=state),
                                                log_probs=True))
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-4)


def test_bad_options_name_their_flags():
    with pytest.raises(ConfigError, match="--div-val 1"):
        build(div_val=2)
    with pytest.raises(ConfigError, match="--define-expand-dim"):
        build(define_expand_dim=16)


def test_trains_and_evaluates_through_fairseq(lm_data, trained_models):
    save = trained_models("define_transformer_xl_small").parent  # 400 updates through fairseq-train
    out = run_cli("eval_lm", lm_data / "bin", "--user-dir", PLUGIN, "--cpu", "--path", save / "checkpoint_last.pt",
                  "--task", "truncated_bptt_lm", "--batch-size", 1, "--required-batch-size-multiple", 1,
                  "--tokens-per-sample", 16, "--model-overrides", '{"mem_len":64,"clamp_len":48,"same_length":True}')
    ppl = float(re.search(r"Perplexity: ([\d.]+)", out.stderr).group(1))
    assert ppl < 154 / 10, f"test perplexity {ppl} (unigram ~154)"
    # from Python (fairseq's hub interface; the task's from_checkpoint fix in compat)
    from delight_fairseq import DefineTransformerXLLanguageModel

    lm = DefineTransformerXLLanguageModel.from_pretrained(str(save), "checkpoint_last.pt", str(lm_data / "bin"))
    word, seen, unseen = seen_and_unseen(lm_data)
    scores = {w: lm.score(f"{word} {w}")["positional_scores"] for w in (seen, unseen)}
    assert scores[seen][-1] > scores[unseen][-1] + 2.0, scores  # the second word: seen, e^2 times as likely at least
    sample = lm.sample(f"{word} {seen}", sampling=True, sampling_topk=5, beam=1, min_len=6, max_len_b=6).split()
    assert sample[:2] == [word, seen] and len(sample) == 6, sample
