#!/usr/bin/env bash
# Everything needed to build scales-edge for aarch64 on an x86-64 Debian/Ubuntu machine and to run
# the results under emulation. Idempotent; downloads are cached in .cache/arm/ (gitignored).
#
#   1. the cross compiler: g++-aarch64-linux-gnu (system apt; needs root when missing).
#   2. a compatibility sysroot: the aarch64 glibc and libstdc++ of Debian 11 (bullseye: glibc 2.31,
#      GCC 10's libstdc++), with the static libpng, libjpeg-turbo and zlib the native runner links.
#      Building against it keeps the binaries to GLIBC_2.17 / GLIBCXX_3.4.21
#      symbols, so they run on any board that ONNX Runtime's aarch64 wheel runs on (glibc >= 2.28);
#      qemu runs them on that older userland too. ARM_SYSROOT_SUITE=none (or a failed download)
#      falls back to the cross compiler's own Debian 12 root /usr/aarch64-linux-gnu, whose
#      binaries need glibc >= 2.34 and GCC 11's libstdc++.
#   3. qemu-aarch64 from Debian 13 (trixie)'s qemu-user package (Debian 12's qemu 7.2 crashes in
#      ONNX Runtime); only the statically linked qemu-aarch64 binary is kept.
#   4. libonnxruntime for aarch64, from the onnxruntime wheel on PyPI (manylinux_2_28_aarch64),
#      by default the same version as the onnxruntime of the active Python.
# Debian packages of other releases (2, 3) are fetched with a private apt configuration (own
# sources list, lists, cache and an empty dpkg status, the archive URI taken from this system's apt
# sources), unpacked with dpkg -x; the system's apt setup and package state are not touched.
#
# Usage:   bash scripts/arm-setup.sh
# Prints:  the path of .cache/arm/env.sh, sourced by scripts/arm-build.sh and scripts/arm-test.sh:
#            SCALES_EDGE_QEMU              the qemu-aarch64 binary
#            SCALES_EDGE_AARCH64_SYSROOT   aarch64 root to build against and to give qemu (-L)
#            SCALES_EDGE_AARCH64_COMPAT    1 when that is the compatibility sysroot of step 2
#            SCALES_EDGE_ORT_AARCH64_LIB   libonnxruntime.so.<version> for aarch64
#            SCALES_EDGE_ORT_AARCH64_VERSION
# Env:     SCALES_EDGE_ARM_CACHE  cache folder (default: <repo>/.cache/arm)
#          ARM_SYSROOT_SUITE      Debian suite of the compatibility sysroot (default bullseye; none)
#          QEMU_SUITE             Debian suite for qemu-user (default trixie)
#          DEBIAN_MIRROR          Debian archive URI (default: the one this system's apt sources use)
#          ORT_AARCH64_VERSION    onnxruntime version to fetch (default: the active Python's)
#          PYTHON                 Python with pip (default: python, else python3)
set -euo pipefail

die() { echo "arm-setup: error: $*" >&2; exit 1; }
log() { echo "arm-setup: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache="${SCALES_EDGE_ARM_CACHE:-${repo_root}/.cache/arm}"
mkdir -p "${cache}"
cache="$(cd "${cache}" && pwd)"
cross_root=/usr/aarch64-linux-gnu
py="${PYTHON:-$(command -v python || command -v python3 || true)}"
[ -n "${py}" ] || die "no python found (set PYTHON)"

case "${1:-}" in
  -h|--help) sed -n '2,35p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1'" ;;
esac
[ "$(uname -m)" = x86_64 ] || log "note: this host is $(uname -m); the scripts are meant for an x86-64 build machine"

# ------------------------------------------------------------------ private apt (other Debian releases)
# shellcheck source=lib/private-apt.sh
. "${repo_root}/scripts/lib/private-apt.sh"

