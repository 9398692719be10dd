#!/usr/bin/env bash
# dpkg-buildpackage -aarm64 and -aarmhf (platform/package.sh arm64 armhf
# --lintian): each in a clean Debian root made by mmdebstrap with the
# :ARCH Build-Depends from `apt-get build-dep -a ARCH` (platform/
# package_cross.sh; cached under build/deb/roots), then for each architecture:
#   - edgespool, edgespool-dbgsym and libedgespool-client-dev, `dpkg-deb -I`
#     Architecture: ARCH
#   - the agent: `file` says ARM aarch64 / ARM EABI5 (and readelf hard-float),
#     PIE, BIND_NOW, RELRO, FORTIFY calls, stripped, its build id in the
#     dbgsym; on armhf 64-bit file offsets (future=+lfs)
#   - Depends name the target's libraries (libuv1, libstdc++6), not the
#     cross toolchain's (libstdc++6-ARCH-cross)
#   - man pages and completion are in (written by the binary under qemu-user)
#   - the SDK's static library holds ARCH objects, in the multiarch directory
#   - lintian --pedantic (in the root): no error or warning
# Slow: cold, 3-5 min per root (apt) and 10-20 min per build on 2 shared
# cores; with the roots and ccache warm, a few minutes. Needs root and, for
# the first roots, Debian's archive. Exit 77 = skipped (package.sh exits 69:
# no root to build in).
#
# Environment: EDGESPOOL_SOURCE_DIR; EDGESPOOL_CROSS_ARCHES (default
# "arm64 armhf").
set -euo pipefail

SRC="${EDGESPOOL_SOURCE_DIR:?}"
ARCHES="${EDGESPOOL_CROSS_ARCHES:-arm64 armhf}"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (mmdebstrap, chroot, mounts)"
command -v dpkg-deb >/dev/null && command -v readelf >/dev/null && command -v file >/dev/null ||
  skip "dpkg-deb, readelf or file missing"
command -v dpkg-parsechangelog >/dev/null || skip "dpkg-dev missing"
[ "$(dpkg --print-architecture)" = amd64 ] || skip "cross builds are set up from amd64"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS
VERSION="$(cd "$SRC" && dpkg-parsechangelog -S Version)"

