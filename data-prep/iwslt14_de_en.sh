#!/usr/bin/env bash
# IWSLT'14 German -> English (TED talks), as fairseq's examples/translation recipe:
# train.tags minus metadata, every 23rd pair held out as valid, test = TED dev2010 +
# tst2010-2012 + TEDX dev2012; Moses tokenisation, lowercased; joint BPE with
# subword-nmt, 10,000 merges (the fairseq recipe's; sizes the dictionary at ~10k).
#
#   bash data-prep/iwslt14_de_en.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds de-en.tgz, or its extracted de-en/ folder (train.tags.de-en.{de,en},
# IWSLT14.TED*.de-en.{de,en}.xml). Default output: data-bin/iwslt14_de_en.
NAME=iwslt14_de_en
source "$(dirname "$0")/common.sh"
parse_args "$@"

TESTS=(IWSLT14.TED.dev2010 IWSLT14.TED.tst2010 IWSLT14.TED.tst2011 IWSLT14.TED.tst2012 IWSLT14.TEDX.dev2012)
fetch de-en.tgz "${IWSLT14_URL:-https://wit3.fbk.eu/archive/2014-01/texts/de/en/de-en.tgz}"
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
    "${PREP[@]}" split-valid "$WORK/text/all.de" "$WORK/text/all.en" --every 23 \
        --train-out "$WORK/text/train" --valid-out "$WORK/text/valid" --src-lang de --tgt-lang en
}
step text text
CLEAN_MAX=175 translation de en 10000 --lowercase
