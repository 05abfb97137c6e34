"""Behaviour defined over a sequence of steps (issue #31): AWD-LSTM's training as
``--task bptt_lm``, ``--optimizer nt_asgd`` and ``--lr-scheduler nt_asgd`` run it, several
batches and epochs at a time, against references written here step by step from AWD-LSTM's
published algorithm (Merity et al., 2018; their ``main.py``), not from our code's output:

- the hidden state carried from one *training* batch to the next (and reset at each
  epoch), variable segment lengths and the lr scaled by them, the AR/TAR loss, clipping;
- NT-ASGD's switch after ``nonmono`` validations that do not improve, the average kept
  from the switch on and validated, and a run resumed from a checkpoint continuing as the
  uninterrupted one;
- a run resumed mid-epoch reading the same segments as the uninterrupted one.
"""
import copy
import io
from types import SimpleNamespace

import pytest
import torch
from fairseq.data import indexed_dataset

from conftest import make_dictionary
from delight_fairseq.models.factory import preset_config
from delight_fairseq.training.awd_criterion import AWDCrossEntropyCriterion
from delight_fairseq.training.bptt_lm import BPTTLanguageModelingTask
from delight_fairseq.training.nt_asgd import FairseqNTASGD, NTASGDSchedule

VOCAB = 200


def lstm(seed=0):
    """define_lstm_lm_small without any dropout (training is then deterministic)."""
    from delight_fairseq.models.define_lstm_lm import DefineLSTMLanguageModel

    cfg = preset_config("define_lstm_lm_small", dict(dropout=0.0, dropout_input=0.0, dropout_hidden=0.0,
                                                     weight_drop=0.0, embed_word_dropout=0.0, define_dropout=0.0))
    cfg.max_target_positions = None
    torch.manual_seed(seed)
    d = make_dictionary(VOCAB)
    return DefineLSTMLanguageModel.build_model(cfg, SimpleNamespace(source_dictionary=d, target_dictionary=d))


def binarised_text(root, n_lines=40, seed=0):
    """A text of ``n_lines`` random lines written as fairseq-preprocess writes it (each line
    ending in </s>): the data dir, and the text as one stream of token ids."""
    d = make_dictionary(VOCAB)
    d.save(str(root / "dict.txt"))
    g = torch.Generator().manual_seed(seed)
    builder = indexed_dataset.make_builder(str(root / "train.bin"), impl="mmap", vocab_size=len(d))
    text = []
    for _ in range(n_lines):
        length = int(torch.randint(3, 13, (1,), generator=g))
        line = torch.cat([torch.randint(d.nspecial, VOCAB, (length,), generator=g), torch.tensor([d.eos()])])
        builder.add_item(line.int())
        text += line.tolist()
    builder.finalize(str(root / "train.idx"))
    return root, torch.tensor(text)


def bptt_task(data, batch_size, bptt, variable, seed=1):
    cfg = SimpleNamespace(data=str(data), tokens_per_sample=bptt, variable_bptt=variable, batch_size=batch_size,
                          batch_size_valid=None, seed=seed, data_parallel_rank=0, data_parallel_size=1)
    task = BPTTLanguageModelingTask.setup_task(cfg)
    task.load_dataset("train")
    return task


def awd_batchify(text, streams):
    """AWD-LSTM's batchify: the text cut into ``streams`` equal columns, the rest dropped
    (here ``B x N``, a row per stream)."""
    n = text.numel() // streams
    return text[: n * streams].view(streams, n)


def awd_forward(model, data, hidden):
    """The model's layers run by hand as AWD-LSTM's RNNModel runs them: ``data`` ``B x L``,
    ``hidden`` a state per layer (None: zeros). Returns the logits, the last layer's output
    (``L x B x O``) and the new state."""
    dec = model.decoder
    x = dec.embed_tokens(data).transpose(0, 1)  # L x B x d
    new = []
    for i, layer in enumerate(dec.layers):
        x, state = layer.lstm(x, None if hidden is None else hidden[i])
        new.append(state)
    return dec.output_layer(x.transpose(0, 1)), x, new


# ----- the carried state, variable BPTT, the lr scaled by length, over two epochs -----------------------

