#!/usr/bin/env bash
# Train a published configuration with fairseq-hydra-train.
#
#   bash scripts/train.sh DATASET [HYDRA_OVERRIDE...]
#   bash scripts/train.sh wmt14_en_de model=wmt14_en_de_256 gpus=wmt_1
#   bash scripts/train.sh wikitext103 model=lm_wiki103_transformer precision=bf16
#
# DATASET is a config in configs/ (iwslt14_de_en, wmt14_en_de, wmt14_en_fr, wmt16_en_ro,
# wikitext103, ptb, wikitext103_lstm, wmt14_en_de_define); its binaries are read from
# data-bin/DATASET, or the data-bin its header names (DATA_DIR overrides) and the
# checkpoints, hydra_train.log and .hydra/ go to checkpoints/DATASET-MODEL (SAVE_DIR
# overrides). Any Hydra override may follow (optimization.max_update=1000, ...), and
# Hydra's --cfg job [--resolve] prints the composed config and exits without training.
# +sweep=NAME runs the ablation sweep configs/sweep/NAME.yaml (Hydra multirun): one job per
# setting, each in SAVE_DIR/N (default checkpoints/DATASET-MODEL-NAME) with its checkpoints,
# hydra_train.log and .hydra/; scripts/collect_sweep.py SAVE_DIR turns them into a table.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$REPO/.venv/bin/python" ] && export PATH="$REPO/.venv/bin:$PATH"
die() { echo "train.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: bash scripts/train.sh DATASET [HYDRA_OVERRIDE...] (see the header)"
DATASET=$1; shift
[ -f "$REPO/configs/$DATASET.yaml" ] || die "no config configs/$DATASET.yaml; choose one of: $(cd "$REPO/configs" && ls *.yaml | sed 's/.yaml$//' | tr '\n' ' ')"
MODEL=$(sed -n 's/^  - model: //p' "$REPO/configs/$DATASET.yaml")
PRECISION=$(sed -n 's/^  - precision: //p' "$REPO/configs/$DATASET.yaml")
PRINT_ONLY=""
SWEEP=""
for arg in "$@"; do
    case $arg in
        model=*) MODEL=${arg#model=} ;;
        +sweep=*) SWEEP=${arg#+sweep=} ;;
        precision=*) PRECISION=${arg#precision=} ;;
        --cfg|-c|--info|--help) PRINT_ONLY=1 ;;
    esac
done
[ -f "$REPO/configs/model/$MODEL.yaml" ] || die "no model config configs/model/$MODEL.yaml"
[ -z "$SWEEP" ] || [ -f "$REPO/configs/sweep/$SWEEP.yaml" ] || die "no sweep configs/sweep/$SWEEP.yaml; choose one of: $(cd "$REPO/configs/sweep" && ls *.yaml | sed 's/.yaml$//' | tr '\n' ' ')"
command -v fairseq-hydra-train >/dev/null || die "fairseq-hydra-train not found: run bash scripts/install.sh (or activate your environment)"
BINARIES=$(sed -n 's/^# data-bin: //p' "$REPO/configs/$DATASET.yaml")  # a config may train on another's binaries
DATA=${DATA_DIR:-$REPO/data-bin/${BINARIES:-$DATASET}}
SAVE=${SAVE_DIR:-$REPO/checkpoints/$DATASET-$MODEL${SWEEP:+-$SWEEP}}
if [ -z "$PRINT_ONLY" ]; then
    [ -d "$DATA" ] || die "no binaries in $DATA: run bash data-prep/${BINARIES:-$DATASET}.sh first (or set DATA_DIR)"
    DATA=$(cd "$DATA" && pwd)
    PY=$(dirname "$(command -v fairseq-hydra-train)")/python
    [ -x "$PY" ] || PY=python
    if [ "$PRECISION" = fp16 ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
        die "precision=fp16 needs a CUDA GPU (fairseq's FP16 optimizer) and this machine has none: add precision=bf16 or precision=fp32 (and common.cpu=true)"
    fi
    mkdir -p "$SAVE" && SAVE=$(cd "$SAVE" && pwd)
    cd "$SAVE"  # hydra.run.dir is '.': its log and .hydra/ go beside the checkpoints
fi
if [ -n "$SWEEP" ]; then  # one job per setting, each in SAVE/N, writing its checkpoints there
    exec fairseq-hydra-train --multirun --config-dir "$REPO/configs" --config-name "$DATASET" \
        "task.data=$DATA" "common.user_dir=$REPO/delight_fairseq" "hydra.sweep.dir=$SAVE" \
        'hydra.sweep.subdir=${hydra.job.num}' 'checkpoint.save_dir=${hydra:runtime.output_dir}' "$@"
fi
exec fairseq-hydra-train --config-dir "$REPO/configs" --config-name "$DATASET" \
    "task.data=$DATA" "common.user_dir=$REPO/delight_fairseq" "checkpoint.save_dir=$SAVE" "$@"
