#!/usr/bin/env bash
# aarch64 tests under emulation on an x86-64 machine: sets up the cross toolchain, qemu-aarch64 and
# the aarch64 ONNX Runtime (scripts/arm-setup.sh), cross-builds (scripts/arm-build.sh), runs the
# C++ kernel tests (portable + NEON against a scalar reference) under qemu, then the pytest module
# tests/test_arm.py (ops vs the numpy reference and an exported SRResNet-SCALES vs x86 ORT, with
# the aarch64 runner under qemu). Prints how long each step took.
#
# Usage:   bash scripts/arm-test.sh [--no-pytest] [pytest args...]
# Env:     SCALES_EDGE_QEMU_CPU  qemu -cpu model (default: qemu's "max")
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
run_pytest=1
if [ "${1:-}" = "--no-pytest" ]; then run_pytest=0; shift; fi

t0=${SECONDS}
bash scripts/arm-setup.sh >/dev/null
export SCALES_EDGE_ARM_SETUP_DONE=1
t1=${SECONDS}
ops_dir="$(bash scripts/arm-build.sh)"
t2=${SECONDS}
# shellcheck disable=SC1091
. .cache/arm/env.sh
qemu=("${SCALES_EDGE_QEMU}")
[ -n "${SCALES_EDGE_QEMU_CPU:-}" ] && qemu+=(-cpu "${SCALES_EDGE_QEMU_CPU}")
qemu+=(-L "${SCALES_EDGE_AARCH64_SYSROOT}")
echo "arm-test: C++ kernel tests under qemu-aarch64"
env -u SCALES_EDGE_KERNEL "${qemu[@]}" "${ops_dir}/scales_edge_kernel_tests" | tail -n 3
t3=${SECONDS}
if [ "${run_pytest}" = 1 ]; then
  echo "arm-test: pytest tests/test_arm.py"
  pytest -q tests/test_arm.py "$@"
fi
t4=${SECONDS}
echo "arm-test: setup $((t1 - t0)) s, cross-build $((t2 - t1)) s, kernel tests $((t3 - t2)) s$([ "${run_pytest}" = 1 ] && echo ", pytest $((t4 - t3)) s")"
