"""``--criterion awd_cross_entropy``: cross-entropy plus AWD-LSTM's activation regularisers
(Merity et al., 2018, Sec. 4.6), in training only:

- AR, ``alpha * mean(m * h_T^2)``: L2 of the last layer's output after its dropout;
- TAR, ``beta * mean((h_t - h_{t+1})^2)``: of the last layer's output before dropout,
  between consecutive time steps.

Both are means over the batch's elements, added to the mean token loss (fairseq divides the
summed loss by the number of tokens, so they are added ``ntokens`` times to the sum). The
logged ``loss`` is the cross-entropy alone (AWD-LSTM's ``raw_loss``), ``ar`` and ``tar`` beside.
The model must return its last layer's outputs (``define_lstm_lm`` does: ``last_raw``,
``last_dropped``, each ``T x B x C``).
"""
from dataclasses import dataclass, field

import torch
from fairseq import metrics
from fairseq.criterions import register_criterion
from fairseq.criterions.cross_entropy import CrossEntropyCriterion, CrossEntropyCriterionConfig

from ..modules.errors import ConfigError


@dataclass
class AWDCrossEntropyConfig(CrossEntropyCriterionConfig):
    ar_alpha: float = field(default=2.0, metadata={"help": "AR: weight of the L2 of the last layer's dropped output (AWD's --alpha)"})
    tar_beta: float = field(default=1.0, metadata={"help": "TAR: weight of the L2 of its change over time (AWD's --beta)"})


def activation_penalties(raw: torch.Tensor, dropped: torch.Tensor, alpha: float, beta: float):
    """``(AR, TAR)`` of the last layer's outputs ``raw`` and ``dropped`` (``T x B x C``)."""
    ar = alpha * dropped.pow(2).mean()
    tar = beta * (raw[1:] - raw[:-1]).pow(2).mean()
    return ar, tar


@register_criterion("awd_cross_entropy", dataclass=AWDCrossEntropyConfig)
class AWDCrossEntropyCriterion(CrossEntropyCriterion):
    def __init__(self, task, sentence_avg, ar_alpha, tar_beta):
        super().__init__(task, sentence_avg)
        self.ar_alpha, self.tar_beta = ar_alpha, tar_beta

    def forward(self, model, sample, reduce=True):
        net_output = model(**sample["net_input"])
        nll, _ = self.compute_loss(model, net_output, sample, reduce=reduce)
        sample_size = sample["target"].size(0) if self.sentence_avg else sample["ntokens"]
        loss, logging_output = nll, {"loss": nll.data, "ntokens": sample["ntokens"],
                                     "nsentences": sample["target"].size(0), "sample_size": sample_size}
        if model.training and (self.ar_alpha or self.tar_beta):
            extra = net_output[1]
            if "last_raw" not in extra:
                raise ConfigError("--criterion awd_cross_entropy needs the last layer's outputs: use --arch "
                                  "define_lstm_lm (or --ar-alpha 0 --tar-beta 0)")
            ar, tar = activation_penalties(extra["last_raw"], extra["last_dropped"], self.ar_alpha, self.tar_beta)
            loss = loss + (ar + tar) * sample_size
            logging_output.update(ar=ar.data * sample_size, tar=tar.data * sample_size)
        return loss, sample_size, logging_output

    @classmethod
    def reduce_metrics(cls, logging_outputs) -> None:
        super().reduce_metrics(logging_outputs)
        sample_size = sum(log.get("sample_size", 0) for log in logging_outputs)
        for key in ("ar", "tar"):
            if any(key in log for log in logging_outputs):
                metrics.log_scalar(key, sum(log.get(key, 0) for log in logging_outputs) / max(sample_size, 1),
                                   sample_size, round=4)
