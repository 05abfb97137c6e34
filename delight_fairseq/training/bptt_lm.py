"""``--task bptt_lm``: a text read as ``B`` continuous streams in consecutive segments, the
model's state carried from one segment to the next (truncated backpropagation through time),
as AWD-LSTM trains and evaluates (Merity et al., 2018, Sec. 4.1 and their ``main.py``).

- The text (every line and its end-of-sentence token, in order) is cut into ``B`` equal
  streams (``--batch-size``; ``--batch-size-valid`` for validation; fairseq-eval-lm's
  ``--batch-size``); segment ``i`` of every stream forms batch ``i``: inputs ``x[t:t+L]``,
  targets ``x[t+1:t+L+1]``, so every token but the first is predicted exactly once.
- Each batch says whether it continues the previous one (``net_input["carry"]``): models
  that keep a state (``define_lstm_lm``) start from it, the first batch of an epoch from zeros.
- ``--variable-bptt`` (training): segment lengths drawn as AWD-LSTM draws them: ``L = bptt``
  with probability 0.95, else ``bptt / 2``, then ``max(5, int(N(L, 5)))``; the learning rate of
  that update is scaled by ``L / bptt`` (gradients are clipped before, as theirs). Lengths
  are fixed by ``--seed`` and the epoch, so a resumed run sees the same segments.
- With ``--optimizer nt_asgd``, validation (and the checkpoint written after it) uses the
  averaged weights once averaging has started (``nt_asgd.py``).

Legend: ``B`` streams (batch), ``L`` segment length, ``N`` tokens per stream.
"""
import logging
import os
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import torch
from fairseq import utils
from fairseq.data import Dictionary, FairseqDataset, data_utils, iterators
from fairseq.dataclass import FairseqDataclass
from fairseq.distributed import utils as dist_utils
from fairseq.tasks import FairseqTask, register_task
from omegaconf import II

from ..modules.errors import ConfigError
from .nt_asgd import swap_in_average, swap_out_average

logger = logging.getLogger(__name__)

AWD_LONG_P, AWD_SIGMA, AWD_MIN = 0.95, 5.0, 5  # AWD-LSTM's main.py


@dataclass
class BPTTLMConfig(FairseqDataclass):
    data: str = field(default="???", metadata={"help": "path to data directory (fairseq-preprocess --only-source)"})
    tokens_per_sample: int = field(default=70, metadata={"help": "segment length L (AWD-LSTM's --bptt)"})
    variable_bptt: bool = field(
        default=False, metadata={"help": "training segments of random length as AWD-LSTM's (bptt w.p. 0.95, else "
                                         "bptt/2, then N(., 5), at least 5), the lr scaled by length / bptt"}
    )
    batch_size: Optional[int] = II("dataset.batch_size")
    batch_size_valid: Optional[int] = II("dataset.batch_size_valid")
    seed: int = II("common.seed")
    max_target_positions: Optional[int] = II("task.tokens_per_sample")
    # filled in from the distributed setup
    data_parallel_rank: Optional[int] = None
    data_parallel_size: Optional[int] = None


def segment_bounds(tokens: int, bptt: int, variable: bool, seed: int, epoch: int) -> List[Tuple[int, int]]:
    """``[(start, length)]`` of the segments of a stream of ``tokens`` (``tokens - 1``
    predictions): fixed ``bptt`` long, or AWD-LSTM's random lengths from ``(seed, epoch)``."""
    rng = np.random.RandomState((seed * 1000003 + epoch) % 2**32)
    out, start = [], 0
    while start < tokens - 1:
        length = bptt
        if variable:
            mean = bptt if rng.random_sample() < AWD_LONG_P else bptt / 2.0
            length = max(AWD_MIN, int(rng.normal(mean, AWD_SIGMA)))
        length = min(length, tokens - 1 - start)
        out.append((start, length))
        start += length
    return out


class StreamDataset(FairseqDataset):
    """This rank's ``B`` streams; an item is one segment of all of them, named by
    ``(i, start, length)`` (the batches of an epoch: ``batches(epoch)``), so that the
    dataset holds no per-epoch state (fairseq keeps its loader workers across epochs)."""

    def __init__(self, tokens: torch.Tensor, streams: int, shard: int, num_shards: int, bptt: int, variable: bool,
                 seed: int):
        per_stream = tokens.numel() // (streams * num_shards)
        if per_stream < 2:
            raise ConfigError(f"{tokens.numel()} tokens cannot fill {streams * num_shards} streams: lower --batch-size")
        data = tokens[: per_stream * streams * num_shards].view(streams * num_shards, per_stream)  # (B x shards) x N
        self.streams = data[shard * streams:(shard + 1) * streams]  # B x N
        self.bptt, self.variable, self.seed = bptt, variable, seed

    def batches(self, epoch: int) -> List[List[Tuple[int, int, int]]]:
        bounds = segment_bounds(self.streams.size(1), self.bptt, self.variable, self.seed, epoch)
        return [[(i, start, length)] for i, (start, length) in enumerate(bounds)]

    def __len__(self):
        return (self.streams.size(1) - 2) // self.bptt + 1  # segments of bptt tokens

    def __getitem__(self, index):
        i, start, length = index
        return i, self.streams[:, start:start + length + 1]  # B x (L + 1)

    def collater(self, items):
        (i, chunk), = items
        source, target = chunk[:, :-1].contiguous(), chunk[:, 1:].contiguous()  # B x L each
        return {
            "id": torch.arange(source.size(0)),
            "net_input": {"src_tokens": source, "src_lengths": torch.full((source.size(0),), source.size(1)),
                          "carry": i > 0},
            "target": target,
            "nsentences": source.size(0),
            "ntokens": target.numel(),
        }


