"""AWD-LSTM's training inside fairseq (delight_fairseq/training/): each piece against a
reference written here from AWD-LSTM's published algorithm (Merity et al., 2018; their
main.py), then the whole Penn Treebank recipe on generated text."""
import io
import math
import os
import re
import subprocess
from types import SimpleNamespace

import pytest
import torch

from conftest import PLUGIN, REPO, make_dictionary, run_cli
from delight_fairseq.modules.errors import ConfigError
from delight_fairseq.models.factory import preset_config
from delight_fairseq.training.awd_criterion import AWDCrossEntropyCriterion
from delight_fairseq.training.bptt_lm import BPTTLanguageModelingTask, StreamDataset, segment_bounds
from delight_fairseq.training.nt_asgd import FairseqNTASGD, NTASGD, NTASGDSchedule


def lstm(seed=0, **overrides):
    from delight_fairseq.models.define_lstm_lm import DefineLSTMLanguageModel

    cfg = preset_config("define_lstm_lm_small", dict(dict(dropout=0.0, dropout_input=0.0, dropout_hidden=0.0,
                                                          weight_drop=0.0, embed_word_dropout=0.0), **overrides))
    cfg.max_target_positions = None
    torch.manual_seed(seed)
    d = make_dictionary(200)
    return DefineLSTMLanguageModel.build_model(cfg, SimpleNamespace(source_dictionary=d, target_dictionary=d))


# ----- NT-ASGD ---------------------------------------------------------------------------------

def test_nt_asgd_is_sgd_then_torchs_asgd():
    """Before the switch: torch's SGD with weight decay. After: the weights move as SGD's and
    the average ax is what torch.optim.ASGD(t0=0, lambd=0) -- AWD-LSTM's switch target,
    created at the switch -- keeps, step by step."""
    torch.manual_seed(0)
    start = [torch.randn(5, 3), torch.randn(7)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(9)]
    ours = [p.clone().requires_grad_() for p in start]
    ref = [p.clone().requires_grad_() for p in start]
    opt, sgd = NTASGD(ours, lr=0.3, weight_decay=0.01), torch.optim.SGD(ref, lr=0.3, weight_decay=0.01)
    for g in grads[:4]:
        for p, q, gi in zip(ours, ref, g):
            p.grad, q.grad = gi.clone(), gi.clone()
        opt.step(), sgd.step()
    assert all(torch.equal(p, q) for p, q in zip(ours, ref)) and not opt.averaging
    opt.start_averaging()
    asgd = torch.optim.ASGD(ref, lr=0.3, t0=0, lambd=0.0, weight_decay=0.01)
    for g in grads[4:]:
        for p, q, gi in zip(ours, ref, g):
            p.grad, q.grad = gi.clone(), gi.clone()
        opt.step(), asgd.step()
        for p, q in zip(ours, ref):
            torch.testing.assert_close(p, q, rtol=0, atol=1e-6)
            torch.testing.assert_close(opt.state[p]["ax"], asgd.state[q]["ax"], rtol=0, atol=1e-6)


def _awd_switch_epoch(losses, nonmono):
    """AWD-LSTM's main.py: after each epoch's validation, switch when
    len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono]); then append."""
    history = []
    for epoch, loss in enumerate(losses, 1):
        if len(history) > nonmono and loss > min(history[:-nonmono]):
            return epoch
        history.append(loss)
    return None


@pytest.mark.parametrize("losses", [[5, 4, 3, 3.5, 3.4, 3.6, 2], [5, 4, 3, 2.9, 2.8], [5, 4.5, 4.6, 4.7, 4.8, 4.2]])
def test_the_switch_comes_when_awd_lstms_rule_says(losses):
    params = [torch.zeros(2, requires_grad=True)]
    optimizer = FairseqNTASGD(SimpleNamespace(lr=[1.0], weight_decay=0.0), params)
    schedule = NTASGDSchedule(SimpleNamespace(nonmono=2, lr=[1.0]), optimizer)
    switched = None
    for epoch, loss in enumerate(losses, 1):
        schedule.step(epoch, loss)
        if optimizer.optimizer.averaging and switched is None:
            switched = epoch
    assert switched == _awd_switch_epoch(losses, 2)
    assert (switched is None) == (losses == [5, 4, 3, 2.9, 2.8])  # the cases differ
    restored = NTASGDSchedule(SimpleNamespace(nonmono=2, lr=[1.0]), FairseqNTASGD(SimpleNamespace(lr=[1.0], weight_decay=0.0), params))
    restored.load_state_dict(schedule.state_dict())
    assert restored.losses == schedule.losses


