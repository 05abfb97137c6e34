#!/usr/bin/env bash
# Create .venv/ (Python 3.11) with a CPU torch, fairseq and delight_fairseq (editable).
# Order matters: torch first, so that nothing pulls a CUDA build (the CPU wheel, not a multi-GB CUDA one);
# fairseq-fixed is built with --no-build-isolation against that torch.
# Idempotent: a second run reuses the venv and only re-installs the package.
set -euo pipefail
case ${1:-} in -h|--help) cat <<'EOF'
usage: [PYTHON=python3.11] [VENV=.venv] bash scripts/install.sh

Creates the virtualenv VENV with a CPU torch, fairseq (fairseq-fixed, built against that
torch) and delight_fairseq (editable, with its test extras), then prints the versions.
Idempotent: a second run reuses the virtualenv and only re-installs the package.
It takes no options.

Environment:
  PYTHON       the interpreter the virtualenv is made with (default: python3.11, else python3)
  VENV         the virtualenv's folder (default: .venv)
  -h, --help   print this help and exit (nothing is installed)

example:
  bash scripts/install.sh && .venv/bin/python -m pytest -q -m fast
EOF
    exit 0 ;;
esac
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
pip() { "$VENV/bin/python" -m pip -q --disable-pip-version-check "$@"; }
pip install --upgrade pip
pip install torch==2.13.0
pip install cython numpy setuptools wheel
if ! "$VENV/bin/python" -c "import fairseq" 2>/dev/null; then
    pip install --no-build-isolation fairseq-fixed==0.12.3.1
fi
pip install --no-build-isolation -e ".[test]"
"$VENV/bin/python" -c "import torch, fairseq, delight_fairseq; print('installed: torch', torch.__version__, '| fairseq', fairseq.__version__, '| delight_fairseq', delight_fairseq.__version__)"
