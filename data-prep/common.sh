# common.sh - sourced by the data-prep scripts: options, fetching, checks, idempotent steps.
#
# Every script takes
#   --raw-dir DIR   a folder holding the corpus' archives (as downloaded) or their
#                   extracted files; without it the archives are downloaded
#   --out-dir DIR   where the fairseq binaries go (default: data-bin/NAME)
#   --workers N     fairseq-preprocess workers (default 4)
# Intermediate files go to OUT_DIR.work/. A finished step leaves a marker there and is
# skipped on the next run; outputs are written under temporary names and renamed when
# complete, so an interrupted run never leaves a half-written file that looks done.
set -euo pipefail
DATA_PREP=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$DATA_PREP")
if [ -x "$REPO/.venv/bin/python" ]; then
    PY="$REPO/.venv/bin/python"
    export PATH="$REPO/.venv/bin:$PATH"
else
    PY=${PYTHON:-python3}
fi
PREP=("$PY" "$DATA_PREP/prep.py")

log() { echo "[$NAME] $*" >&2; }
die() { echo "[$NAME] error: $*" >&2; exit 1; }

# usage: the script's header comment (its description), its options with their defaults, an example
usage() {
    echo "usage: bash data-prep/$NAME.sh [--raw-dir DIR] [--out-dir DIR] [--workers N]"
    echo
    sed -n '2,/^[^#]/p' "$0" | grep '^#' | grep -v "^#   bash data-prep/" | sed 's/^# \{0,1\}//' | cat -s
    cat <<EOF

Options:
  --raw-dir DIR   a folder holding the corpus' archives (as downloaded) or their extracted
                  files (default: none, the archives are downloaded into OUT_DIR.work/raw)
  --out-dir DIR   where the fairseq binaries go (default: data-bin/$NAME)
  --workers N     fairseq-preprocess workers (default: 4)
  -h, --help      print this help and exit

example:
  bash data-prep/$NAME.sh --raw-dir downloads/$NAME --workers 8
EOF
}

parse_args() {
    local arg
    for arg in "$@"; do  # --help first, whatever else the line holds
        case $arg in -h|--help) usage; exit 0 ;; esac
    done
    RAW_DIR="" OUT_DIR="$REPO/data-bin/$NAME" WORKERS=4
    while [ $# -gt 0 ]; do
        case $1 in
            --raw-dir) RAW_DIR=$(cd "${2:?--raw-dir needs a folder}" 2>/dev/null && pwd) || die "--raw-dir $2 does not exist"; shift 2 ;;
            --out-dir) OUT_DIR=${2:?--out-dir needs a folder}; shift 2 ;;
            --workers) WORKERS=${2:?--workers needs a number}; shift 2 ;;
            *) die "unknown option $1 (see --help)" ;;
        esac
    done
    mkdir -p "$(dirname "$OUT_DIR")"
    OUT_DIR=$(cd "$(dirname "$OUT_DIR")" && pwd)/$(basename "$OUT_DIR")
    WORK="$OUT_DIR.work"
    mkdir -p "$WORK/raw"
}

# step NAME COMMAND... : run COMMAND unless NAME finished in an earlier run
step() {
    local name=$1 t0=$SECONDS; shift
    if [ -e "$WORK/.done-$name" ]; then log "$name: done before, skipped"; return 0; fi
    log "$name"
    "$@"
    touch "$WORK/.done-$name"
    log "$name: finished in $((SECONDS - t0)) s"
}

# fetch ARCHIVE URL [ALGO:DIGEST] : take ARCHIVE from --raw-dir, or download it and check
# its digest when one is given (md5 or sha1, as known for the mirror); then extract it
fetch() {
    local name=$1 url=$2 digest=${3:-} path
    if [ -n "$RAW_DIR" ]; then
        [ -e "$RAW_DIR/$name" ] || return 0  # --raw-dir may hold the extracted files instead
        path="$RAW_DIR/$name"
    else
        path="$WORK/download/$name"
        if [ ! -e "$path" ]; then
            mkdir -p "$WORK/download"
            log "downloading $url"
            local t0=$SECONDS shown=(-sS)
            [ -t 2 ] && shown=(--progress-bar)  # a bar with its rate on a terminal
            curl -fL "${shown[@]}" --retry 2 --connect-timeout 20 -o "$path.part" "${url}" \
                || die "could not download $url; download it yourself and run again with --raw-dir DIR, DIR holding $name (or its extracted files)"
            mv "$path.part" "$path"
            log "downloaded $name: $(du -h "$path" | cut -f1) in $((SECONDS - t0)) s"
        fi
        [ -z "$digest" ] || step "verify-$name" verify "$path" "$digest"
    fi
    step "extract-$name" extract "$path"
}