def test_nt_asgd_schedule_needs_the_nt_asgd_optimizer():
    from fairseq.optim.sgd import SGD

    sgd = SGD(SimpleNamespace(lr=[1.0], momentum=0.0, weight_decay=0.0), [torch.zeros(2, requires_grad=True)])
    with pytest.raises(ConfigError, match="--optimizer nt_asgd"):
        NTASGDSchedule(SimpleNamespace(nonmono=5, lr=[1.0]), sgd)


def test_validation_sees_the_average_and_training_resumes_from_the_iterate(tmp_path):
    """--task bptt_lm swaps the averaged weights in before a validation and the SGD iterate
    back before the next step; a checkpoint written in between (the best one) holds the
    average, and its optimizer state brings the iterate back on resume."""
    model = lstm()
    params = list(model.parameters())
    optimizer = FairseqNTASGD(SimpleNamespace(lr=[0.5], weight_decay=0.0), params)
    task = BPTTLanguageModelingTask(SimpleNamespace(variable_bptt=False, tokens_per_sample=8), model.decoder.dictionary)
    tokens = torch.randint(4, 200, (3, 9))
    sample = {"net_input": {"src_tokens": tokens[:, :-1], "carry": False}, "target": tokens[:, 1:].contiguous(),
              "ntokens": 24, "nsentences": 3, "id": torch.arange(3)}
    criterion = AWDCrossEntropyCriterion(task, False, 0.0, 0.0)
    optimizer.optimizer.start_averaging()
    for _ in range(4):
        optimizer.zero_grad()
        task.train_step(sample, model, criterion, optimizer, 0)
        task.optimizer_step(optimizer, model, 0)
    iterate = [p.detach().clone() for p in params]
    average = [optimizer.optimizer.state[p]["ax"].clone() for p in params]
    assert not all(torch.equal(a, b) for a, b in zip(iterate, average))
    task.begin_valid_epoch(1, model)
    assert all(torch.equal(p, a) for p, a in zip(params, average))  # validation (and saving) sees the average
    checkpoint = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, checkpoint)
    task.train_step(sample, model, criterion, optimizer, 1)  # the next step starts from the iterate
    assert all(torch.equal(p, i) for p, i in zip(params, iterate))
    # resumed from the saved state: the model holds the average until the first step swaps it out
    saved = torch.load(io.BytesIO(checkpoint.getvalue()), weights_only=True)
    assert all(torch.equal(saved["model"][k], a) for k, a in zip(model.state_dict(), average))
    fresh = lstm(seed=5)
    fresh.load_state_dict(saved["model"])
    fresh_optimizer = FairseqNTASGD(SimpleNamespace(lr=[0.5], weight_decay=0.0), list(fresh.parameters()))
    fresh_optimizer.load_state_dict(saved["optimizer"])
    task.train_step(sample, fresh, criterion, fresh_optimizer, 1)
    assert all(torch.equal(p, i) for p, i in zip(fresh.parameters(), iterate))


# ----- AR / TAR ---------------------------------------------------------------------------------