for arch in $ARCHES; do
  case "$arch" in
    arm64) machine=AArch64 file_says='ARM aarch64' triple=aarch64-linux-gnu ;;
    armhf) machine=ARM file_says='ARM, EABI5' triple=arm-linux-gnueabihf ;;
    *) fail "unknown architecture $arch" ;;
  esac
  t=$SECONDS
  rc=0
  JOBS="${JOBS:-2}" nice -n 10 bash "$SRC/platform/package.sh" "$arch" --lintian \
    --out "$WORK/debs" >"$WORK/$arch.log" 2>&1 || rc=$?
  if [ "$rc" -eq 69 ]; then
    tail -5 "$WORK/$arch.log"
    skip "$arch: no root to build in (see above)"
  fi
  [ "$rc" -eq 0 ] || { tail -40 "$WORK/$arch.log"; fail "platform/package.sh $arch"; }
  deb="$WORK/debs/edgespool_${VERSION}_$arch.deb"
  dbg="$WORK/debs/edgespool-dbgsym_${VERSION}_$arch.deb"
  dev="$WORK/debs/libedgespool-client-dev_${VERSION}_$arch.deb"
  for f in "$deb" "$dbg" "$dev"; do
    [ -f "$f" ] || fail "$arch: $(basename "$f") not built (built: $(ls "$WORK/debs" | tr '\n' ' '))"
    dpkg-deb -I "$f" >"$WORK/info.txt"
    grep -qx " Architecture: $arch" "$WORK/info.txt" ||
      fail "$(basename "$f"): $(grep Architecture "$WORK/info.txt")"
  done

  # The agent.
  x="$WORK/x-$arch"
  dpkg-deb -x "$deb" "$x"
  bin="$x/usr/bin/edgespool"
  what="$(file -b "$bin")"
  grep -qF "$file_says" <<<"$what" || fail "$arch: file says: $what"
  grep -q 'stripped' <<<"$what" && ! grep -q 'not stripped' <<<"$what" ||
    fail "$arch: the agent is not stripped: $what"
  readelf -hdlW --dyn-syms "$bin" >"$WORK/readelf-$arch.txt"
  grep -q "Machine:.*$machine" "$WORK/readelf-$arch.txt" || fail "$arch: not an $machine binary"
  if [ "$arch" = armhf ]; then
    grep -q 'Flags:.*hard-float ABI' "$WORK/readelf-$arch.txt" ||
      fail "armhf: not hard-float: $(grep Flags: "$WORK/readelf-$arch.txt")"
    # future=+lfs: the 64-bit file interfaces, never the 32-bit ones.
    grep -qE 'UND (fstat|lseek|open|statvfs|ftruncate)64' "$WORK/readelf-$arch.txt" ||
      fail "armhf: no 64-bit file calls (built without _FILE_OFFSET_BITS=64?)"
    grep -qE 'UND (lseek|statvfs|ftruncate)(@|$)' "$WORK/readelf-$arch.txt" &&
      fail "armhf: 32-bit off_t calls in the agent: $(grep -E 'UND (lseek|statvfs|ftruncate)(@|$)' "$WORK/readelf-$arch.txt")"
  fi
  grep -q 'FLAGS_1.*PIE' "$WORK/readelf-$arch.txt" || fail "$arch: not PIE"
  grep -qE 'BIND_NOW|FLAGS_1.*NOW' "$WORK/readelf-$arch.txt" || fail "$arch: not -z now"
  grep -q GNU_RELRO "$WORK/readelf-$arch.txt" || fail "$arch: no RELRO segment"
  grep -qE 'UND __[a-z_]+_chk' "$WORK/readelf-$arch.txt" || fail "$arch: no FORTIFY calls"
  build_id="$(readelf -n "$bin" | awk '/Build ID/ {print $3}')"
  [ -n "$build_id" ] || fail "$arch: the agent has no build id"
  dpkg-deb -c "$dbg" >"$WORK/dbgsym.txt"
  grep -q "usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug" "$WORK/dbgsym.txt" ||
    fail "$arch: edgespool-dbgsym has no debug file for build id $build_id"
  depends="$(dpkg-deb -f "$deb" Depends)"
  grep -q 'libuv1 ' <<<"$depends" || fail "$arch: Depends lacks libuv1: $depends"
  grep -q 'libstdc++6 ' <<<"$depends" || fail "$arch: Depends lacks libstdc++6: $depends"
  grep -q 'cross' <<<"$depends" && fail "$arch: Depends names the cross toolchain: $depends"
  for m in usr/share/man/man8/edgespool.8.gz usr/share/man/man5/edgespool.toml.5.gz; do
    [ -f "$x/$m" ] || fail "$arch: /$m missing"
    zcat "$x/$m" | grep -q '^\.TH' || fail "$arch: /$m is not a man page"
  done
  grep -q 'complete' "$x/usr/share/bash-completion/completions/edgespool" ||
    fail "$arch: the bash completion is missing or empty"

  # The SDK: Multi-Arch: same, so its library and .pc in the multiarch dir.
  xd="$WORK/xd-$arch"
  dpkg-deb -x "$dev" "$xd"
  lib="$xd/usr/lib/$triple/libedgespool-client.a"
  [ -f "$lib" ] || fail "$arch: no /usr/lib/$triple/libedgespool-client.a ($(cd "$xd" && find . -name '*.a'))"
  [ -f "$xd/usr/lib/$triple/pkgconfig/edgespool-client.pc" ] || fail "$arch: no edgespool-client.pc in /usr/lib/$triple"
  readelf -h "$lib" >"$WORK/lib-$arch.txt"
  grep -q "Machine:.*$machine" "$WORK/lib-$arch.txt" || fail "$arch: libedgespool-client.a is not $machine"
  grep 'Machine:' "$WORK/lib-$arch.txt" | grep -qv "$machine" &&
    fail "$arch: libedgespool-client.a holds objects of another machine"

  # lintian --pedantic, run in the root by package.sh: no error or warning.
  grep -q 'lintian --pedantic' "$WORK/$arch.log" || fail "$arch: lintian did not run"
  if grep -E '^[EW]: ' "$WORK/$arch.log" >"$WORK/lintian-$arch.txt"; then
    cat "$WORK/lintian-$arch.txt"
    fail "$arch: lintian"
  fi
  sizes="$(cd "$WORK/debs" && for f in *_"$arch".deb; do printf '%s %s B; ' "$f" "$(stat -c %s "$f")"; done)"
  echo "$arch: PASS in $((SECONDS - t)) s: $sizes"
  echo "$arch: $what"
  echo "$arch: Depends: $depends"
  grep -E '==> .*(built in|build root made)' "$WORK/$arch.log" | sed 's/\x1b\[[0-9;]*m//g' || true
done
echo "PASS in $((SECONDS - START)) s"
