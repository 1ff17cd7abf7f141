#!/usr/bin/env bash
# Cross-build scales-edge for aarch64: the op library (with the NEON and portable kernel paths),
# the C++ kernel tests and the native runner scales-edge-run linked against the aarch64
# libonnxruntime of the onnxruntime wheel, against the compatibility sysroot of
# scripts/arm-setup.sh (Debian 11's glibc and libstdc++: the results need GLIBC_2.17 symbols
# only). Runs scripts/arm-setup.sh first (idempotent).
#
# Usage:   bash scripts/arm-build.sh [BUILD_DIR]        (default build/aarch64)
# Output:  BUILD_DIR/ops/{libscales_edge_ops.so, scales-edge-run, libonnxruntime.so.1,
#          scales_edge_kernel_tests}; copy the first three to a board (docs/arm.md).
# Env:     SCALES_EDGE_JOBS   parallel compile jobs (default 2)
#          CMAKE_BUILD_TYPE   default Release
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
build="${1:-build/aarch64}"
if [ "${SCALES_EDGE_ARM_SETUP_DONE:-0}" = 1 ] && [ -f .cache/arm/env.sh ]; then
  env_sh="${repo_root}/.cache/arm/env.sh"   # scripts/arm-test.sh just ran the set-up
else
  env_sh="$(bash scripts/arm-setup.sh)"
fi
# shellcheck disable=SC1090
. "${env_sh}"
if [ -z "${ONNXRUNTIME_INCLUDE_DIR:-}" ] && [ ! -f third_party/ort-headers/include/onnxruntime_cxx_api.h ] &&
   [ ! -f /usr/include/onnxruntime/onnxruntime_cxx_api.h ]; then
  bash scripts/fetch-ort-headers.sh >/dev/null
fi
generator=()
command -v ninja >/dev/null 2>&1 && [ ! -f "${build}/Makefile" ] && generator=(-G Ninja)
echo "arm-build: configuring ${build}" >&2
cmake -S . -B "${build}" "${generator[@]}" \
  -DCMAKE_TOOLCHAIN_FILE="${repo_root}/cmake/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE="${CMAKE_BUILD_TYPE:-Release}" \
  -DAARCH64_SYSROOT="$([ "${SCALES_EDGE_AARCH64_COMPAT:-0}" = 1 ] && echo "${SCALES_EDGE_AARCH64_SYSROOT}")" \
  -DSCALES_EDGE_BUILD_TESTS=ON -DSCALES_EDGE_BUILD_RUNNER=ON \
  -DONNXRUNTIME_LIBRARY="${SCALES_EDGE_ORT_AARCH64_LIB}" >"${build}.configure.log" 2>&1 ||
  { cat "${build}.configure.log" >&2; exit 1; }
echo "arm-build: building (-j${SCALES_EDGE_JOBS:-2})" >&2
cmake --build "${build}" -j "${SCALES_EDGE_JOBS:-2}" >"${build}.build.log" 2>&1 ||
  { tail -n 60 "${build}.build.log" >&2; exit 1; }
# Compiler warnings, except those located in the sysroot's own headers.
if grep -i "warning:" "${build}.build.log" | grep -v -q "${SCALES_EDGE_AARCH64_SYSROOT}/"; then
  grep -i "warning:" "${build}.build.log" | grep -v "${SCALES_EDGE_AARCH64_SYSROOT}/" >&2
fi
for f in libscales_edge_ops.so scales-edge-run scales_edge_kernel_tests; do
  [ -f "${build}/ops/$f" ] || { echo "arm-build: error: ${build}/ops/$f was not built" >&2; exit 1; }
done
echo "arm-build: done: $(cd "${build}/ops" && ls libscales_edge_ops.so scales-edge-run libonnxruntime.so.* scales_edge_kernel_tests | tr '\n' ' ')" >&2
(cd "${build}/ops" && pwd)