@pytest.mark.parametrize("variable", [True, False])
def test_training_carries_the_state_between_batches_as_awd_lstm(tmp_path, variable):
    """Two epochs of training through the task (fairseq's order: train_step, grads / sample size,
    clip, optimizer_step) equal AWD-LSTM's train() written out here: one stream per batch row,
    the state repackaged (not reset) between batches and reset at each epoch, lr * seq_len / bptt
    for each update when the lengths vary, every token but the first predicted once."""
    data, text = binarised_text(tmp_path)
    streams, bptt, lr, clip, alpha, beta = 4, 10, 1.0, 0.25, 2.0, 1.0
    task = bptt_task(data, streams, bptt, variable)
    model = lstm()
    reference = copy.deepcopy(model)
    optimizer = FairseqNTASGD(SimpleNamespace(lr=[lr], weight_decay=1e-4), list(model.parameters()))
    criterion = AWDCrossEntropyCriterion(task, False, alpha, beta)
    ref_params = list(reference.parameters())
    ref_optimizer = torch.optim.SGD(ref_params, lr=lr, weight_decay=1e-4)
    source = awd_batchify(text, streams)  # B x N
    iterator = task.get_batch_iterator(task.dataset("train"), epoch=1)
    update, epoch_lengths = 0, []
    for epoch in (1, 2):
        hidden, i, lengths = None, 0, []  # AWD: hidden = model.init_hidden(batch_size) at each epoch's start
        for sample in iterator.next_epoch_itr(shuffle=False):
            seq_len = sample["net_input"]["src_tokens"].size(1)
            lengths.append(seq_len)
            assert sample["net_input"]["carry"] is (i > 0)
            # ours
            optimizer.zero_grad()
            loss, sample_size, _ = task.train_step(sample, model, criterion, optimizer, update)
            optimizer.multiply_grads(1.0 / sample_size)
            optimizer.clip_grad_norm(clip)
            task.optimizer_step(optimizer, model, update)
            update += 1
            # AWD-LSTM's train(), one batch
            inputs, targets = source[:, i:i + seq_len], source[:, i + 1:i + 1 + seq_len]
            assert torch.equal(sample["net_input"]["src_tokens"], inputs) and torch.equal(sample["target"], targets)
            hidden = None if hidden is None else [tuple(s.detach() for s in state) for state in hidden]  # repackage
            ref_optimizer.zero_grad()
            logits, last, hidden = awd_forward(reference, inputs, hidden)
            raw_loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1))
            ref_loss = raw_loss + alpha * last.pow(2).mean() + beta * (last[1:] - last[:-1]).pow(2).mean()
            ref_loss.backward()
            torch.nn.utils.clip_grad_norm_(ref_params, clip)
            # lr2 * seq_len / bptt; the last segment of an epoch, cut short by the text's end, by its own
            # length (AWD-LSTM's main.py scales it by the length drawn before the cut)
            ref_optimizer.param_groups[0]["lr"] = lr * seq_len / bptt if variable else lr
            ref_optimizer.step()
            ref_optimizer.param_groups[0]["lr"] = lr
            i += seq_len
            assert float(loss.detach()) / sample_size == pytest.approx(float(ref_loss), rel=1e-4, abs=1e-5), (epoch, i)
            for p, q in zip(model.parameters(), ref_params):
                torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
        assert i == source.size(1) - 1  # every token of each stream but the first predicted, once
        epoch_lengths.append(lengths)
    if variable:
        assert len(set(epoch_lengths[0])) > 2 and epoch_lengths[0] != epoch_lengths[1]  # drawn anew each epoch
    else:
        assert set(epoch_lengths[0][:-1]) == {bptt} and epoch_lengths[0] == epoch_lengths[1]


def test_resuming_mid_epoch_reads_the_same_segments(tmp_path):
    """A run stopped after 3 batches of epoch 2 and resumed from the iterator's state (as
    fairseq's checkpoint does: a fresh task and iterator at the saved epoch) reads the rest of
    epoch 2 and then epoch 3 exactly as the uninterrupted run."""
    data, _ = binarised_text(tmp_path, n_lines=60)

    def segments(itr):
        return [(s["net_input"]["carry"], s["net_input"]["src_tokens"].clone()) for s in itr]

    task = bptt_task(data, 3, 10, True, seed=7)
    whole = task.get_batch_iterator(task.dataset("train"), epoch=1)
    epochs = [segments(whole.next_epoch_itr(shuffle=False)) for _ in range(3)]
    assert len({len(e) for e in epochs}) > 1 or any(
        not torch.equal(a[1], b[1]) for a, b in zip(epochs[0], epochs[1]))  # the epochs' segments differ
    stopped = task.get_batch_iterator(task.dataset("train"), epoch=1)
    for _ in stopped.next_epoch_itr(shuffle=False):  # epoch 1 read through
        pass
    itr = stopped.next_epoch_itr(shuffle=False)
    for _ in range(3):
        next(itr)
    state = stopped.state_dict()
    assert state["epoch"] == 2 and state["iterations_in_epoch"] == 3
    fresh = bptt_task(data, 3, 10, True, seed=7)
    resumed = fresh.get_batch_iterator(fresh.dataset("train"), epoch=state["epoch"])
    resumed.load_state_dict(state)
    rest = segments(resumed.next_epoch_itr(shuffle=False))
    third = segments(resumed.next_epoch_itr(shuffle=False))
    for got, want in ((rest, epochs[1][3:]), (third, epochs[2])):
        assert len(got) == len(want)
        assert all(a[0] == b[0] and torch.equal(a[1], b[1]) for a, b in zip(got, want))


