#!/usr/bin/env bash
# Train a published configuration, or your own corpus's recipe, with fairseq-hydra-train.
# bash scripts/train.sh --help says how; the datasets are the configs in configs/.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
[ -x "$REPO/.venv/bin/python" ] && export PATH="$REPO/.venv/bin:$PATH"
die() { echo "train.sh: $*" >&2; exit 1; }
names() { (cd "$REPO/configs/$1" && ls -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' '); }
default_of() { sed -n "s/^  - $2: //p" "$REPO/configs/$1.yaml"; }  # a dataset config's default choice of a group

usage() {
    cat <<EOF
usage: bash scripts/train.sh DATASET [HYDRA_OVERRIDE...]
       bash scripts/train.sh -h | --help

Trains DATASET's recipe (configs/DATASET.yaml) with fairseq-hydra-train, reading the
binaries data-prep/DATASET.sh wrote, on the GPUs of this machine (or the CPU: common.cpu=true).

DATASET (default choices of its groups):
EOF
    for f in "$REPO"/configs/*.yaml; do
        d=$(basename "$f" .yaml)
        printf '  %-20s' "$d"
        for group in model recipe gpus precision; do
            choice=$(default_of "$d" "$group")
            [ -z "$choice" ] || printf ' %s=%s' "$group" "$choice"
        done
        echo
    done
    cat <<EOF

HYDRA_OVERRIDE, any number (fairseq's config keys, e.g. optimization.max_update=1000), and:
  model=NAME         a size or preset of configs/model/ (default: the dataset's, above)
  recipe=NAME        custom / custom_lm only: a row of README "Which model for my data"
                     (configs/recipe/: $(names recipe))
  gpus=NAME          GPUs x update frequency keeping the recipe's tokens per update
                     (configs/gpus/: $(names gpus))
  precision=NAME     fp32, bf16 or fp16 (default: the dataset's, above; fp16 needs CUDA)
  +sweep=NAME        an ablation sweep, one job per setting (configs/sweep/: $(names sweep));
                     scripts/collect_sweep.py SAVE_DIR makes its table
  --cfg job          print the composed config (add --resolve to resolve it) and exit,
                     training nothing; with +sweep=NAME the config its jobs start from

Environment:
  DATA_DIR           the binaries (default: data-bin/DATASET, or the data-bin the
                     config's header names, e.g. data-bin/wikitext103 for wikitext103_lstm)
  SAVE_DIR           checkpoints, hydra_train.log and .hydra/ (default:
                     checkpoints/DATASET-RECIPE for custom / custom_lm, else
                     checkpoints/DATASET-MODEL, with -SWEEP after it for a sweep)

Example:
  bash scripts/train.sh wmt14_en_de model=wmt14_en_de_512 gpus=wmt_8
  DATA_DIR=data-bin/custom bash scripts/train.sh custom recipe=tiny --cfg job
EOF
}

case ${1:-} in
    -h|--help) usage; exit 0 ;;
    "") usage >&2; exit 1 ;;
esac
DATASET=$1; shift
[ -f "$REPO/configs/$DATASET.yaml" ] || die "no config configs/$DATASET.yaml; choose one of: $(cd "$REPO/configs" && ls -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')"
MODEL=$(default_of "$DATASET" model)
RECIPE=$(default_of "$DATASET" recipe)
PRINT_ONLY="" SWEEP=""
for arg in "$@"; do
    case $arg in
        model=*) MODEL=${arg#model=} ;;
        recipe=*) RECIPE=${arg#recipe=} ;;
        +sweep=*) SWEEP=${arg#+sweep=} ;;
        --cfg|-c|--info) PRINT_ONLY=1 ;;
        -h|--help) usage; exit 0 ;;
    esac
done
[ -z "$MODEL" ] || [ -f "$REPO/configs/model/$MODEL.yaml" ] || die "no model config configs/model/$MODEL.yaml; choose one of: $(names model)"
if [ -n "$RECIPE" ]; then  # a recipe names the dataset config it belongs to (its usage line)
    [ -f "$REPO/configs/recipe/$RECIPE.yaml" ] || die "no recipe configs/recipe/$RECIPE.yaml; choose one of: $(names recipe)"
    grep -q "scripts/train.sh $DATASET recipe=$RECIPE\$" "$REPO/configs/recipe/$RECIPE.yaml" \
        || die "recipe=$RECIPE is not one of $DATASET's: $(cd "$REPO/configs/recipe" && grep -l "train.sh $DATASET recipe=" -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')"
fi
[ -z "$SWEEP" ] || [ -f "$REPO/configs/sweep/$SWEEP.yaml" ] || die "no sweep configs/sweep/$SWEEP.yaml; choose one of: $(names sweep)"
command -v fairseq-hydra-train >/dev/null || die "fairseq-hydra-train not found: run bash scripts/install.sh (or activate your environment)"
BINARIES=$(sed -n 's/^# data-bin: //p' "$REPO/configs/$DATASET.yaml")  # a config may train on another's binaries
DATA=${DATA_DIR:-$REPO/data-bin/${BINARIES:-$DATASET}}
NAME=${RECIPE:-$MODEL}
SAVE=${SAVE_DIR:-$REPO/checkpoints/$DATASET${NAME:+-$NAME}${SWEEP:+-$SWEEP}}
if [ -z "$PRINT_ONLY" ]; then
    [ -d "$DATA" ] || die "no binaries in $DATA: run bash data-prep/${BINARIES:-$DATASET}.sh first (or set DATA_DIR)"
    DATA=$(cd "$DATA" && pwd)
    PY=$(dirname "$(command -v fairseq-hydra-train)")/python
    [ -x "$PY" ] || PY=python
    PRECISION=$(default_of "$DATASET" precision)
    for arg in "$@"; do case $arg in precision=*) PRECISION=${arg#precision=} ;; esac; done
    if [ "$PRECISION" = fp16 ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then
        die "precision=fp16 needs a CUDA GPU (fairseq's FP16 optimizer) and this machine has none: add precision=bf16 or precision=fp32 (and common.cpu=true)"
    fi
    mkdir -p "$SAVE" && SAVE=$(cd "$SAVE" && pwd)
    cd "$SAVE"  # hydra.run.dir is '.': its log and .hydra/ go beside the checkpoints
fi
if [ -n "$SWEEP" ] && [ -z "$PRINT_ONLY" ]; then  # one job per setting, each in SAVE/N, writing its checkpoints there
    exec fairseq-hydra-train --multirun --config-dir "$REPO/configs" --config-name "$DATASET" \
        "task.data=$DATA" "common.user_dir=$REPO/delight_fairseq" "hydra.sweep.dir=$SAVE" \
        'hydra.sweep.subdir=${hydra.job.num}' 'checkpoint.save_dir=${hydra:runtime.output_dir}' "$@"
fi
# --cfg job with +sweep=NAME prints the config every job of the sweep starts from (Hydra's
# --cfg starts no multirun; the sweep's settings vary on top of it)
exec fairseq-hydra-train --config-dir "$REPO/configs" --config-name "$DATASET" \
    "task.data=$DATA" "common.user_dir=$REPO/delight_fairseq" "checkpoint.save_dir=$SAVE" "$@"
