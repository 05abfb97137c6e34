#!/usr/bin/env bash
# Every benchmark on one GPU in one call (~8 minutes), one table, numbers also in JSON
# (benchmarks/gpu_suite.py). Installs nothing: run it where this package, fairseq and a CUDA
# torch are installed (bash scripts/install.sh installs a CPU torch):
#
#   bash benchmarks/gpu_suite.sh [--out gpu_suite.json]
#   bash benchmarks/gpu_suite.sh --smoke      # tiny sizes on any device, the same code (CI, on the CPU)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=python3
[ -x "$REPO/.venv/bin/python" ] && PY="$REPO/.venv/bin/python"
SMOKE=0
for arg in "$@"; do [ "$arg" = --smoke ] && SMOKE=1; done
"$PY" -c "import fairseq" 2>/dev/null || { echo "gpu_suite.sh: fairseq is not importable: install the project (bash scripts/install.sh) or, on the GPU machine, source .whl/install.sh first" >&2; exit 1; }
if [ "$SMOKE" = 0 ]; then
    "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
        || { echo "gpu_suite.sh: no CUDA device is visible to torch (run it on a GPU machine, or pass --smoke)" >&2; exit 1; }
    "$PY" -c "import torch; print('gpu_suite.sh:', torch.cuda.get_device_name(), '| torch', torch.__version__)"
fi
exec "$PY" "$REPO/benchmarks/gpu_suite.py" "$@"
