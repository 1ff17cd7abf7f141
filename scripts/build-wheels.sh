#!/usr/bin/env bash
# Build the portable wheels into dist/: scales_edge-<version>-py3-none-manylinux_2_28_x86_64.whl
# and ..._aarch64.whl. One wheel per platform serves every Python 3: the op library (and the
# native runner, when built in) link neither Python nor libonnxruntime's Python module.
#
#   x86_64   the host's g++ against Debian 11's glibc 2.31 and GCC 10 libstdc++
#            (cmake/x86_64-linux-gnu.cmake; the root is fetched into .cache/x86_64/ with a private
#            apt configuration, scripts/lib/private-apt.sh), so the library needs no GLIBCXX_3.4.29
#            (GCC 11+) symbol as a build against this machine's GCC 12 libstdc++ does;
#   aarch64  cross-built as scripts/arm-build.sh does (scripts/arm-setup.sh: cross g++, Debian 11
#            arm64 root, the aarch64 onnxruntime wheel's library).
#
# Each wheel is then checked twice against the manylinux_2_28 policy (glibc <= 2.28, libstdc++ of
# GCC 8: GLIBCXX <= 3.4.25, CXXABI <= 1.3.11) by scripts/check_wheel.py --auditwheel: auditwheel's
# own analysis (`auditwheel show`: the symbol policy and the external libraries), and the same
# bound written out, with the py3-none tag and the ELF architecture.
#
# Usage:   bash scripts/build-wheels.sh [x86_64] [aarch64]     (default: both;
#          SCALES_EDGE_SKIP_ARM=1 drops aarch64 from the default)
# Output:  the wheel paths, one a line (stdout); logs in build/wheel-<arch>.log
# Env:     PYTHON (default: python, the active venv's), SCALES_EDGE_JOBS (default 2)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"
log() { echo "build-wheels: $*" >&2; }
die() { echo "build-wheels: error: $*" >&2; exit 1; }
py="${PYTHON:-$(command -v python || command -v python3)}"

arches=("$@")
if [ ${#arches[@]} -eq 0 ]; then
  arches=(x86_64)
  [ "${SCALES_EDGE_SKIP_ARM:-0}" = 1 ] || arches+=(aarch64)
fi
for a in "${arches[@]}"; do
  case "$a" in x86_64|aarch64) ;; *) die "unknown architecture '$a' (x86_64 or aarch64)" ;; esac
done

if ! "${py}" -m auditwheel --version >/dev/null 2>&1; then
  log "installing auditwheel (pip)"
  "${py}" -m pip install -q auditwheel 2>&1 | grep -v '^WARNING: Location' >&2 || true
fi
if [ -z "${ONNXRUNTIME_INCLUDE_DIR:-}" ] && [ ! -f third_party/ort-headers/include/onnxruntime_cxx_api.h ] &&
   [ ! -f /usr/include/onnxruntime/onnxruntime_cxx_api.h ]; then
  bash scripts/fetch-ort-headers.sh >/dev/null
fi
mkdir -p dist build

# build_wheel ARCH CMAKE_DEFINES...: pip wheel tagged py3-none-manylinux_2_28_ARCH into dist/,
# then the two checks (auditwheel show, check_wheel.py).
build_wheel() {
  local arch="$1" out="build/wheels/$1" logf="build/wheel-$1.log" whl
  shift
  local settings=(-C "build-dir=build/wheel-${arch}" -C "cmake.define.CMAKE_BUILD_TYPE=Release")
  local d
  for d in "$@"; do settings+=(-C "cmake.define.${d}"); done
  rm -rf "${out}" && mkdir -p "${out}"
  log "${arch}: building the wheel (log: ${logf})"
  # scikit-build-core takes the platform tag from _PYTHON_HOST_PLATFORM; the checks below hold it to its word.
  _PYTHON_HOST_PLATFORM="manylinux_2_28_${arch}" CMAKE_BUILD_PARALLEL_LEVEL="${SCALES_EDGE_JOBS:-2}" \
    "${py}" -m pip wheel -v --no-deps -w "${out}" "${settings[@]}" . >"${logf}" 2>&1 ||
    { tail -n 40 "${logf}" >&2; die "${arch}: pip wheel failed (${logf})"; }
  whl="$(find "${out}" -maxdepth 1 -name "scales_edge-*-py3-none-manylinux_2_28_${arch}.whl" | head -n 1)"
  [ -n "${whl}" ] || die "${arch}: pip wheel wrote no py3-none-manylinux_2_28_${arch} wheel ($(ls "${out}"))"
  rm -f dist/scales_edge-*_"${arch}".whl
  cp "${whl}" dist/
  whl="dist/$(basename "${whl}")"
  "${py}" scripts/check_wheel.py --auditwheel --arch "${arch}" "${whl}" >&2 ||
    { rm -f "${whl}"; die "${arch}: the wheel does not comply with manylinux_2_28 (see above)"; }
  echo "${repo_root}/${whl}"
}

for arch in "${arches[@]}"; do
  case "${arch}" in
    x86_64)
      sysroot="${repo_root}/.cache/x86_64/sysroot-bullseye"
      # shellcheck source=lib/private-apt.sh
      . scripts/lib/private-apt.sh
      if ! sysroot_complete "${sysroot}" x86_64-linux-gnu; then
        mkdir -p "$(dirname "${sysroot}")"
        fetch_sysroot bullseye amd64 "${sysroot}" || die "could not fetch the Debian 11 amd64 root"
      fi
      ort_lib="$("${py}" -c 'import glob, os, onnxruntime as o; print((sorted(glob.glob(os.path.join(os.path.dirname(o.__file__), "capi", "libonnxruntime.so*"))) or [""])[0])' 2>/dev/null || true)"
      build_wheel x86_64 "CMAKE_TOOLCHAIN_FILE=${repo_root}/cmake/x86_64-linux-gnu.cmake" \
        "X86_64_SYSROOT=${sysroot}" ${ort_lib:+"ONNXRUNTIME_LIBRARY=${ort_lib}"}
      ;;
    aarch64)
      env_sh="$(bash scripts/arm-setup.sh)"
      # shellcheck disable=SC1090
      . "${env_sh}"
      [ "${SCALES_EDGE_AARCH64_COMPAT:-0}" = 1 ] || die "no Debian 11 arm64 root (scripts/arm-setup.sh); a wheel built against Debian 12's would need glibc 2.34"
      build_wheel aarch64 \
        "CMAKE_TOOLCHAIN_FILE=${repo_root}/cmake/aarch64-linux-gnu.cmake" \
        "AARCH64_SYSROOT=${SCALES_EDGE_AARCH64_SYSROOT}" "ONNXRUNTIME_LIBRARY=${SCALES_EDGE_ORT_AARCH64_LIB}"
      ;;
  esac
done