# ----- NT-ASGD over epochs ------------------------------------------------------------------------

class Toy(torch.nn.Module):
    """A model with one 3-vector: training pulls it towards targets near 10, validation scores
    its distance to 3, so the validation loss falls, then rises (the switch must come)."""

    def __init__(self, start):
        super().__init__()
        self.w = torch.nn.Parameter(start.clone())

    def set_num_updates(self, num_updates):
        pass


def toy_loss(w, target):
    return 0.5 * (w - target).pow(2).sum()


def toy_criterion(model, sample):
    loss = toy_loss(model.w, sample["target"])
    return loss, 1, {"loss": loss.detach()}


def val_loss(w):
    return float((w.detach() - 3.0).pow(2).sum())


EPOCHS, STEPS, LR, WD, NONMONO = 14, 4, 0.02, 0.01, 2


def toy_targets():
    g = torch.Generator().manual_seed(0)
    return [[10.0 + 2.0 * torch.randn(3, generator=g) for _ in range(STEPS)] for _ in range(EPOCHS)]


def awd_nt_asgd(targets):
    """AWD-LSTM's main.py: SGD; after each epoch's validation, ``ASGD(t0=0, lambd=0)`` from then on
    when ``len(best_val_loss) > nonmono and val_loss > min(best_val_loss[:-nonmono])``; once on
    ASGD, each validation runs with the average ``ax`` swapped in and the iterate put back after.
    Returns per epoch (validation loss, validated weights, averaging) and the switch epoch."""
    w = torch.zeros(3, requires_grad=True)
    optimizer = torch.optim.SGD([w], lr=LR, weight_decay=WD)
    best_val_loss, out, switched = [], [], None
    for epoch in range(1, EPOCHS + 1):
        for target in targets[epoch - 1]:
            optimizer.zero_grad()
            toy_loss(w, target).backward()
            optimizer.step()
        if isinstance(optimizer, torch.optim.ASGD):
            tmp = w.data.clone()
            w.data = optimizer.state[w]["ax"].clone()
            out.append((val_loss(w), w.detach().clone(), True))
            w.data = tmp.clone()
        else:
            loss = val_loss(w)
            out.append((loss, w.detach().clone(), False))
            if len(best_val_loss) > NONMONO and loss > min(best_val_loss[:-NONMONO]):
                optimizer = torch.optim.ASGD([w], lr=LR, t0=0, lambd=0.0, weight_decay=WD)
                switched = epoch
            best_val_loss.append(loss)
    return out, switched


def ours_nt_asgd(targets, resume_after=()):
    """The same run through the task, ``--optimizer nt_asgd`` and ``--lr-scheduler nt_asgd``
    (fairseq's order: train steps, begin_valid_epoch, validation, lr_step); after the epochs in
    ``resume_after`` everything is saved as a checkpoint would hold it (the model as validated,
    the optimizer's and the schedule's state) and training goes on in fresh objects loaded from it."""
    def fresh(start):
        model = Toy(start)
        optimizer = FairseqNTASGD(SimpleNamespace(lr=[LR], weight_decay=WD), list(model.parameters()))
        schedule = NTASGDSchedule(SimpleNamespace(nonmono=NONMONO, lr=[LR]), optimizer)
        task = BPTTLanguageModelingTask(SimpleNamespace(variable_bptt=False, tokens_per_sample=8), make_dictionary(10))
        return model, optimizer, schedule, task

    model, optimizer, schedule, task = fresh(torch.zeros(3))
    out, update = [], 0
    for epoch in range(1, EPOCHS + 1):
        for target in targets[epoch - 1]:
            sample = {"net_input": {"src_tokens": torch.zeros(1, 8, dtype=torch.long)}, "target": target}
            optimizer.zero_grad()
            task.train_step(sample, model, toy_criterion, optimizer, update)
            task.optimizer_step(optimizer, model, update)
            update += 1
        task.begin_valid_epoch(epoch, model)
        loss = val_loss(model.w)
        out.append((loss, model.w.detach().clone(), optimizer.optimizer.averaging))
        schedule.step(epoch, loss)
        if epoch in resume_after:
            saved = io.BytesIO()
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "lr_scheduler": schedule.state_dict()}, saved)
            state = torch.load(io.BytesIO(saved.getvalue()), weights_only=True)
            model, optimizer, schedule, task = fresh(torch.full((3,), -5.0))
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["lr_scheduler"])
    return out