verify() {
    local got
    got=$("$PY" -c 'import hashlib, sys; h = hashlib.new(sys.argv[2]); f = open(sys.argv[1], "rb")
for b in iter(lambda: f.read(1 << 20), b""): h.update(b)
print(h.hexdigest())' "$1" "${2%%:*}")
    [ "$got" = "${2#*:}" ] || { rm -f "$1"; die "the download $1 has ${2%%:*} $got, not ${2#*:}: a damaged or different file, removed; run again, or download it yourself and pass it with --raw-dir"; }
}

extract() {
    local tmp="$WORK/raw.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    case $1 in
        *.tgz|*.tar.gz) tar -xzf "$1" -C "$tmp" ;;
        *.tar) tar -xf "$1" -C "$tmp" ;;
        *.zip) "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$1" "$tmp" ;;
        *) die "do not know how to extract $1" ;;
    esac
    cp -a "$tmp/." "$WORK/raw/" && rm -rf "$tmp"
}

# locate REL : path of REL in the extracted archives or in --raw-dir
locate() {
    local root
    for root in "$WORK/raw" ${RAW_DIR:+"$RAW_DIR"}; do
        if [ -e "$root/$1" ]; then echo "$root/$1"; return 0; fi
    done
    return 1
}

# require REL... : every file is present, else one error listing all that are missing
require() {
    local missing=() rel
    for rel in "$@"; do locate "$rel" >/dev/null || missing+=("$rel"); done
    [ ${#missing[@]} -eq 0 ] || die "missing from ${RAW_DIR:-the downloads}: ${missing[*]}"
}

# concat OUT REL... : the files (gzip or plain) one after the other, written atomically
concat() {
    local out=$1 rel; shift
    for rel in "$@"; do
        case $rel in *.gz) gzip -dc "$(locate "$rel")" ;; *) cat "$(locate "$rel")" ;; esac
    done > "$out.tmp"
    mv "$out.tmp" "$out"
}

# preprocess DICT_FILE OPTION... : fairseq-preprocess OPTION... into OUT_DIR, atomically
preprocess() {
    local dict=$1; shift
    rm -rf "$OUT_DIR.tmp"
    fairseq-preprocess "$@" --destdir "$OUT_DIR.tmp" --workers "$WORKERS" > "$WORK/preprocess.log" 2>&1 \
        || { tail -n 20 "$WORK/preprocess.log" >&2; die "fairseq-preprocess failed (log: $WORK/preprocess.log)"; }
    rm -rf "$OUT_DIR" && mv "$OUT_DIR.tmp" "$OUT_DIR"
    log "binaries in $OUT_DIR ($(wc -l < "$OUT_DIR/$dict") dictionary entries before specials); per split:"
    grep " sents, " "$WORK/preprocess.log" | sed 's/^.*fairseq_cli\.preprocess[: |]*/    /' >&2 || true
}

# binarize_lm TRAIN VALID TEST : a language model's three token files (relative to the raw
# files), present, binarised into OUT_DIR with one dictionary (--only-source)
binarize_lm() {
    require "$@"
    [ -d "$OUT_DIR" ] || rm -f "$WORK/.done-binarize"  # binaries removed since: make them again
    step binarize preprocess dict.txt --only-source --trainpref "$(locate "$1")" --validpref "$(locate "$2")" \
        --testpref "$(locate "$3")"
}

# binarize SRC TGT [--separate] : the BPE'd text of $WORK/bpe; one joined dictionary
# unless --separate (fairseq's IWSLT recipe keeps one per language)
binarize() {
    local joined=(--joined-dictionary)
    [ "${3:-}" = --separate ] && joined=()
    preprocess "dict.$1.txt" --source-lang "$1" --target-lang "$2" "${joined[@]}" \
        --trainpref "$WORK/bpe/train" --validpref "$WORK/bpe/valid" --testpref "$WORK/bpe/test"
}

