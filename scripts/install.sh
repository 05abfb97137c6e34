#!/usr/bin/env bash
# Create .venv/ (Python 3.11) with a CPU torch, fairseq and delight_fairseq (editable).
# Order matters: torch first, so that nothing pulls a CUDA build (the CPU wheel, not a multi-GB CUDA one);
# fairseq-fixed is built with --no-build-isolation against that torch.
# Idempotent: a second run reuses the venv and only re-installs the package.
set -euo pipefail
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
