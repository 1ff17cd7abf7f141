#!/usr/bin/env bash
# Set up (or refresh) the project's virtualenv on a fresh machine: torch (CPU wheel first, so no
# CUDA build gets pulled in), the ONNX Runtime headers, then scales-edge itself with its C++ op
# library, the authoring extra ([torch]) and the test tools ([test]). Idempotent: reinstalls the
# project only when a tracked file changed.
# --arm (or SCALES_EDGE_ARM=1) also sets up the aarch64 cross-build and emulation
# (scripts/arm-setup.sh: cross toolchain, qemu-aarch64, aarch64 ONNX Runtime; docs/arm.md).
set -euo pipefail
arm=${SCALES_EDGE_ARM:-0}
for arg in "$@"; do
  case "$arg" in
    --arm) arm=1 ;;
    *) echo "setup.sh: unknown argument '$arg' (only --arm)" >&2; exit 2 ;;
  esac
done
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${SCALES_EDGE_VENV:-.venv}
PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true

if ! python -c "import torch" 2>/dev/null; then
  echo "[setup] installing torch (CPU)"
  pip install -q "torch==${SCALES_EDGE_TORCH:-2.13.0}" 2>&1 | grep -v '^WARNING: Location' || true
fi

if ! command -v g++ >/dev/null || ! command -v dpkg >/dev/null; then
  echo "[setup] installing the C++ toolchain (apt)"
  apt-get update -qq && apt-get install -y -qq g++ dpkg >/dev/null
fi
# The native runner links libpng, libjpeg and zlib statically (runner/README.md).
if [ ! -f /usr/include/png.h ] || [ ! -f /usr/include/jpeglib.h ] || [ ! -f /usr/include/zlib.h ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "[setup] installing the runner's image codecs (apt: libpng-dev libjpeg-dev zlib1g-dev)"
    apt-get install -y -qq libpng-dev libjpeg-dev zlib1g-dev >/dev/null 2>&1 ||
      { apt-get update -qq && apt-get install -y -qq libpng-dev libjpeg-dev zlib1g-dev >/dev/null; }
  else
    echo "[setup] note: no libpng-dev / libjpeg-dev / zlib1g-dev: scales-edge-run will not be built" >&2
  fi
fi

if [ -z "${ONNXRUNTIME_INCLUDE_DIR:-}" ] && [ ! -f /usr/include/onnxruntime/onnxruntime_cxx_api.h ]; then
  bash scripts/fetch-ort-headers.sh >/dev/null
fi

stamp="$VENV/.scales-edge-installed"
state=$( (git ls-files -s 2>/dev/null; git diff 2>/dev/null; python -c 'import sys; print(sys.version)') | sha1sum | cut -d' ' -f1)
# Imports run from / so that the source tree (cwd) does not shadow the installed package.
installed() { (cd / && python -c "import scales_edge; scales_edge.get_library_path()") 2>/dev/null; }
if [ "$(cat "$stamp" 2>/dev/null)" != "$state" ] || ! installed; then
  echo "[setup] installing scales-edge (builds the C++ op library)"
  pip install -q ".[torch,test]" 2>&1 | grep -v '^WARNING: Location' || true
  (cd / && python -c "import scales_edge; print('[setup] op library:', scales_edge.get_library_path())")
  echo "$state" > "$stamp"
fi

if [ "$arm" = 1 ]; then
  echo "[setup] aarch64 cross toolchain, qemu-aarch64, aarch64 ONNX Runtime"
  bash scripts/arm-setup.sh >/dev/null
fi
