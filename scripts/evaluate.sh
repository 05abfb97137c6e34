#!/usr/bin/env bash
# Evaluate a trained run as the papers did: bash scripts/evaluate.sh --help says how.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$REPO/.venv/bin/python" ] && export PATH="$REPO/.venv/bin:$PATH"
PY=$(command -v python)
die() { echo "evaluate.sh: $*" >&2; exit 1; }
USAGE="usage: bash scripts/evaluate.sh DATASET CKPT_DIR [--average N] [--dry-run] [-- FAIRSEQ_OPTION...]"
usage() {
    cat <<EOF
$USAGE
       bash scripts/evaluate.sh -h | --help

Scores a trained run (CKPT_DIR, where scripts/train.sh wrote it) on DATASET's test set as
the papers did.

Translation (iwslt14_de_en, wmt14_en_de, wmt14_en_fr, wmt16_en_ro, wmt14_en_de_define, custom):
the checkpoint the authors scored -- checkpoint_best.pt for WMT, the average of the last 10
epoch checkpoints for IWSLT'14 -- translates the test set with beam 5 and the recipe's
length penalty (En-De 0.4, En-Fr 0.9, else 1), and prints detokenised sacreBLEU and
tokenised BLEU (compound-split for WMT'14 En-De; for En-Ro the references lose their
diacritics as the training targets did). wmt14_en_de_define: its validation set
(newstest2014) and its test set (newstest2017). custom (data-prep/custom.sh): SentencePiece
output detokenised, sacreBLEU against the raw references, its signature printed.
Language models (wikitext103, wikitext103_lstm, wikitext103_txl, ptb, custom_lm):
fairseq-eval-lm on the test set with checkpoint_best.pt: wikitext103 512 tokens per sample
and a context window of 400 (the authors'); wikitext103_lstm 256 and 192; ptb and custom_lm
as AWD-LSTM evaluates, one stream carrying its state through the test text (bptt_lm, batch
1, segments of 70); wikitext103_txl as fairseq's Transformer-XL example (64-token segments,
memory 640, clamp 400).

Options:
  --average N        average the last N epoch checkpoints; 1 takes checkpoint_best.pt
                     (default: 10 for iwslt14_de_en, else 1; translation only)
  --dry-run          print the commands, one a line, instead of running them (default: off)
  -- OPTION...       passed to fairseq-generate / fairseq-eval-lm, after (so over) the above

Environment:
  DATA_DIR           the binaries (default: data-bin/DATASET, or the data-bin the
                     dataset's config names)

Outputs (generate-test.txt and its log, eval_lm.log) go to CKPT_DIR.

Example:
  bash scripts/evaluate.sh wmt14_en_de checkpoints/wmt14_en_de-wmt14_en_de_512
EOF
}
for arg in "$@"; do  # -h anywhere before --
    case $arg in -h|--help) usage; exit 0 ;; --) break ;; esac
done
[ $# -ge 2 ] || die "$USAGE (--help says more)"
DATASET=$1 CKPT=$2; shift 2
AVERAGE=1 DRY=""
[ "$DATASET" = iwslt14_de_en ] && AVERAGE=10
while [ $# -gt 0 ]; do
    case $1 in
        --average) AVERAGE=${2:?--average needs a number}; shift 2 ;;
        --dry-run) DRY=1; shift ;;
        --) shift; break ;;
        *) die "unknown option $1 ($USAGE)" ;;
    esac
done
BINARIES=$(sed -n 's/^# data-bin: //p' "$REPO/configs/$DATASET.yaml" 2>/dev/null || true)
DATA=${DATA_DIR:-$REPO/data-bin/${BINARIES:-$DATASET}}
[ -d "$DATA" ] || [ -n "$DRY" ] || die "no binaries in $DATA: run bash data-prep/${BINARIES:-$DATASET}.sh first (or set DATA_DIR)"
[ -d "$CKPT" ] || [ -n "$DRY" ] || die "no checkpoint folder $CKPT"
PLUGIN="$REPO/delight_fairseq"

LM=()
case $DATASET in
    wikitext103) LM=(--tokens-per-sample 512 --context-window 400 --batch-size 2) ;;
    wikitext103_lstm) LM=(--tokens-per-sample 256 --context-window 192 --batch-size 2) ;;
    ptb|custom_lm) LM=(--task bptt_lm --tokens-per-sample 70 --batch-size 1) ;;  # AWD-LSTM's: the state carried through the text
    wikitext103_txl) LM=(--task truncated_bptt_lm --batch-size 1 --required-batch-size-multiple 1 --tokens-per-sample 64
                         --model-overrides '{"mem_len":640,"clamp_len":400,"same_length":True}') ;;
