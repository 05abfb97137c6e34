#!/usr/bin/env bash
# Penn Treebank, Mikolov's pre-processed version (10k words, <unk> for the rest, 929k / 73k
# / 82k tokens), as AWD-LSTM and the DeFINE paper use it: the three files binarised with
# fairseq-preprocess --only-source; no further tokenisation.
#
#   bash data-prep/ptb.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds simple-examples.tgz, or its extracted simple-examples/ folder (or just
# simple-examples/data/ptb.{train,valid,test}.txt). Downloaded from Mikolov's page.
# Default output: data-bin/ptb.
NAME=ptb
source "$(dirname "$0")/common.sh"
parse_args "$@"

fetch simple-examples.tgz "${PTB_URL:-http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz}" "${PTB_DIGEST:-}"
binarize_lm simple-examples/data/ptb.train.txt simple-examples/data/ptb.valid.txt simple-examples/data/ptb.test.txt