@register_task("bptt_lm", dataclass=BPTTLMConfig)
class BPTTLanguageModelingTask(FairseqTask):
    def __init__(self, cfg: BPTTLMConfig, dictionary: Dictionary):
        super().__init__(cfg)
        self.dictionary = dictionary
        self._lengths: List[int] = []  # segment lengths since the last optimizer step
        self._optimizer = None  # the training optimizer, for validation with NT-ASGD's averaged weights

    @classmethod
    def setup_task(cls, cfg: BPTTLMConfig, **kwargs):
        paths = utils.split_paths(cfg.data)
        path = os.path.join(paths[0], "dict.txt") if paths else cfg.data
        if not os.path.isfile(path):
            raise ConfigError(f"no dictionary {path}: give the binaries of fairseq-preprocess --only-source")
        if cfg.batch_size is None:
            raise ConfigError("--task bptt_lm reads the text as --batch-size streams: give --batch-size")
        return cls(cfg, Dictionary.load(path))

    def load_dataset(self, split, epoch=1, combine=False, **kwargs):
        paths = utils.split_paths(self.cfg.data)
        data = data_utils.load_indexed_dataset(os.path.join(paths[(epoch - 1) % len(paths)], split), self.dictionary,
                                               combine=combine)
        if data is None:
            raise ConfigError(f"no {split} split in {self.cfg.data}")
        tokens = torch.cat([data[i] for i in range(len(data))])  # the whole text, each line ending in </s>
        rank, size = self.cfg.data_parallel_rank, self.cfg.data_parallel_size
        if rank is None or size is None:
            initialized = torch.distributed.is_initialized()
            rank = dist_utils.get_data_parallel_rank() if initialized else 0
            size = dist_utils.get_data_parallel_world_size() if initialized else 1
        train = split == "train"
        streams = self.cfg.batch_size if train else (self.cfg.batch_size_valid or self.cfg.batch_size)
        self.datasets[split] = StreamDataset(tokens, streams, rank, size, self.cfg.tokens_per_sample,
                                             self.cfg.variable_bptt and train, self.cfg.seed)

    def get_batch_iterator(self, dataset, num_workers=0, epoch=1, data_buffer_size=0, skip_remainder_batch=False,
                           **kwargs):
        return iterators.EpochBatchIterator(
            dataset=dataset, collate_fn=dataset.collater, num_workers=num_workers, epoch=epoch,
            buffer_size=data_buffer_size, disable_shuffling=True, skip_remainder_batch=skip_remainder_batch,
            batch_sampler=lambda ds, ep: ds.batches(ep),  # in order; lengths fixed by the seed and epoch
        )

    def eval_lm_dataloader(self, dataset, max_tokens=None, batch_size=None, max_positions=None, num_shards=1,
                           shard_id=0, num_workers=1, data_buffer_size=10, context_window=0):
        if context_window > 0:
            raise ConfigError("--task bptt_lm carries the state from one segment to the next: drop --context-window")
        return self.get_batch_iterator(dataset, num_workers=num_workers, data_buffer_size=data_buffer_size) \
            .next_epoch_itr(shuffle=False)

    # ----- training: AWD-LSTM's lr scaling, NT-ASGD's averaged weights for validation -----

    def train_step(self, sample, model, criterion, optimizer, update_num, ignore_grad=False):
        self._optimizer = optimizer
        swap_out_average(optimizer)  # back to the iterate after a validation with the average
        self._lengths.append(sample["net_input"]["src_tokens"].size(1))
        return super().train_step(sample, model, criterion, optimizer, update_num, ignore_grad)

    def optimizer_step(self, optimizer, model, update_num):
        """The step with the lr scaled by the segments' mean length / bptt (AWD-LSTM's)."""
        lengths, self._lengths = self._lengths, []
        if not self.cfg.variable_bptt or not lengths:
            return super().optimizer_step(optimizer, model, update_num)
        lr = optimizer.get_lr()
        optimizer.set_lr(lr * sum(lengths) / len(lengths) / self.cfg.tokens_per_sample)
        try:
            super().optimizer_step(optimizer, model, update_num)
        finally:
            optimizer.set_lr(lr)

    def begin_valid_epoch(self, epoch, model):
        if self._optimizer is not None:
            swap_in_average(self._optimizer)  # NT-ASGD: validate (and save) the averaged weights

    @property
    def source_dictionary(self):
        return self.dictionary

    @property
    def target_dictionary(self):
        return self.dictionary
