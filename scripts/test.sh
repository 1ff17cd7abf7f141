#!/usr/bin/env bash
# The test suite: C++ kernel tests under AddressSanitizer + UndefinedBehaviorSanitizer, then pytest
# against the installed package. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SCALES_EDGE_VENV:-.venv}/bin/activate"

echo "[test] C++ kernel tests (ASan + UBSan)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DSCALES_EDGE_SANITIZE=ON -DSCALES_EDGE_BUILD_TESTS=ON >/dev/null
cmake --build build/asan -j "$(nproc)" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure

echo "[test] pytest"
# `pytest` (not `python -m pytest`) keeps the source tree off sys.path, so the installed package is tested.
pytest -q "$@"
