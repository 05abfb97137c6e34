#!/usr/bin/env bash
# WMT'14 English -> French, as the authors' prepare_wmt14_en2fr.sh: Europarl v7 + Common
# Crawl + UN + News Commentary v9 + Gigaword French-English; the training text
# punctuation-normalised, non-printing characters removed, Moses-tokenised with hyphens
# split (-a), cased and escaped; every 1,333rd pair held out as valid (theirs: ~27k pairs,
# not 1%); test newstest2014, tokenised only; joint BPE with subword-nmt, 40,000 merges;
# train and valid cleaned after BPE (1-250 tokens, ratio 1.5); joined dictionary.
#
#   bash data-prep/wmt14_en_fr.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds training-parallel-europarl-v7.tgz, training-parallel-commoncrawl.tgz,
# training-parallel-un.tgz, training-parallel-nc-v9.tgz, training-giga-fren.tar and
# test-full.tgz, or their extracted files. Default output: data-bin/wmt14_en_fr.
NAME=wmt14_en_fr
source "$(dirname "$0")/common.sh"
parse_args "$@"

fetch training-parallel-europarl-v7.tgz http://statmt.org/wmt13/training-parallel-europarl-v7.tgz
fetch training-parallel-commoncrawl.tgz http://statmt.org/wmt13/training-parallel-commoncrawl.tgz
fetch training-parallel-un.tgz http://statmt.org/wmt13/training-parallel-un.tgz
fetch training-parallel-nc-v9.tgz http://statmt.org/wmt14/training-parallel-nc-v9.tgz
fetch training-giga-fren.tar http://statmt.org/wmt10/training-giga-fren.tar
fetch test-full.tgz http://statmt.org/wmt14/test-full.tgz
TRAIN="training/europarl-v7.fr-en commoncrawl.fr-en un/undoc.2000.fr-en training/news-commentary-v9.fr-en giga-fren.release2.fixed"
require_pairs en fr $TRAIN
require test-full/newstest2014-fren-src.en.sgm test-full/newstest2014-fren-ref.fr.sgm
step text wmt_text en fr "$TRAIN" test-full/newstest2014-fren-src.en.sgm test-full/newstest2014-fren-ref.fr.sgm
wmt_pipeline en fr 40000 1333
