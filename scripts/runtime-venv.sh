#!/usr/bin/env bash
# A runtime install of scales-edge, as a user on a board or a server gets it: a fresh virtualenv
# with a built wheel (scripts/build-wheels.sh) and its runtime dependencies (onnxruntime, onnx,
# numpy, OpenCV, Typer, rich), binary wheels only (--only-binary=:all:, no compiler is run), and
# no PyTorch. Used by tests/test_wheels.py and benchmarks/bench_import.py.
#
# Usage:   bash scripts/runtime-venv.sh WHEEL DEST [EXTRA_PACKAGES...]
# Prints:  DEST/bin/python
# Env:     PYTHON  interpreter for the venv (default: python3)
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: runtime-venv.sh WHEEL DEST [EXTRA_PACKAGES...]" >&2; exit 2; }
wheel="$1" dest="$2"
shift 2
[ -f "${wheel}" ] || { echo "runtime-venv: no wheel ${wheel} (bash scripts/build-wheels.sh)" >&2; exit 1; }
"${PYTHON:-python3}" -m venv "${dest}"
# Compilers out of reach: a source build would fail loudly instead of passing unnoticed.
CC=/bin/false CXX=/bin/false "${dest}/bin/python" -m pip install -q --only-binary=:all: "${wheel}" "$@" 2>&1 |
  grep -v '^WARNING: Location' >&2 || true
"${dest}/bin/python" -c "import scales_edge" || { echo "runtime-venv: the install in ${dest} is broken" >&2; exit 1; }
if "${dest}/bin/python" -c "import torch" 2>/dev/null; then
  echo "runtime-venv: torch got installed into ${dest}; the runtime install must not pull it" >&2
  exit 1
fi
echo "${dest}/bin/python"