def test_ar_and_tar_are_awd_lstms_penalties_in_training_only():
    model = lstm(dropout=0.5)
    tokens = torch.randint(4, 200, (3, 7))
    sample = {"net_input": {"src_tokens": tokens[:, :-1]}, "target": tokens[:, 1:].contiguous(), "ntokens": 18,
              "nsentences": 3}
    criterion = AWDCrossEntropyCriterion(SimpleNamespace(target_dictionary=model.decoder.dictionary), False, 2.0, 1.0)
    model.train()
    torch.manual_seed(3)
    loss, size, log = criterion(model, sample)
    torch.manual_seed(3)
    out, extra = model(tokens[:, :-1])
    raw, dropped = extra["last_raw"], extra["last_dropped"]  # T x B x C
    assert raw.shape == (6, 3, 128) and not torch.equal(raw, dropped)  # dropout acted between them
    ar = 2.0 * sum(float(v) ** 2 for v in dropped.detach().flatten()) / dropped.numel()  # AWD: alpha * h.pow(2).mean()
    tar = 1.0 * sum(float(a - b) ** 2 for a, b in zip(raw[1:].detach().flatten(), raw[:-1].detach().flatten())) / raw[1:].numel()
    nll = torch.nn.functional.cross_entropy(out.reshape(-1, out.size(-1)), sample["target"].view(-1), reduction="sum")
    assert float(log["ar"]) / 18 == pytest.approx(ar, rel=1e-5) and float(log["tar"]) / 18 == pytest.approx(tar, rel=1e-5)
    assert float(loss) == pytest.approx(float(nll) + 18 * (ar + tar), rel=1e-5) and float(log["loss"]) == pytest.approx(float(nll), rel=1e-5)
    model.eval()
    loss, _, log = criterion(model, sample)
    assert "ar" not in log and float(loss) == float(log["loss"])


# ----- carried state, variable BPTT --------------------------------------------------------------

def test_the_carried_state_continues_the_text_exactly():
    """Two segments with the state carried score the second as the whole text does; without
    it they do not; in training the carried state holds no graph."""
    model = lstm().eval()
    text = torch.randint(4, 200, (2, 13))
    full = model.get_normalized_probs(model(text), log_probs=True)[:, 6:]
    model(text[:, :6], carry=False)
    carried = model.get_normalized_probs(model(text[:, 6:], carry=True), log_probs=True)
    fresh = model.get_normalized_probs(model(text[:, 6:], carry=False), log_probs=True)
    torch.testing.assert_close(carried, full, atol=1e-5, rtol=0)
    assert (fresh - full).abs().max() > 1e-3
    model.train()
    model(text[:, :6], carry=False)
    assert all(not s.requires_grad for state in model.decoder._carried[True] for s in state)
    assert model.decoder._carried[False] is not model.decoder._carried[True]  # training and evaluation apart


def test_variable_bptt_lengths_follow_awd_lstm_and_are_fixed_by_the_seed():
    fixed = segment_bounds(1000, 70, False, 1, 1)
    assert [length for _, length in fixed] == [70] * 14 + [19] and fixed[-1][0] == 980  # 999 predictions
    bounds = segment_bounds(200_000, 70, True, 141, 3)
    lengths = torch.tensor([length for _, length in bounds[:-1]], dtype=torch.float)
    starts = [s for s, _ in bounds]
    assert starts == sorted(starts) and bounds[-1][0] + bounds[-1][1] == 199_999  # every token predicted once
    assert lengths.min() >= 5
    short = lengths < 52.5  # AWD: bptt/2 with probability 0.05, N(35, 5); else N(70, 5)
    assert short.float().mean().item() == pytest.approx(0.05, abs=0.01)
    assert lengths[~short].mean().item() == pytest.approx(69.5, abs=0.3)  # int() of N(70, 5)
    assert lengths[~short].std().item() == pytest.approx(5.0, abs=0.3)
    assert segment_bounds(200_000, 70, True, 141, 3) == bounds != segment_bounds(200_000, 70, True, 141, 4)


def test_the_step_uses_the_lr_scaled_by_length():
    class Recorder:
        lr = 30.0
        seen = []

        def get_lr(self):
            return self.lr

        def set_lr(self, lr):
            self.lr = lr

        def step(self):
            self.seen.append(self.lr)

    task = BPTTLanguageModelingTask(SimpleNamespace(variable_bptt=True, tokens_per_sample=70), make_dictionary(10))
    optimizer = Recorder()
    for lengths in ([35], [70, 84]):
        task._lengths = list(lengths)
        task.optimizer_step(optimizer, None, 0)
    assert optimizer.seen == [30.0 * 35 / 70, 30.0 * 77 / 70] and optimizer.lr == 30.0  # AWD: lr2 * seq_len / bptt