# tok SPLIT LANG OPTION... : $WORK/text/SPLIT.LANG tokenised into $WORK/tok/SPLIT.LANG
tok() {
    local split=$1 l=$2; shift 2
    mkdir -p "$WORK/tok"
    step "tokenize-$split.$l" "${PREP[@]}" tokenize "$l" "$WORK/text/$split.$l" "$WORK/tok/$split.$l" --workers "$WORKERS" "$@"
}

# bpe SRC TGT MERGES SPLIT... : joint BPE learned on $WORK/tok/train.{SRC,TGT}, applied to every SPLIT
bpe() {
    local src=$1 tgt=$2 merges=$3 split l; shift 3
    mkdir -p "$WORK/bpe"
    step bpe-learn "${PREP[@]}" bpe-learn "$WORK/bpe/codes" --merges "$merges" "$WORK/tok/train.$src" "$WORK/tok/train.$tgt"
    for split in "$@"; do
        for l in "$src" "$tgt"; do
            step "bpe-apply-$split.$l" "${PREP[@]}" bpe-apply "$WORK/bpe/codes" "$WORK/tok/$split.$l" "$WORK/bpe/$split.$l" --workers "$WORKERS"
        done
    done
}

# iwslt_pipeline SRC TGT : fairseq's prepare-iwslt14.sh after $WORK/text/{all,test}.{SRC,TGT}:
# tokenise and lowercase (no punctuation normalisation, no hyphen splitting), clean the
# training text (1-175 tokens, ratio 1.5), every 23rd pair of it is valid, joint BPE with
# 10,000 merges, one dictionary per language
iwslt_pipeline() {
    local src=$1 tgt=$2 l
    [ -d "$OUT_DIR" ] || rm -f "$WORK/.done-binarize"  # binaries removed since: make them again
    for l in "$src" "$tgt"; do
        tok all "$l" --lowercase
        tok test "$l" --lowercase
    done
    step clean "${PREP[@]}" clean "$WORK/tok/all.$src" "$WORK/tok/all.$tgt" "$WORK/tok/all.clean.$src" \
        "$WORK/tok/all.clean.$tgt" --max 175
    step split-valid "${PREP[@]}" split-valid "$WORK/tok/all.clean.$src" "$WORK/tok/all.clean.$tgt" --every 23 \
        --train-out "$WORK/tok/train" --valid-out "$WORK/tok/valid" --src-lang "$src" --tgt-lang "$tgt"
    bpe "$src" "$tgt" 10000 train valid test
    step binarize binarize "$src" "$tgt" --separate
}

