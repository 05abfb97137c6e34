#!/usr/bin/env bash
# WikiText-103 (word level, 267,735 types), as fairseq's language-model example: the
# token files binarised with fairseq-preprocess --only-source; no further tokenisation.
#
#   bash data-prep/wikitext103.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]
#
# --raw-dir holds wikitext-103-v1.zip, or its extracted wikitext-103/ folder. Downloaded from its
# author's mirror (the original S3 URL no longer serves).
# Default output: data-bin/wikitext103.
NAME=wikitext103
source "$(dirname "$0")/common.sh"
parse_args "$@"

fetch wikitext-103-v1.zip "${WIKITEXT103_URL:-https://wikitext.smerity.com/wikitext-103-v1.zip}" \
    "${WIKITEXT103_DIGEST:-sha1:0aec09a7537b58d4bb65362fee27650eeaba625a}"
binarize_lm wikitext-103/wiki.train.tokens wikitext-103/wiki.valid.tokens wikitext-103/wiki.test.tokens
