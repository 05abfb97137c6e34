#!/usr/bin/env bash
# The main job: a tiny DeLighT translation experiment end to end on the CPU.
# Generates a synthetic corpus (target = source reversed, words mapped a3 -> B3),
# binarises it with fairseq-preprocess, trains a small delight_transformer with
# fairseq-train --user-dir, translates the test set with fairseq-generate (beam 5)
# and prints the sacrebleu score. About a minute on 2 cores. Output: runs/toy/.
set -euo pipefail
case ${1:-} in -h|--help) cat <<'EOF'
usage: bash scripts/demo.sh [OUT_DIR]

A tiny DeLighT translation experiment end to end on the CPU: generates a synthetic corpus
(target = source reversed, words mapped a3 -> B3), binarises it with fairseq-preprocess,
trains a small delight_transformer (400 updates) with fairseq-train --user-dir, translates
the test set with fairseq-generate (beam 5) and prints the sacrebleu score. About a minute
on 2 cores. OUT_DIR is emptied first.

Arguments:
  OUT_DIR      where the corpus, binaries, checkpoints and logs go (default: runs/toy)
  -h, --help   print this help and exit (nothing is generated or trained)

example:
  bash scripts/demo.sh runs/toy
EOF
    exit 0 ;;
esac
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -x .venv/bin/python ] && export PATH="$ROOT/.venv/bin:$PATH"
OUT=${1:-runs/toy}
trap 'echo "[demo] FAILED at line $LINENO: see the logs in $OUT/" >&2' ERR
rm -rf "$OUT" && mkdir -p "$OUT"
echo "[demo] data -> $OUT/raw"
python scripts/make_toy_data.py "$OUT/raw"
echo "[demo] fairseq-preprocess -> $OUT/bin"
fairseq-preprocess --source-lang src --target-lang tgt --joined-dictionary --workers 1 \
    --trainpref "$OUT/raw/train" --validpref "$OUT/raw/valid" --testpref "$OUT/raw/test" \
    --destdir "$OUT/bin" > "$OUT/preprocess.log" 2>&1
echo "[demo] fairseq-train (delight_transformer, 400 updates) -> $OUT/ckpt, log $OUT/train.log"
fairseq-train "$OUT/bin" --user-dir "$ROOT/delight_fairseq" --cpu \
    --arch delight_transformer_wmt14_en_de_128 \
    --encoder-embed-dim 64 --decoder-embed-dim 64 --embed-map-dim 32 \
    --encoder-blocks 2 --decoder-blocks 2 \
    --encoder-min-depth 2 --encoder-max-depth 3 --decoder-min-depth 2 --decoder-max-depth 3 \
    --dropout 0 --attention-dropout 0 --ffn-dropout 0 --embed-dropout 0 --pos-dropout 0 --optimizer adam --adam-betas '(0.9,0.98)' --lr 3e-3 \
    --lr-scheduler inverse_sqrt --warmup-updates 50 \
    --criterion label_smoothed_cross_entropy --label-smoothing 0.1 \
    --max-tokens 2000 --max-update 400 --seed 1 --num-workers 0 --data-buffer-size 0 \
    --log-format simple --log-interval 100 --save-dir "$OUT/ckpt" --no-epoch-checkpoints \
    > "$OUT/train.log" 2>&1
grep -m1 "num. shared model params" "$OUT/train.log" | sed 's/.*| INFO | [a-z_.]* | /[demo]   /'
grep "valid on 'valid'" "$OUT/train.log" | tail -n 1 | sed 's/.*| valid | /[demo]   valid: /'
echo "[demo] fairseq-generate (beam 5, sacrebleu) -> $OUT/generate.log"
fairseq-generate "$OUT/bin" --user-dir "$ROOT/delight_fairseq" --cpu \
    --path "$OUT/ckpt/checkpoint_last.pt" --gen-subset test --beam 5 \
    --batch-size 50 --required-batch-size-multiple 1 --scoring sacrebleu \
    > "$OUT/generate.log" 2>&1
grep -m2 "^[SH]-0" "$OUT/generate.log" | sed 's/^/[demo]   /'
echo "[demo] $(grep 'BLEU' "$OUT/generate.log" | tail -n 1)"
