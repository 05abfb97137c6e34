#!/usr/bin/env bash
# WMT'16 English -> Romanian, following the standard WMT'16 recipe (Sennrich et al.):
# Europarl v8 + SETIMES2; valid newsdev2016, test newstest2016; Moses normalisation and
# tokenisation; on the Romanian side cedilla letters normalised to comma-below and
# diacritics removed; clean-corpus 1-250 tokens with ratio 1.5; joint BPE with
# subword-nmt, 32,000 merges (our choice: the authors shared only binaries; their
# parameter counts imply a ~35,000-entry dictionary, which 32k merges approach).
#
#   bash data-prep/wmt16_en_ro.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds training-parallel-ep-v8.tgz, en-ro.txt.zip (SETIMES2 from OPUS),
# dev.tgz and test.tgz, or their extracted files. Default output: data-bin/wmt16_en_ro.
NAME=wmt16_en_ro
source "$(dirname "$0")/common.sh"
parse_args "$@"

fetch training-parallel-ep-v8.tgz http://data.statmt.org/wmt16/translation-task/training-parallel-ep-v8.tgz
fetch en-ro.txt.zip https://object.pouta.csc.fi/OPUS-SETIMES/v2/moses/en-ro.txt.zip
fetch dev.tgz http://data.statmt.org/wmt16/translation-task/dev.tgz
fetch test.tgz http://data.statmt.org/wmt16/translation-task/test.tgz
TRAIN="training-parallel-ep-v8/europarl-v8.ro-en SETIMES.en-ro"
require_pairs en ro $TRAIN
require dev/newsdev2016-enro-src.en.sgm dev/newsdev2016-enro-ref.ro.sgm \
    test/newstest2016-enro-src.en.sgm test/newstest2016-enro-ref.ro.sgm
step text wmt_text en ro "$TRAIN" test/newstest2016-enro-src.en.sgm test/newstest2016-enro-ref.ro.sgm \
    dev/newsdev2016-enro-src.en.sgm dev/newsdev2016-enro-ref.ro.sgm
translation en ro 32000 --romanian-target