# ------------------------------------------------------------------ 1. cross compiler (system apt)
cross_pkgs=(g++-aarch64-linux-gnu libc6-dev-arm64-cross libstdc++6-arm64-cross)
have_toolchain() {
  command -v aarch64-linux-gnu-g++ >/dev/null 2>&1 && [ -f "${cross_root}/lib/libc.so.6" ] &&
    ls "${cross_root}"/lib/libstdc++.so.6* >/dev/null 2>&1
}
if ! have_toolchain; then
  command -v apt-get >/dev/null 2>&1 || die "aarch64-linux-gnu-g++ is missing and apt-get is not available; install an aarch64-linux-gnu cross compiler with its glibc and libstdc++"
  [ "$(id -u)" -eq 0 ] || die "the aarch64 cross toolchain is missing; as root run: apt-get install ${cross_pkgs[*]}"
  log "installing the cross toolchain (apt): ${cross_pkgs[*]}"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${cross_pkgs[@]}" >"${cache}/apt-install.log" 2>&1; then
    log "apt-get install failed; updating the package lists and retrying"
    apt-get update -q >"${cache}/apt-update.log" 2>&1 || { cat "${cache}/apt-update.log" >&2; die "apt-get update failed"; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${cross_pkgs[@]}" >"${cache}/apt-install.log" 2>&1 ||
      { tail -n 20 "${cache}/apt-install.log" >&2; die "apt-get install ${cross_pkgs[*]} failed"; }
  fi
  have_toolchain || die "installed ${cross_pkgs[*]} but ${cross_root} still lacks libc/libstdc++"
fi
log "cross compiler: aarch64-linux-gnu-g++ $(aarch64-linux-gnu-g++ -dumpfullversion 2>/dev/null || aarch64-linux-gnu-g++ -dumpversion)"

# ------------------------------------------------------------------ 2. compatibility sysroot
sysroot_suite="${ARM_SYSROOT_SUITE:-bullseye}"
sysroot="${cross_root}"
compat=0
if [ "${sysroot_suite}" != none ]; then
  dest="${cache}/sysroot-${sysroot_suite}"
  if sysroot_complete "${dest}" aarch64-linux-gnu || fetch_sysroot "${sysroot_suite}" arm64 "${dest}"; then
    sysroot="${dest}"
    compat=1
    log "sysroot: ${sysroot} ($(sed -n 's|^\./libc6_\([^_]*\)_.*|glibc \1|p' "${dest}/.packages"))"
  else
    log "WARNING: no ${sysroot_suite} sysroot; building against ${cross_root} (the binaries will need glibc >= 2.34 on the board)"
  fi
fi

# ------------------------------------------------------------------ 3. qemu-aarch64 (Debian 13)
qemu_dir="${cache}/qemu"
qemu="${qemu_dir}/qemu-aarch64"
qemu_suite="${QEMU_SUITE:-trixie}"
if [ ! -x "${qemu}" ] || ! "${qemu}" --version >/dev/null 2>&1; then
  private_apt "${qemu_suite}" "$(dpkg --print-architecture 2>/dev/null || echo amd64)" || die "cannot fetch qemu-user from Debian ${qemu_suite}"
  log "downloading qemu-user (${qemu_suite})"
  private_download qemu-user || die "could not download qemu-user from '${qemu_suite}'"
  deb="$(find "${work}/download" -maxdepth 1 -name 'qemu-user_*.deb' | head -n 1)"
  [ -n "${deb}" ] || die "apt-get download did not produce a qemu-user .deb"
  version="$(dpkg-deb -f "${deb}" Version)"
  dpkg -x "${deb}" "${work}/root"
  src="$(find "${work}/root" -name qemu-aarch64 -type f | head -n 1)"
  [ -n "${src}" ] || die "qemu-user ${version} has no qemu-aarch64 binary"
  mkdir -p "${qemu_dir}"
  cp "${src}" "${qemu}.tmp" && chmod 755 "${qemu}.tmp" && mv "${qemu}.tmp" "${qemu}"
  echo "${version}" > "${qemu_dir}/DEBIAN_PACKAGE_VERSION"
  "${qemu}" --version >/dev/null 2>&1 ||
    die "${qemu} (qemu-user ${version}) does not run on this host: $(file -b "${qemu}" 2>/dev/null || true)"
fi
log "qemu: $("${qemu}" --version | head -n 1)"

# ------------------------------------------------------------------ 4. aarch64 libonnxruntime (PyPI wheel)
ort_version="${ORT_AARCH64_VERSION:-$("${py}" -c 'import onnxruntime; print(onnxruntime.__version__)' 2>/dev/null || true)}"
ort_version="${ort_version:-1.32.0}"
ort_dir="${cache}/onnxruntime-aarch64/${ort_version}"
ort_lib="$(find "${ort_dir}" -maxdepth 1 -name 'libonnxruntime.so.*' -type f 2>/dev/null | head -n 1 || true)"
if [ -z "${ort_lib}" ]; then
  wheels="${cache}/wheels"
  mkdir -p "${wheels}"
  whl="$(find "${wheels}" -maxdepth 1 -name "onnxruntime-${ort_version}-*aarch64*.whl" | head -n 1)"
  if [ -z "${whl}" ]; then
    log "downloading the onnxruntime ${ort_version} wheel for manylinux_2_28_aarch64 (pip)"
    "${py}" -m pip download -q --only-binary=:all: --platform manylinux_2_28_aarch64 \
      --python-version 3.11 --no-deps -d "${wheels}" "onnxruntime==${ort_version}" 2>&1 |
      grep -v "^WARNING: Location" >&2 || true
    whl="$(find "${wheels}" -maxdepth 1 -name "onnxruntime-${ort_version}-*aarch64*.whl" | head -n 1)"
    [ -n "${whl}" ] || die "pip could not download onnxruntime==${ort_version} for manylinux_2_28_aarch64 (set ORT_AARCH64_VERSION)"
  fi
  mkdir -p "${ort_dir}"
  "${py}" - "${whl}" "${ort_dir}" <<'EOF'
import sys, zipfile, pathlib
whl, dest = sys.argv[1], pathlib.Path(sys.argv[2])
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.startswith("onnxruntime/capi/libonnxruntime.so")]
    if not names:
        sys.exit(f"{whl}: no onnxruntime/capi/libonnxruntime.so* inside")
    for n in names:
        (dest / pathlib.Path(n).name).write_bytes(z.read(n))
EOF
  ort_lib="$(find "${ort_dir}" -maxdepth 1 -name 'libonnxruntime.so.*' -type f | head -n 1)"
  [ -n "${ort_lib}" ] || die "no libonnxruntime.so.* extracted into ${ort_dir}"
fi
log "aarch64 ONNX Runtime ${ort_version}: ${ort_lib}"

cat > "${cache}/env.sh" <<EOF
# written by scripts/arm-setup.sh
export SCALES_EDGE_QEMU="${qemu}"
export SCALES_EDGE_AARCH64_SYSROOT="${sysroot}"
export SCALES_EDGE_AARCH64_COMPAT="${compat}"
export SCALES_EDGE_ORT_AARCH64_LIB="${ort_lib}"
export SCALES_EDGE_ORT_AARCH64_VERSION="${ort_version}"
EOF
echo "${cache}/env.sh"
