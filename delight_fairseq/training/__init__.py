"""AWD-LSTM's training inside fairseq (the DeFINE paper's Penn Treebank runs), registered by
the plugin: ``--task bptt_lm`` (carried state, variable BPTT), ``--optimizer nt_asgd`` and
``--lr-scheduler nt_asgd`` (NT-ASGD), ``--criterion awd_cross_entropy`` (AR/TAR)."""
from . import awd_criterion, bptt_lm, nt_asgd  # noqa: F401  (register them)
