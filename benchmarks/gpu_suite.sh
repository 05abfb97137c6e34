#!/usr/bin/env bash
# Every benchmark on one GPU in one call (~8 minutes), one table, numbers also in JSON
# (benchmarks/gpu_suite.py). Installs nothing: run it where this package, fairseq and a CUDA
# torch are installed (bash scripts/install.sh installs a CPU torch):
#
#   bash benchmarks/gpu_suite.sh [--out gpu_suite.json]
#   bash benchmarks/gpu_suite.sh --smoke      # tiny sizes on any device, the same code (CI, on the CPU)
set -euo pipefail
for arg in "$@"; do
    case $arg in -h|--help) cat <<'EOF'
usage: bash benchmarks/gpu_suite.sh [--smoke] [--device DEVICE] [--out FILE]

Every benchmark of benchmarks/ on one GPU in one call (~8 minutes): the GLT kernels, DExTra
against the authors' formulation, the training step in fp32 / bf16 / fp16, activation
checkpointing, beam-5 translation; one table, the numbers also in JSON (benchmarks/gpu_suite.py,
whose options it passes on). Installs nothing: run it where this package, fairseq and a CUDA
torch are installed.

Options:
  --smoke          tiny sizes on any device, the same code path (default: off, full sizes on CUDA)
  --device DEVICE  cpu or cuda (default: cuda when available, else cpu)
  --out FILE       where to write the numbers (JSON) (default: gpu_suite.json)
  -h, --help       print this help and exit

example:
  bash benchmarks/gpu_suite.sh --out gpu_suite.json
EOF
        exit 0 ;;
    esac
done
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=python3
[ -x "$REPO/.venv/bin/python" ] && PY="$REPO/.venv/bin/python"
SMOKE=0
for arg in "$@"; do [ "$arg" = --smoke ] && SMOKE=1; done
"$PY" -c "import fairseq" 2>/dev/null || { echo "gpu_suite.sh: fairseq is not importable: install the project (bash scripts/install.sh) with a CUDA torch" >&2; exit 1; }
if [ "$SMOKE" = 0 ]; then
    "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" \
        || { echo "gpu_suite.sh: no CUDA device is visible to torch (run it on a GPU machine, or pass --smoke)" >&2; exit 1; }
    "$PY" -c "import torch; print('gpu_suite.sh:', torch.cuda.get_device_name(), '| torch', torch.__version__)"
fi
exec "$PY" "$REPO/benchmarks/gpu_suite.py" "$@"
