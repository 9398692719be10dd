#!/usr/bin/env bash
# dpkg-buildpackage -aarm64 and -aarmhf (platform/package.sh arm64 armhf):
# the cross toolchain and the :ARCH Build-Depends through multiarch
# (platform/cross.sh --mode multiarch), then for each architecture:
#   - edgespool, edgespool-dbgsym and libedgespool-client-dev for ARCH
#   - the agent is an ARCH ELF, PIE, BIND_NOW, with FORTIFY calls
#   - Depends name the target's libraries (libuv1, libstdc++6), not the
#     cross toolchain's (libstdc++6-ARCH-cross)
#   - man pages and completion are in (written by the binary under qemu-user)
#   - lintian: no error or warning
# Slow (cold: 10-20 minutes on 2 cores, apt included). Needs root and the
# network to Debian's archive. Exit 77 = skipped, also when the :ARCH
# Build-Depends cannot be installed beside the machine's own (package.sh
# exits 69: libwebsockets-dev on Debian 12, see docs/packaging.md).
#
# Environment: EDGESPOOL_SOURCE_DIR; EDGESPOOL_CROSS_ARCHES (default
# "arm64 armhf").
set -euo pipefail

SRC="${EDGESPOOL_SOURCE_DIR:?}"
ARCHES="${EDGESPOOL_CROSS_ARCHES:-arm64 armhf}"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (apt-get, dpkg --add-architecture)"
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || skip "debhelper missing"
[ "$(dpkg --print-architecture)" = amd64 ] || skip "cross builds are set up from amd64"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS
VERSION="$(cd "$SRC" && dpkg-parsechangelog -S Version)"

for arch in $ARCHES; do
  case "$arch" in
    arm64) machine=AArch64 ;;
    armhf) machine=ARM ;;
    *) fail "unknown architecture $arch" ;;
  esac
  t=$SECONDS
  rc=0
  bash "$SRC/platform/package.sh" "$arch" --out "$WORK/debs" >"$WORK/$arch.log" 2>&1 || rc=$?
  if [ "$rc" -eq 69 ]; then
    tail -5 "$WORK/$arch.log"
    skip "$arch: the :$arch Build-Depends do not install beside this machine's (see above)"
  fi
  [ "$rc" -eq 0 ] || { tail -40 "$WORK/$arch.log"; fail "platform/package.sh $arch"; }
  deb="$WORK/debs/edgespool_${VERSION}_$arch.deb"
  for f in "$deb" "$WORK/debs/edgespool-dbgsym_${VERSION}_$arch.deb" \
           "$WORK/debs/libedgespool-client-dev_${VERSION}_$arch.deb"; do
    [ -f "$f" ] || fail "$arch: $(basename "$f") not built"
    [ "$(dpkg-deb -f "$f" Architecture)" = "$arch" ] || fail "$(basename "$f"): Architecture"
  done
  x="$WORK/x-$arch"
  dpkg-deb -x "$deb" "$x"
  readelf -hdW --dyn-syms "$x/usr/bin/edgespool" >"$WORK/readelf-$arch.txt"
  grep -q "Machine:.*$machine" "$WORK/readelf-$arch.txt" || fail "$arch: the agent is not an $machine binary"
  grep -q 'FLAGS_1.*PIE' "$WORK/readelf-$arch.txt" || fail "$arch: not PIE"
  grep -qE 'BIND_NOW|FLAGS_1.*NOW' "$WORK/readelf-$arch.txt" || fail "$arch: not -z now"
  grep -qE 'UND __[a-z_]+_chk' "$WORK/readelf-$arch.txt" || fail "$arch: no FORTIFY calls"
  depends="$(dpkg-deb -f "$deb" Depends)"
  grep -q 'libuv1 ' <<<"$depends" || fail "$arch: Depends lacks libuv1: $depends"
  grep -q 'libstdc++6 ' <<<"$depends" || fail "$arch: Depends lacks libstdc++6: $depends"
  grep -q 'cross' <<<"$depends" && fail "$arch: Depends names the cross toolchain: $depends"
  for m in usr/share/man/man8/edgespool.8.gz usr/share/man/man5/edgespool.toml.5.gz \
           usr/share/bash-completion/completions/edgespool; do
    [ -f "$x/$m" ] || fail "$arch: /$m missing"
  done
  if command -v lintian >/dev/null; then
    lintian "$WORK/debs/edgespool_${VERSION}_$arch.changes" 2>/dev/null |
      grep -E '^[EW]: ' >"$WORK/lintian-$arch.txt" || true
    [ ! -s "$WORK/lintian-$arch.txt" ] || { cat "$WORK/lintian-$arch.txt"; fail "$arch: lintian"; }
  fi
  echo "$arch: $(stat -c %s "$deb") B in $((SECONDS - t)) s; Depends: $depends"
done
echo "PASS in $((SECONDS - START)) s"
