# Sourced by scripts that fetch packages of other Debian releases (scripts/arm-setup.sh,
# scripts/build-wheels.sh): a private apt configuration (own sources list, lists, cache and an
# empty dpkg status; the archive URI is the one this system's apt sources use, or DEBIAN_MIRROR),
# so the system's apt setup and package state are neither read for sources nor modified.
# The sourcing script defines log(); `work` (the private folder) is removed on exit.
# shellcheck shell=bash

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
  work="$(mktemp -d "${TMPDIR:-/tmp}/scales-edge-apt.XXXXXX")"
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

# fetch_sysroot SUITE ARCH DEST: the ARCH (amd64, arm64) glibc and default libstdc++ (headers and
# libraries), and the static PNG/JPEG/zlib codecs the native runner links, of Debian SUITE unpacked
# into DEST, a root to build against (cmake/debian-sysroot.cmake)
# and to run in (its ld.so, or qemu -L). DEST/.packages lists the .debs once it is complete.
fetch_sysroot() {
  local suite="$1" arch="$2" dest="$3" gccver pkgs deb l t triple
  case "${arch}" in
    amd64) triple=x86_64-linux-gnu ;;
    arm64) triple=aarch64-linux-gnu ;;
    *) log "fetch_sysroot: unknown architecture ${arch}"; return 1 ;;
  esac
  private_apt "${suite}" "${arch}" || return 1
  # The suite's default libstdc++: "Source: gcc-10 (...)" -> 10.
  gccver="$(apt-cache "${apt_opts[@]}" show libstdc++6 2>/dev/null | sed -n 's/^Source: gcc-\([0-9][0-9]*\).*/\1/p' | head -n 1)"
  [ -n "${gccver}" ] || { log "cannot tell the GCC version of libstdc++6 in ${suite}"; return 1; }
  pkgs=(libc6 libc6-dev linux-libc-dev libgcc-s1 "libgcc-${gccver}-dev" libstdc++6 "libstdc++-${gccver}-dev"
        libpng-dev libjpeg62-turbo-dev zlib1g-dev)
  log "downloading the ${suite} ${arch} sysroot: ${pkgs[*]}"
  private_download "${pkgs[@]}" || return 1
  rm -rf "${dest}.tmp" && mkdir -p "${dest}.tmp"
  for deb in "${work}"/download/*.deb; do dpkg -x "${deb}" "${dest}.tmp"; done
  # Absolute symlinks (libm.so -> /lib/<triple>/libm.so.6, ...) must point inside the root.
  find "${dest}.tmp" -type l -lname '/*' | while read -r l; do
    t="$(readlink "$l")"
    ln -sfr "${dest}.tmp${t}" "$l"
  done
  [ -f "${dest}.tmp/usr/lib/${triple}/libc.so" ] && [ -d "${dest}.tmp/usr/include/c++/${gccver}" ] &&
    [ -f "${dest}.tmp/usr/lib/${triple}/libpng16.a" ] ||
    { log "the ${suite} packages did not give a usable root"; return 1; }
  (cd "${work}/download" && ls -1 ./*.deb) > "${dest}.tmp/.packages"
  rm -rf "${dest}" && mv "${dest}.tmp" "${dest}"
}

# sysroot_complete DEST ARCH-TRIPLE: a root fetch_sysroot finished, with the runner's codecs (a root
# made before they were part of it is made again).
sysroot_complete() {
  [ -f "$1/.packages" ] && [ -f "$1/usr/lib/$2/libpng16.a" ]
}