# wmt_pipeline SRC TGT MERGES VALID_EVERY [--romanian-target] [--keep-valid] : fairseq's
# prepare-wmt14en2*.sh after $WORK/text/{all,test}.{SRC,TGT} (and valid.* when the corpus has a
# dev set, VALID_EVERY 0): the training text punctuation-normalised, non-printing characters
# removed and tokenised with hyphens split (-a), the test text only tokenised (-a); every
# VALID_EVERY-th training pair is valid; joint BPE; train and valid cleaned after BPE (1-250
# tokens, ratio 1.5; --keep-valid: a dev set that is scored is kept whole, as test); test
# untouched; one joined dictionary
wmt_pipeline() {
    local src=$1 tgt=$2 merges=$3 every=$4 ro=() split l clean=(train valid) arg
    for arg in "${@:5}"; do
        case $arg in
            --romanian-target) ro=(--romanian) ;;
            --keep-valid) clean=(train) ;;
        esac
    done
    [ -d "$OUT_DIR" ] || rm -f "$WORK/.done-binarize"
    local eval_splits=(test)
    [ "$every" -eq 0 ] && eval_splits+=(valid)
    for l in "$src" "$tgt"; do
        local opts=(--aggressive)
        [ "$l" = "$tgt" ] && opts+=("${ro[@]}")
        tok all "$l" --normalize "${opts[@]}"
        for split in "${eval_splits[@]}"; do tok "$split" "$l" "${opts[@]}"; done
    done
    if [ "$every" -gt 0 ]; then
        step split-valid "${PREP[@]}" split-valid "$WORK/tok/all.$src" "$WORK/tok/all.$tgt" --every "$every" \
            --train-out "$WORK/tok/train" --valid-out "$WORK/tok/valid" --src-lang "$src" --tgt-lang "$tgt"
    else
        for l in "$src" "$tgt"; do cp "$WORK/tok/all.$l" "$WORK/tok/train.$l"; done
    fi
    bpe "$src" "$tgt" "$merges" train valid test
    for split in "${clean[@]}"; do
        step "clean-$split" "${PREP[@]}" clean "$WORK/bpe/$split.$src" "$WORK/bpe/$split.$tgt" \
            "$WORK/bpe/$split.clean.$src" "$WORK/bpe/$split.clean.$tgt" --max 250
    done
    local valid="$WORK/bpe/valid.clean"
    [ ${#clean[@]} -eq 1 ] && valid="$WORK/bpe/valid"
    step binarize preprocess "dict.$src.txt" --source-lang "$src" --target-lang "$tgt" --joined-dictionary \
        --trainpref "$WORK/bpe/train.clean" --validpref "$valid" --testpref "$WORK/bpe/test"
}

# wmt14_en_de_sources : WMT'14 En-De's training corpora (Europarl v7, Common Crawl, News
# Commentary v9) and its test sets (test-full.tgz), fetched and checked; sets TRAIN, their prefixes
wmt14_en_de_sources() {
    fetch training-parallel-europarl-v7.tgz http://statmt.org/wmt13/training-parallel-europarl-v7.tgz
    fetch training-parallel-commoncrawl.tgz http://statmt.org/wmt13/training-parallel-commoncrawl.tgz
    fetch training-parallel-nc-v9.tgz http://statmt.org/wmt14/training-parallel-nc-v9.tgz
    fetch test-full.tgz http://statmt.org/wmt14/test-full.tgz
    TRAIN="training/europarl-v7.de-en commoncrawl.de-en training/news-commentary-v9.de-en"
    require_pairs en de $TRAIN
}

# wmt_text SRC TGT "TRAIN_PREFIX..." TEST_SRC_SGM TEST_REF_SGM [DEV_SRC_SGM DEV_REF_SGM] :
# $WORK/text/all.{SRC,TGT} (the training corpora one after the other; every TRAIN_PREFIX has
# .SRC and .TGT files, or .SRC.gz/.TGT.gz), test.{SRC,TGT} and, with a dev set, valid.*;
# test.ref.TGT (valid.ref.TGT) is the references' plain text, to score against
wmt_text() {
    local src=$1 tgt=$2 prefixes=($3) test_src=$4 test_ref=$5 dev_src=${6:-} dev_ref=${7:-} l p gz
    mkdir -p "$WORK/text"
    for l in "$src" "$tgt"; do
        local files=()
        for p in "${prefixes[@]}"; do
            gz=""; locate "$p.$l" >/dev/null || gz=.gz
            files+=("$p.$l$gz")
        done
        concat "$WORK/text/all.$l" "${files[@]}"
    done
    "${PREP[@]}" segments "$(locate "$test_src")" --out "$WORK/text/test.$src"
    "${PREP[@]}" segments "$(locate "$test_ref")" --out "$WORK/text/test.$tgt"
    "${PREP[@]}" segments "$(locate "$test_ref")" --out "$WORK/text/test.ref.$tgt" --plain
    if [ -n "$dev_src" ]; then
        "${PREP[@]}" segments "$(locate "$dev_src")" --out "$WORK/text/valid.$src"
        "${PREP[@]}" segments "$(locate "$dev_ref")" --out "$WORK/text/valid.$tgt"
        "${PREP[@]}" segments "$(locate "$dev_ref")" --out "$WORK/text/valid.ref.$tgt" --plain
    fi
}

# require_pairs SRC TGT PREFIX... : each PREFIX.SRC/.TGT exists, plain or gzipped
require_pairs() {
    local src=$1 tgt=$2 missing=() p l; shift 2
    for p in "$@"; do
        for l in "$src" "$tgt"; do
            locate "$p.$l" >/dev/null || locate "$p.$l.gz" >/dev/null || missing+=("$p.$l")
        done
    done
    [ ${#missing[@]} -eq 0 ] || die "missing from ${RAW_DIR:-the downloads}: ${missing[*]}"
}
