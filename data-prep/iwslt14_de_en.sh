#!/usr/bin/env bash
# IWSLT'14 German -> English (TED talks), as fairseq's examples/translation/prepare-iwslt14.sh
# (the data of the authors' IWSLT command, their issue #8): train.tags without the <url>,
# <talkid> and <keywords> lines, <title>/<description> text kept; Moses tokenisation
# (no punctuation normalisation, no hyphen splitting), lowercased; training pairs cleaned
# (1-175 tokens, ratio 1.5) and every 23rd of them held out as valid; test = TED dev2010 +
# TEDX dev2012 + TED tst2010-2012, in that order; joint BPE with subword-nmt, 10,000 merges;
# one dictionary per language (de 8,848 / en 6,632 entries on the real data).
#
#   bash data-prep/iwslt14_de_en.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds de-en.tgz, or its extracted de-en/ folder (train.tags.de-en.{de,en},
# IWSLT14.TED*.de-en.{de,en}.xml). Downloaded from fairseq's mirror (the original wit3 URL
# no longer serves). Default output: data-bin/iwslt14_de_en.
NAME=iwslt14_de_en
source "$(dirname "$0")/common.sh"
parse_args "$@"

TESTS=(IWSLT14.TED.dev2010 IWSLT14.TEDX.dev2012 IWSLT14.TED.tst2010 IWSLT14.TED.tst2011 IWSLT14.TED.tst2012)
fetch de-en.tgz "${IWSLT14_URL:-http://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz}" "${IWSLT14_DIGEST:-md5:10936dfdf616504ddbd844e91b94ef4a}"
files=(de-en/train.tags.de-en.de de-en/train.tags.de-en.en)
for t in "${TESTS[@]}"; do files+=("de-en/$t.de-en.de.xml" "de-en/$t.de-en.en.xml"); done
require "${files[@]}"

text() {
    mkdir -p "$WORK/text"
    local l t xml
    for l in de en; do
        "${PREP[@]}" iwslt-train "$(locate de-en/train.tags.de-en.$l)" "$WORK/text/all.$l"
        xml=(); for t in "${TESTS[@]}"; do xml+=("$(locate "de-en/$t.de-en.$l.xml")"); done
        "${PREP[@]}" segments "${xml[@]}" --out "$WORK/text/test.$l"
    done
}
step text text
iwslt_pipeline de en
