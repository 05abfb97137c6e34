#!/usr/bin/env bash
# WMT'14 English -> German, as the authors' prepare_wmt14_en2de.sh (fairseq's
# prepare-wmt14en2de.sh --icml17): Europarl v7 + Common Crawl + News Commentary v9; the
# training text punctuation-normalised, non-printing characters removed, Moses-tokenised
# with hyphens split (-a), cased and escaped; every 100th pair (100th, 200th, ...) held
# out as valid; test newstest2014, tokenised only; joint BPE with subword-nmt, 40,000
# merges, learned on the training pairs; train and valid cleaned after BPE (1-250 tokens,
# ratio 1.5); joined dictionary (43,736 entries in the authors' run; not verified here on
# the real corpus).
#
#   bash data-prep/wmt14_en_de.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds training-parallel-europarl-v7.tgz, training-parallel-commoncrawl.tgz,
# training-parallel-nc-v9.tgz and test-full.tgz, or their extracted files.
# Default output: data-bin/wmt14_en_de.
NAME=wmt14_en_de
source "$(dirname "$0")/common.sh"
parse_args "$@"

wmt14_en_de_sources
require test-full/newstest2014-deen-src.en.sgm test-full/newstest2014-deen-ref.de.sgm
step text wmt_text en de "$TRAIN" test-full/newstest2014-deen-src.en.sgm test-full/newstest2014-deen-ref.de.sgm
wmt_pipeline en de 40000 100
