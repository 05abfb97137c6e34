#!/usr/bin/env bash
# Evaluate a trained run as the papers did.
#
#   bash scripts/evaluate.sh DATASET CKPT_DIR [--average N] [-- FAIRSEQ_OPTION...]
#
# Translation (iwslt14_de_en, wmt14_en_de, wmt14_en_fr, wmt16_en_ro): the checkpoint the
# authors scored -- checkpoint_best.pt for WMT, the average of the last 10 epoch checkpoints
# for IWSLT'14 (--average N changes it; --average 1 takes checkpoint_best.pt) -- translates
# the test set with beam 5 and the recipe's length penalty (En-De 0.4, En-Fr 0.9, else 1),
# and prints detokenised sacreBLEU and tokenised BLEU (compound-split for WMT'14 En-De;
# for En-Ro the references lose their diacritics as the training targets did).
# Language model (wikitext103): fairseq-eval-lm on the test set with checkpoint_best.pt,
# 512 tokens per sample and a context window of 400.
# Binaries from data-bin/DATASET (DATA_DIR overrides); outputs go to CKPT_DIR.
# Options after -- go to fairseq-generate / fairseq-eval-lm (they override the above).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$REPO/.venv/bin/python" ] && export PATH="$REPO/.venv/bin:$PATH"
PY=$(command -v python)
die() { echo "evaluate.sh: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: bash scripts/evaluate.sh DATASET CKPT_DIR [--average N] [-- FAIRSEQ_OPTION...]"
DATASET=$1 CKPT=$2; shift 2
AVERAGE=1
[ "$DATASET" = iwslt14_de_en ] && AVERAGE=10
while [ $# -gt 0 ]; do
    case $1 in
        --average) AVERAGE=${2:?--average needs a number}; shift 2 ;;
        --) shift; break ;;
        *) die "unknown option $1" ;;
    esac
done
DATA=${DATA_DIR:-$REPO/data-bin/$DATASET}
[ -d "$DATA" ] || die "no binaries in $DATA: run bash data-prep/$DATASET.sh first (or set DATA_DIR)"
[ -d "$CKPT" ] || die "no checkpoint folder $CKPT"
PLUGIN="$REPO/delight_fairseq"

if [ "$DATASET" = wikitext103 ]; then
    [ -f "$CKPT/checkpoint_best.pt" ] || die "no $CKPT/checkpoint_best.pt"
    fairseq-eval-lm "$DATA" --user-dir "$PLUGIN" --path "$CKPT/checkpoint_best.pt" --gen-subset test \
        --tokens-per-sample 512 --context-window 400 --batch-size 2 "$@" 2>&1 | tee "$CKPT/eval_lm.log" | grep -E "Perplexity|Error"
    exit "${PIPESTATUS[0]}"
fi

case $DATASET in
    wmt14_en_de) LENPEN=0.4 COMPOUND=(--compound-split) ;;
    wmt14_en_fr) LENPEN=0.9 COMPOUND=() ;;
    wmt16_en_ro) LENPEN=1.0 COMPOUND=(--romanian) ;;
    iwslt14_de_en) LENPEN=1.0 COMPOUND=() ;;
    *) die "unknown dataset $DATASET: iwslt14_de_en, wmt14_en_de, wmt14_en_fr, wmt16_en_ro or wikitext103" ;;
esac
test_bin=$(ls "$DATA"/test.*-*.*.bin 2>/dev/null | head -n 1) || true
[ -n "$test_bin" ] || die "no test set binaries (test.SRC-TGT.*.bin) in $DATA"
pair=$(basename "$test_bin" | cut -d. -f2)  # SRC-TGT
SRC=${pair%-*} TGT=${pair#*-}

if [ "$AVERAGE" -gt 1 ]; then
    MODEL="$CKPT/averaged_last_$AVERAGE.pt"
    "$PY" "$REPO/scripts/average_checkpoints.py" "$CKPT" --num "$AVERAGE" --output "$MODEL"
else
    MODEL="$CKPT/checkpoint_best.pt"
fi
fairseq-generate "$DATA" --user-dir "$PLUGIN" --path "$MODEL" --source-lang "$SRC" --target-lang "$TGT" \
    --gen-subset test --beam 5 --lenpen "$LENPEN" --remove-bpe --batch-size 128 \
    --required-batch-size-multiple 1 "$@" > "$CKPT/generate-test.txt" 2> "$CKPT/generate-test.log" \
    || { tail -n 20 "$CKPT/generate-test.log" >&2; die "fairseq-generate failed (log: $CKPT/generate-test.log)"; }
RAW_REF=()
raw="${DATA}.work/text/test.ref.$TGT"  # the references as published, which the data-prep scripts keep
[ "$DATASET" != iwslt14_de_en ] && [ -f "$raw" ] && RAW_REF=(--raw-ref "$raw")
"$PY" "$REPO/scripts/score_bleu.py" "$CKPT/generate-test.txt" --lang "$TGT" "${COMPOUND[@]}" "${RAW_REF[@]}"
