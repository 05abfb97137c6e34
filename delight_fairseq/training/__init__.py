"""Training pieces fairseq does not have, registered by the plugin: ``--lr-scheduler linear``
(the DeLighT authors'), and AWD-LSTM's training (the DeFINE paper's Penn Treebank runs):
``--task bptt_lm`` (carried state, variable BPTT), ``--optimizer`` / ``--lr-scheduler nt_asgd``
(NT-ASGD), ``--criterion awd_cross_entropy`` (AR/TAR)."""
from . import awd_criterion, bptt_lm, lr_scheduler, nt_asgd  # noqa: F401  (register them)
