#!/usr/bin/env bash
# WMT'14 English -> German as the DeFINE paper evaluates its Transformer (Table 3): the
# training text exactly as data-prep/wmt14_en_de.sh prepares it (the authors' WMT'14 script:
# normalised, Moses-tokenised with -a, joint BPE with 40,000 merges, cleaned after BPE), but
# newstest2014 as the validation set and newstest2017 as the test set (both kept whole,
# tokenised only; their plain references kept for sacreBLEU).
#
#   bash data-prep/wmt14_en_de_define.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds training-parallel-europarl-v7.tgz, training-parallel-commoncrawl.tgz,
# training-parallel-nc-v9.tgz, test-full.tgz (WMT'14) and wmt17-test.tgz (WMT'17's test.tgz),
# or their extracted files. Default output: data-bin/wmt14_en_de_define.
NAME=wmt14_en_de_define
source "$(dirname "$0")/common.sh"
parse_args "$@"

wmt14_en_de_sources
fetch wmt17-test.tgz http://data.statmt.org/wmt17/translation-task/test.tgz
require test-full/newstest2014-deen-src.en.sgm test-full/newstest2014-deen-ref.de.sgm \
    test/newstest2017-ende-src.en.sgm test/newstest2017-ende-ref.de.sgm
step text wmt_text en de "$TRAIN" test/newstest2017-ende-src.en.sgm test/newstest2017-ende-ref.de.sgm \
    test-full/newstest2014-deen-src.en.sgm test-full/newstest2014-deen-ref.de.sgm
wmt_pipeline en de 40000 0 --keep-valid