@pytest.mark.parametrize("resume_after", [(), (2, 6, 9)])
def test_nt_asgd_over_epochs_is_awd_lstms(resume_after):
    """Validation loss, validated weights (the iterate, then the average) and the switch, epoch
    by epoch, as AWD-LSTM's loop gives them; resumed from checkpoints written after epochs 2 and 6
    (before the switch at 7: the losses so far must come back, or the switch comes late) and 9
    (averaging, the average in the model), the run continues as the uninterrupted one."""
    targets = toy_targets()
    want, switched = awd_nt_asgd(targets)
    assert switched == 7  # falls, rises, then several epochs averaged
    got = ours_nt_asgd(targets, resume_after)
    assert [g[2] for g in got] == [w[2] for w in want]  # averaging from the epoch after the switch on
    for epoch, ((loss, weights, _), (ref_loss, ref_weights, _)) in enumerate(zip(got, want), 1):
        assert loss == pytest.approx(ref_loss, rel=1e-5, abs=1e-7), epoch
        torch.testing.assert_close(weights, ref_weights, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("losses, nonmono, switch", [
    ([2.0, 3.0, 2.5, 2.0], 2, None),      # equal to the best before the last two: not worse
    ([2.0, 3.0, 2.5, 2.0001], 2, 4),      # worse than it: switch
    ([2.0, 1.5, 1.8], 2, None),           # worse than the last but one, not the best before the last two
    ([2.0, 2.5, 2.4], 1, 3),              # nonmono 1: worse than the best but the last
    ([3.0, 2.0, 2.5], 1, None),           # ... which here is the better one
    ([3.0, 3.5, 4.0], 2, None),           # only 2 earlier validations: not more than nonmono
    ([3.0, 3.5, 4.0, 4.5], 2, 4),         # the third one: the rule can apply
    ([5.0, 4.0, 3.0, 2.0, 1.0, 9.0], 5, None),
])
def test_the_switch_at_its_boundaries(losses, nonmono, switch):
    """AWD's rule at its edges: ``len(history) > nonmono`` (strictly) and ``loss > min(history[:-nonmono])``
    (strictly worse), the history being every validation before the switch."""
    params = [torch.zeros(2, requires_grad=True)]
    optimizer = FairseqNTASGD(SimpleNamespace(lr=[1.0], weight_decay=0.0), params)
    schedule = NTASGDSchedule(SimpleNamespace(nonmono=nonmono, lr=[1.0]), optimizer)
    switched = None
    for epoch, loss in enumerate(losses, 1):
        schedule.step(epoch, loss)
        if optimizer.optimizer.averaging and switched is None:
            switched = epoch
    assert switched == switch


# ----- incremental self-attention fed several tokens at a time ------------------------------------------

@pytest.mark.parametrize("chunks", [[2, 3, 1], [1, 4, 2], [3, 3, 1]])
def test_cached_attention_in_chunks_equals_the_causal_full_pass(chunks):
    """A prefix fed in chunks of several tokens (a forced prefix, then step by step): query ``i`` of
    a chunk sits at absolute position ``i + S - T`` and sees keys up to it, so the outputs equal
    one causal pass over the whole sequence (tests/test_attention.py feeds one token at a time,
    where no mask is needed)."""
    from delight_fairseq.modules import SingleHeadAttention

    torch.manual_seed(0)
    attn = SingleHeadAttention(12, 8, 12).eval()
    x = torch.randn(sum(chunks), 2, 12)  # T x B x C
    pad = torch.zeros(2, sum(chunks), dtype=torch.bool)
    pad[1, 0] = True  # a left-padded row
    for mask in (None, pad):
        full = attn(x, key_padding_mask=mask, causal=True)
        cache, outs, start = {}, [], 0
        for n in chunks:
            step_mask = None if mask is None else mask[:, start:start + n]
            outs.append(attn(x[start:start + n], key_padding_mask=step_mask, causal=True, cache=cache))
            start += n
        got = torch.cat(outs)
        if mask is not None:  # row 1's first query sees only padding: no defined output in either
            torch.testing.assert_close(got[1:, 1], full[1:, 1], atol=1e-5, rtol=1e-5)
            got, full = got[:, :1], full[:, :1]
        torch.testing.assert_close(got, full, atol=1e-5, rtol=1e-5)
