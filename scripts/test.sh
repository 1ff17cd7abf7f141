#!/usr/bin/env bash
# The test suite: C++ kernel tests under AddressSanitizer + UndefinedBehaviorSanitizer, the aarch64
# cross-build with its kernel tests under qemu (SCALES_EDGE_SKIP_ARM=1 skips that), the portable
# wheels into dist/ (scripts/build-wheels.sh), then pytest against the installed package, then the
# fault-injection sweep (SCALES_EDGE_SKIP_SWEEP=1 skips it). Extra arguments go to the first pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
# shellcheck disable=SC1091
. "${SCALES_EDGE_VENV:-.venv}/bin/activate"

echo "[test] C++ kernel tests (ASan + UBSan)"
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DSCALES_EDGE_SANITIZE=ON -DSCALES_EDGE_BUILD_TESTS=ON -DSCALES_EDGE_BUILD_RUNNER=OFF >/dev/null
cmake --build build/asan -j "$(nproc)" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build/asan --output-on-failure

echo "[test] aarch64: cross-build + C++ kernel tests under qemu (scripts/arm-test.sh; docs/arm.md)"
if [ "${SCALES_EDGE_SKIP_ARM:-0}" = 1 ]; then
  echo "[test] skipped (SCALES_EDGE_SKIP_ARM=1); tests/test_arm.py will skip too unless CI is set"
else
  arm_t0=${SECONDS}
  bash scripts/arm-test.sh --no-pytest || {
    echo "[test] the aarch64 step failed; on a machine that cannot install the cross toolchain" \
         "(Debian/Ubuntu apt as root), run with SCALES_EDGE_SKIP_ARM=1" >&2
    exit 1
  }
  echo "[test] aarch64 step took $((SECONDS - arm_t0)) s"
fi

echo "[test] wheels: py3-none-manylinux_2_28 for x86_64$([ "${SCALES_EDGE_SKIP_ARM:-0}" = 1 ] || echo " and aarch64")" \
     "(scripts/build-wheels.sh; tests/test_wheels.py installs and runs them)"
wheels_t0=${SECONDS}
bash scripts/build-wheels.sh >/dev/null
echo "[test] wheels took $((SECONDS - wheels_t0)) s"

echo "[test] pytest (includes tests/test_arm.py: ops and an exported model on aarch64 under qemu)"
# `pytest` (not `python -m pytest`) keeps the source tree off sys.path, so the installed package is tested.
pytest -q "$@"

echo "[test] fault-injection sweep (pytest -m fault_sweep: generated models on every kernel path, killed writes)"
if [ "${SCALES_EDGE_SKIP_SWEEP:-0}" = 1 ]; then
  echo "[test] skipped (SCALES_EDGE_SKIP_SWEEP=1)"
else
  sweep_t0=${SECONDS}
  pytest -q -m fault_sweep tests/test_fault_injection.py tests/test_fault_files.py
  echo "[test] the sweep took $((SECONDS - sweep_t0)) s"
fi
