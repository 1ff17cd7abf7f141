#!/usr/bin/env bash
# Fetch the ONNX Runtime C/C++ API headers needed to build the scales_edge custom-op library (ops/).
#
# The headers come from Debian 13 (trixie)'s `libonnxruntime-dev` package. The package is downloaded
# with a private apt configuration (its own sources list, lists, cache and an empty dpkg status), so
# the system's apt configuration and package state are neither read for sources nor modified.
# Only the headers are kept, in third_party/ort-headers/include (gitignored). The library does not
# link libonnxruntime: it is loaded into whichever ONNX Runtime registers it.
#
# Usage:   bash scripts/fetch-ort-headers.sh [--force]
# Prints:  the include directory (last line of stdout), to pass as ONNXRUNTIME_INCLUDE_DIR if wanted.
# Env:     ORT_HEADERS_SUITE   Debian suite to take the package from (default: trixie)
#          ORT_HEADERS_MIRROR  Debian archive URI (default: the one this system's apt sources use)
set -euo pipefail

die() { echo "fetch-ort-headers: error: $*" >&2; exit 1; }
log() { echo "fetch-ort-headers: $*" >&2; }

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="${repo_root}/third_party/ort-headers/include"
suite="${ORT_HEADERS_SUITE:-trixie}"
# The archive URI this system's own apt configuration uses for Debian (deb822 or one-line format).
system_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }
         /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i !~ /^\[/) { print $i; break } }' "$f"
  done | grep -E '/debian/?$' | head -n 1
}
mirror="${ORT_HEADERS_MIRROR:-$(system_mirror || true)}"
force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (only --force is accepted)" ;;
  esac
done

required=(onnxruntime_cxx_api.h onnxruntime_c_api.h onnxruntime_cxx_inline.h onnxruntime_float16.h)
have_all() {
  local f
  for f in "${required[@]}"; do [[ -f "${dest}/$f" ]] || return 1; done
}

if [[ $force -eq 0 ]] && have_all; then
  log "headers already present in ${dest} (use --force to fetch again)"
  echo "${dest}"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script needs a Debian/Ubuntu system. Otherwise set ONNXRUNTIME_INCLUDE_DIR to a directory holding onnxruntime_cxx_api.h."
command -v dpkg >/dev/null 2>&1 || die "dpkg not found (needed to unpack the .deb)"
[ -n "${mirror}" ] || die "no Debian archive found in /etc/apt/sources*; set ORT_HEADERS_MIRROR to a Debian archive URI"

work="$(mktemp -d "${TMPDIR:-/tmp}/scales-edge-ort-headers.XXXXXX")"
trap 'rm -rf "${work}"' EXIT
mkdir -p "${work}/lists/partial" "${work}/cache/archives/partial" "${work}/sourceparts" "${work}/download"
: > "${work}/status"
echo "deb ${mirror} ${suite} main" > "${work}/sources.list"

apt_opts=(
  -o "Dir::Etc::sourcelist=${work}/sources.list"
  -o "Dir::Etc::sourceparts=${work}/sourceparts"
  -o "Dir::State::Lists=${work}/lists"
  -o "Dir::Cache=${work}/cache"
  -o "Dir::State::status=${work}/status"
  -o "Debug::NoLocking=1"
  -o "APT::Get::List-Cleanup=0"
)
# Unprivileged users: apt drops to the _apt user for downloads only when run as root; the private
# directories are ours, so tell apt not to try when not root.
if [[ "$(id -u)" -ne 0 ]]; then
  apt_opts+=(-o "APT::Sandbox::User=$(id -un)")
fi

log "updating a private package list for '${suite}' from ${mirror}"
if ! apt-get "${apt_opts[@]}" -q update >"${work}/update.log" 2>&1; then
  cat "${work}/update.log" >&2
  die "apt-get update of the private '${suite}' list failed: no network access to ${mirror}, or (NO_PUBKEY above) this system's keyring lacks the Debian archive keys (apt-get install debian-archive-keyring)"
fi

log "downloading libonnxruntime-dev"
if ! (cd "${work}/download" && apt-get "${apt_opts[@]}" -q download libonnxruntime-dev) >"${work}/download.log" 2>&1; then
  cat "${work}/download.log" >&2
  die "could not download libonnxruntime-dev from '${suite}'"
fi

deb="$(find "${work}/download" -maxdepth 1 -name 'libonnxruntime-dev_*.deb' | head -n 1)"
[[ -n "${deb}" ]] || die "apt-get download did not produce a libonnxruntime-dev .deb"
version="$(dpkg-deb -f "${deb}" Version)"
log "unpacking $(basename "${deb}") (version ${version})"
dpkg -x "${deb}" "${work}/root"

src="${work}/root/usr/include/onnxruntime"
[[ -f "${src}/onnxruntime_cxx_api.h" ]] || die "the package has no usr/include/onnxruntime/onnxruntime_cxx_api.h; its layout changed (files: $(cd "${work}/root" && find . -name '*.h' | head -n 5 | tr '\n' ' '))"

rm -rf "${dest}"
mkdir -p "${dest}"
cp -a "${src}/." "${dest}/"
echo "${version}" > "${dest}/../DEBIAN_PACKAGE_VERSION"
have_all || die "copied headers into ${dest} but some of ${required[*]} are missing"

api_version="$(sed -n 's/^#define ORT_API_VERSION \([0-9][0-9]*\).*/\1/p' "${dest}/onnxruntime_c_api.h" | head -n 1)"
log "installed headers of libonnxruntime-dev ${version} (ORT_API_VERSION ${api_version:-unknown}):"
(cd "${dest}" && ls -1 | sed 's/^/  /' >&2)
echo "${dest}"
