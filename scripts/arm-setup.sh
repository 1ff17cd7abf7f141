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
system_mirror() {  # the Debian archive URI of this system's own apt sources (deb822 or one-line)
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
         /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; break } }' "$f"
  done | grep -E '/debian/?$' | head -n 1
}
work=""
cleanup() { [ -z "${work}" ] || rm -rf "${work}"; }
trap cleanup EXIT
# private_apt SUITE ARCH: sets up ${work} with a private apt configuration (apt_opts) for
# "deb [arch=ARCH] <mirror> SUITE main" and updates its package list.
private_apt() {
  local suite="$1" arch="$2" mirror
  command -v apt-get >/dev/null 2>&1 || { log "apt-get not found"; return 1; }
  command -v dpkg >/dev/null 2>&1 || { log "dpkg not found"; return 1; }
  mirror="${DEBIAN_MIRROR:-$(system_mirror || true)}"
  [ -n "${mirror}" ] || { log "no Debian archive in /etc/apt/sources*; set DEBIAN_MIRROR"; return 1; }
  cleanup
  work="$(mktemp -d "${TMPDIR:-/tmp}/scales-edge-arm.XXXXXX")"
  mkdir -p "${work}/lists/partial" "${work}/cache/archives/partial" "${work}/sourceparts" "${work}/download"
  : > "${work}/status"
  echo "deb [arch=${arch}] ${mirror} ${suite} main" > "${work}/sources.list"
  apt_opts=(
    -o "Dir::Etc::sourcelist=${work}/sources.list"
    -o "Dir::Etc::sourceparts=${work}/sourceparts"
    -o "Dir::State::Lists=${work}/lists"
    -o "Dir::Cache=${work}/cache"
    -o "Dir::State::status=${work}/status"
    -o "Debug::NoLocking=1"
    -o "APT::Get::List-Cleanup=0"
    -o "APT::Architecture=${arch}"
    -o "APT::Architectures::=${arch}"
  )
  # The private directories are ours: no download sandbox user (as root apt would switch to _apt).
  apt_opts+=(-o "APT::Sandbox::User=$(id -un)")
  log "updating a private package list for ${suite} (${arch}) from ${mirror}"
  apt-get "${apt_opts[@]}" -q update >"${work}/update.log" 2>&1 ||
    { cat "${work}/update.log" >&2; log "apt-get update of the private '${suite}' list failed (no access to ${mirror}, or missing archive keys: apt-get install debian-archive-keyring)"; return 1; }
}
private_download() {  # packages... -> .debs in ${work}/download
  (cd "${work}/download" && apt-get "${apt_opts[@]}" -q download "$@") >"${work}/download.log" 2>&1 ||
    { cat "${work}/download.log" >&2; log "could not download $*"; return 1; }
}

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
fetch_sysroot() {  # -> ${cache}/sysroot-${sysroot_suite}
  local dest="${cache}/sysroot-${sysroot_suite}" gccver pkgs deb l t
  private_apt "${sysroot_suite}" arm64 || return 1
  # The suite's default libstdc++: "Source: gcc-10 (...)" -> 10.
  gccver="$(apt-cache "${apt_opts[@]}" show libstdc++6 2>/dev/null | sed -n 's/^Source: gcc-\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  [ -n "${gccver}" ] || { log "cannot tell the GCC version of libstdc++6 in ${sysroot_suite}"; return 1; }
  pkgs=(libc6 libc6-dev linux-libc-dev libgcc-s1 "libgcc-${gccver}-dev" libstdc++6 "libstdc++-${gccver}-dev"
        libpng-dev libjpeg62-turbo-dev zlib1g-dev)
  log "downloading the ${sysroot_suite} arm64 sysroot: ${pkgs[*]}"
  private_download "${pkgs[@]}" || return 1
  rm -rf "${dest}.tmp" && mkdir -p "${dest}.tmp"
  for deb in "${work}"/download/*.deb; do dpkg -x "${deb}" "${dest}.tmp"; done
  # Absolute symlinks (libm.so -> /lib/aarch64-linux-gnu/libm.so.6, ...) must point inside the root.
  find "${dest}.tmp" -type l -lname '/*' | while read -r l; do
    t="$(readlink "$l")"
    ln -sfr "${dest}.tmp${t}" "$l"
  done
  [ -f "${dest}.tmp/usr/lib/aarch64-linux-gnu/libc.so" ] && [ -d "${dest}.tmp/usr/include/c++/${gccver}" ] &&
    [ -f "${dest}.tmp/usr/lib/aarch64-linux-gnu/libpng16.a" ] ||
    { log "the ${sysroot_suite} packages did not give a usable root"; return 1; }
  (cd "${work}/download" && ls -1 ./*.deb) > "${dest}.tmp/.packages"
  rm -rf "${dest}" && mv "${dest}.tmp" "${dest}"
}
if [ "${sysroot_suite}" != none ]; then
  dest="${cache}/sysroot-${sysroot_suite}"
  # (a root made before the runner's codecs were part of it is made again)
  if { [ -f "${dest}/.packages" ] && [ -f "${dest}/usr/lib/aarch64-linux-gnu/libpng16.a" ]; } || fetch_sysroot; then
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
