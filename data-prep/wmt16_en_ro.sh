#!/usr/bin/env bash
# WMT'16 English -> Romanian. The authors shared only binaries, so this follows the WMT'16
# recipe (Sennrich et al.) in the shape of the WMT'14 scripts: Europarl v8 + SETIMES2
# (OPUS's en-ro.txt.zip: SETIMES.en-ro.{en,ro}); valid newsdev2016, test newstest2016; the
# training text punctuation-normalised, non-printing characters removed; Moses-tokenised
# with hyphens split, escaped; on the Romanian side (every split) cedilla letters
# normalised to comma-below and diacritics removed; joint BPE with subword-nmt, 32,000
# merges (our choice: the authors' counts imply a ~35,000-entry dictionary); train and
# valid cleaned after BPE (1-250 tokens, ratio 1.5); joined dictionary.
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
wmt_pipeline en ro 32000 0 --romanian-target