esac
run() {  # the command, or with --dry-run its words
    if [ -n "$DRY" ]; then echo "$*"; else "$@"; fi
}
if [ ${#LM[@]} -gt 0 ]; then
    [ -n "$DRY" ] && { run fairseq-eval-lm "$DATA" --user-dir "$PLUGIN" --path "$CKPT/checkpoint_best.pt" --gen-subset test "${LM[@]}" "$@"; exit 0; }
    [ -f "$CKPT/checkpoint_best.pt" ] || die "no $CKPT/checkpoint_best.pt"
    fairseq-eval-lm "$DATA" --user-dir "$PLUGIN" --path "$CKPT/checkpoint_best.pt" --gen-subset test \
        "${LM[@]}" "$@" 2>&1 | tee "$CKPT/eval_lm.log" | grep -E "Perplexity|Error"
    exit "${PIPESTATUS[0]}"
fi

case $DATASET in
    wmt14_en_de|wmt14_en_de_define) LENPEN=0.4 SCORING=(--compound-split) ;;
    wmt14_en_fr) LENPEN=0.9 SCORING=() ;;
    wmt16_en_ro) LENPEN=1.0 SCORING=(--romanian) ;;
    iwslt14_de_en) LENPEN=1.0 SCORING=() ;;
    custom) LENPEN=1.0 SCORING=(--detokenized) ;;  # SentencePiece output is raw text
    *) die "unknown dataset $DATASET: iwslt14_de_en, wmt14_en_de, wmt14_en_de_define, wmt14_en_fr, wmt16_en_ro, custom, wikitext103, wikitext103_lstm, wikitext103_txl, ptb or custom_lm" ;;
esac
test_bin=$(ls "$DATA"/test.*-*.*.bin 2>/dev/null | head -n 1) || true
[ -n "$test_bin" ] || [ -n "$DRY" ] || die "no test set binaries (test.SRC-TGT.*.bin) in $DATA"
[ -n "$test_bin" ] || test_bin=test.SRC-TGT.SRC.bin
pair=$(basename "$test_bin" | cut -d. -f2)  # SRC-TGT
SRC=${pair%-*} TGT=${pair#*-}

if [ "$AVERAGE" -gt 1 ]; then
    MODEL="$CKPT/averaged_last_$AVERAGE.pt"
    run "$PY" "$REPO/scripts/average_checkpoints.py" "$CKPT" --num "$AVERAGE" --output "$MODEL"
else
    MODEL="$CKPT/checkpoint_best.pt"
fi
SUBSETS=(test)
[ "$DATASET" = wmt14_en_de_define ] && SUBSETS=(valid test)  # the DeFINE paper: newstest2014 and newstest2017
for subset in "${SUBSETS[@]}"; do
    [ ${#SUBSETS[@]} -gt 1 ] && echo "$subset:"
    POST=(--remove-bpe)
    [ "$DATASET" = custom ] && POST=(--post-process sentencepiece)
    GENERATE=(fairseq-generate "$DATA" --user-dir "$PLUGIN" --path "$MODEL" --source-lang "$SRC" --target-lang "$TGT"
              --gen-subset "$subset" --beam 5 --lenpen "$LENPEN" "${POST[@]}" --batch-size 128
              --required-batch-size-multiple 1 "$@")
    if [ -n "$DRY" ]; then
        run "${GENERATE[@]}"
    else
        "${GENERATE[@]}" > "$CKPT/generate-$subset.txt" 2> "$CKPT/generate-$subset.log" \
            || { tail -n 20 "$CKPT/generate-$subset.log" >&2; die "fairseq-generate failed (log: $CKPT/generate-$subset.log)"; }
    fi
    RAW_REF=()
    raw="${DATA}.work/text/$subset.ref.$TGT"  # the references as published, which the data-prep scripts keep
    [ "$DATASET" != iwslt14_de_en ] && [ -f "$raw" ] && RAW_REF=(--raw-ref "$raw")
    run "$PY" "$REPO/scripts/score_bleu.py" "$CKPT/generate-$subset.txt" --lang "$TGT" "${SCORING[@]}" "${RAW_REF[@]}"
done
