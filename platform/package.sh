#!/usr/bin/env bash
# Build edgespool's Debian packages with debhelper (debian/ at the top).
#
#   platform/package.sh [amd64|arm64|armhf ...] [--out DIR] [--lintian] [--jobs N]
#
# Without an architecture it builds this machine's. Each architecture is
# `dpkg-buildpackage -b -a ARCH` on a copy of the working tree in
# build/deb/ARCH/edgespool-VERSION (the copy keeps debian/'s build products
# and the ../*.deb that dpkg-buildpackage writes out of the working tree, and
# lets two architectures build side by side). Results, copied to --out
# (default build/deb/out): edgespool_VERSION_ARCH.deb,
# edgespool-dbgsym_VERSION_ARCH.deb, libedgespool-client-dev_VERSION_ARCH.deb,
# the .buildinfo and .changes. --lintian runs lintian on the .changes.
#
# Cross (arm64, armhf): `dpkg-buildpackage -aARCH -B -Pcross,nocheck` inside
# a clean Debian root made by mmdebstrap with the :ARCH Build-Depends
# (platform/package_cross.sh; cached under build/deb/roots), so this
# machine's own packages do not matter. Needs root; exit 69 when no root can
# be had (no mmdebstrap and none cached, or Debian's archive out of reach).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

ARCHES=() OUT="$ROOT/build/deb/out" LINTIAN=0 JOBS="${JOBS:-2}"
while [ $# -gt 0 ]; do
  case "$1" in
    amd64|arm64|armhf) ARCHES+=("$1") ;;
    aarch64) ARCHES+=(arm64) ;;
    --out) OUT="${2:?}"; shift ;;
    --out=*) OUT="${1#--out=}" ;;
    --lintian) LINTIAN=1 ;;
    --jobs) JOBS="${2:?}"; shift ;;
    --build-dir|--build-dir=*)
      die "--build-dir is gone: packages are built by dpkg-buildpackage from source (docs/packaging.md)" ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 64 ;;
  esac
  shift
done
for tool in dpkg-buildpackage dh dpkg-parsechangelog; do
  command -v "$tool" >/dev/null ||
    die "$tool missing (apt-get install --no-install-recommends debhelper dpkg-dev)"
done
BUILD_ARCH="$(dpkg --print-architecture)"
[ ${#ARCHES[@]} -eq 0 ] && ARCHES=("$BUILD_ARCH")
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# One version: debian/changelog's must be CMake's project() version, which
# `edgespool version` prints.
VERSION="$(dpkg-parsechangelog -S Version)"
CMAKE_VERSION="$(sed -n 's/^project(edgespool VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
[ "${VERSION%%-*}" = "$CMAKE_VERSION" ] ||
  die "debian/changelog says $VERSION, CMakeLists.txt project() says $CMAKE_VERSION"

# The tree as a developer has it (uncommitted edits included), less builds.
copy_tree() {
  local dest="$1"
  rm -rf "$dest"
  mkdir -p "$dest"
  tar -C "$ROOT" --exclude=./build --exclude=./.git --exclude=./.run \
    --exclude=./tests/bench/out -cf - . | tar -C "$dest" -xf -
}

build_arch() {
  local arch="$1" start=$SECONDS
  local top="$ROOT/build/deb/$arch"
  local src="$top/edgespool-$VERSION"
  local args=(-b -us -uc -a"$arch")
  if [ "$arch" != "$BUILD_ARCH" ]; then
    [ "$BUILD_ARCH" = amd64 ] || die "cross builds are set up from amd64, not $BUILD_ARCH"
    log "$arch: dpkg-buildpackage -a$arch in a clean root (platform/package_cross.sh)"
    copy_tree "$src"
    rm -f "$top"/*.deb "$top"/*.ddeb "$top"/*.changes "$top"/*.buildinfo
    local rc=0 lintian_arg=()
    [ "$LINTIAN" -eq 1 ] && lintian_arg=(--lintian)
    JOBS="$JOBS" "$ROOT/platform/package_cross.sh" "$arch" "$top" "${lintian_arg[@]}" || rc=$?
    [ "$rc" -eq 0 ] || exit "$rc"  # 69: no root to build in (above)
    copy_results "$arch" "$top" "$start"
    return 0
  fi
  log "$arch: dpkg-buildpackage ${args[*]} in $src"
  copy_tree "$src"
  rm -f "$top"/*.deb "$top"/*.ddeb "$top"/*.changes "$top"/*.buildinfo
  (cd "$src" && DEB_BUILD_OPTIONS="nocheck parallel=$JOBS ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage "${args[@]}") >"$top/build.log" 2>&1 ||
    { tail -60 "$top/build.log" >&2; die "$arch: dpkg-buildpackage failed (log: $top/build.log)"; }
  copy_results "$arch" "$top" "$start"
  if [ "$LINTIAN" -eq 1 ]; then
    command -v lintian >/dev/null || die "lintian missing (apt-get install lintian)"
    log "$arch: lintian"
    lintian --info --display-info --pedantic "$OUT/edgespool_${VERSION}_$arch.changes" || true
  fi
}

copy_results() {
  local arch="$1" top="$2" start="$3"
  local f n=0
  for f in "$top"/*_"$VERSION"_"$arch".deb "$top"/*_"$VERSION"_"$arch".ddeb \
           "$top"/*_"$VERSION"_"$arch".changes "$top"/*_"$VERSION"_"$arch".buildinfo; do
    [ -f "$f" ] || continue
    cp -f "$f" "$OUT/"
    n=$((n + 1))
  done
  [ -f "$OUT/edgespool_${VERSION}_$arch.deb" ] || die "$arch: no edgespool_${VERSION}_$arch.deb"
  log "$arch: $n files in $OUT in $((SECONDS - start)) s"
}

for arch in "${ARCHES[@]}"; do build_arch "$arch"; done
ls -l "$OUT"
