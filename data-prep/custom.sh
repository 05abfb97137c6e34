#!/usr/bin/env bash
# Your own corpus in one command: raw text -> SentencePiece -> fairseq binaries, with the
# SentencePiece model beside them and a suggested preset for its size (data-prep/custom.py).
#
#   bash data-prep/custom.sh --train PREFIX --src de --tgt en [--valid PREFIX --test PREFIX] [--out-dir DIR]
#   bash data-prep/custom.sh --lm --train FILE [--valid FILE --test FILE] [--out-dir DIR]
#       [--vocab-size N] [--model-type unigram|bpe] [--separate] [--max-len 250] [--workers N] [--overwrite]
#
# Default output: data-bin/custom (train with: bash scripts/train.sh custom model=..., or
# custom_lm for a language model). bash data-prep/custom.sh --help lists every option.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=python3
if [ -x "$REPO/.venv/bin/python" ]; then PY="$REPO/.venv/bin/python"; export PATH="$REPO/.venv/bin:$PATH"; fi
exec "$PY" "$REPO/data-prep/custom.py" "$@"