def test_streams_are_awd_lstms_batchify():
    tokens = torch.arange(103)
    data = StreamDataset(tokens, streams=4, shard=0, num_shards=1, bptt=7, variable=False, seed=1)
    assert data.streams.shape == (4, 25) and torch.equal(data.streams[1], torch.arange(25, 50))  # column = stream
    batches = data.batches(1)
    first, second = (data.collater([data[b[0]]]) for b in batches[:2])
    assert torch.equal(first["net_input"]["src_tokens"][2], torch.arange(50, 57))
    assert torch.equal(first["target"][2], torch.arange(51, 58)) and torch.equal(second["net_input"]["src_tokens"][2], torch.arange(57, 64))
    assert first["net_input"]["carry"] is False and second["net_input"]["carry"] is True
    shard = StreamDataset(tokens, streams=2, shard=1, num_shards=2, bptt=7, variable=False, seed=1)
    assert torch.equal(shard.streams, data.streams[2:])  # rank 1 of 2 reads streams 2 and 3


# ----- the whole recipe on generated text ----------------------------------------------------------

AWD_RECIPE = ["--task", "bptt_lm", "--tokens-per-sample", 20, "--variable-bptt", "--batch-size", 10,
              "--batch-size-valid", 5, "--criterion", "awd_cross_entropy", "--ar-alpha", 2, "--tar-beta", 1,
              "--optimizer", "nt_asgd", "--lr", 5, "--weight-decay", 1.2e-6, "--lr-scheduler", "nt_asgd",
              "--nonmono", 1, "--clip-norm", 0.25, "--num-workers", 0]


@pytest.fixture(scope="module")
def awd_run(lm_data, tmp_path_factory):
    """define_lstm_lm_small (AWD's regularisers on) trained 3 epochs with the PTB recipe."""
    save = tmp_path_factory.mktemp("awd")
    proc = run_cli("train", lm_data / "bin", "--user-dir", PLUGIN, "--cpu", "--arch", "define_lstm_lm_small",
                   *AWD_RECIPE, "--max-epoch", 3, "--save-dir", save, "--no-epoch-checkpoints", "--seed", 1,
                   "--log-format", "simple", "--log-interval", 50)
    return save, proc.stdout + proc.stderr


def test_the_ptb_recipe_trains_end_to_end(awd_run, lm_data):
    save, log = awd_run
    valid = [float(v) for v in re.findall(r"valid on 'valid' subset \| loss [\d.]+ \| ppl ([\d.]+)", log)]
    assert len(valid) == 3 and valid[-1] < 15  # the corpus's unigram perplexity is 154
    assert re.search(r"train \| epoch 001 \| loss [\d.]+ \| ar [\d.]+ \| tar [\d.]+", log)


def test_eval_with_the_carried_state_is_one_long_sequence(awd_run, lm_data):
    """fairseq-eval-lm --task bptt_lm (batch 1, 20-token segments) gives the perplexity of the
    whole test text scored in one pass; scripts/evaluate.sh ptb evaluates that way."""
    from fairseq import checkpoint_utils
    from fairseq.data import data_utils

    save, _ = awd_run
    out = run_cli("eval_lm", lm_data / "bin", "--user-dir", PLUGIN, "--cpu", "--task", "bptt_lm", "--path",
                  save / "checkpoint_best.pt", "--batch-size", 1, "--tokens-per-sample", 20)
    segmented = float(re.search(r"Loss \(base 2\): ([\d.]+)", out.stderr + out.stdout).group(1))
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(save / "checkpoint_best.pt")],
                                                                      arg_overrides={"data": str(lm_data / "bin")})
    model = models[0].eval()
    test = data_utils.load_indexed_dataset(str(lm_data / "bin" / "test"), task.dictionary)
    text = torch.cat([test[i] for i in range(len(test))]).unsqueeze(0)  # 1 x N
    with torch.no_grad():
        lprobs = model.get_normalized_probs(model(text[:, :-1]), log_probs=True)
    whole = -lprobs.gather(-1, text[:, 1:].unsqueeze(-1)).mean().item() / math.log(2)
    assert segmented == pytest.approx(whole, abs=1e-3)
    proc = subprocess.run(["bash", str(REPO / "scripts" / "evaluate.sh"), "ptb", str(save)], capture_output=True,
                          text=True, env={**os.environ, "DATA_DIR": str(lm_data / "bin")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert float(re.search(r"Loss \(base 2\): ([\d.]+)", proc.stdout).group(1)) == pytest.approx(whole, abs=1e-3)
