#!/usr/bin/env bash
# dpkg-buildpackage -aARCH inside a clean Debian root (platform/package.sh
# runs this for every architecture but the machine's own).
#
#   platform/package_cross.sh arm64|armhf TOPDIR [--lintian] [--root-only]
#
# TOPDIR holds the source tree as edgespool-VERSION/ (package.sh copies it
# there); the .debs, .changes and build.log land in TOPDIR, as they would
# next to a native build.
#
# Why a root of its own: a cross build needs the Build-Depends for the target
# (`libwebsockets-dev:arm64`, ...) in the dpkg database, and some of them do
# not install beside the machine's own -dev packages (libwebsockets-dev
# 4.1.6-3 ships an architecture-specific /usr/include/lws_config.h under
# Multi-Arch: same). So, as sbuild does:
#   root   mmdebstrap SUITE --variant=buildd --architectures=BUILD,ARCH, plus
#          crossbuild-essential-ARCH, ccache and lintian, then
#          `apt-get build-dep -a ARCH -P cross,nocheck` on debian/control: the
#          Build-Depends must resolve for a cross build as written (the
#          libraries as :ARCH, the tools Multi-Arch: foreign as the machine's,
#          pkg-config as :ARCH for TRIPLE-pkg-config, qemu-user <cross> for the
#          man pages). Cached in build/deb/roots/cross-SUITE-ARCH-KEY, KEY
#          from debian/control and this recipe; made once (~3-5 min).
#   build  in a mount namespace of this script's own: the cached root under
#          an overlay (every build starts from the clean root), TOPDIR bound
#          at /build, a ccache directory per architecture bound at /ccache
#          (the sources sit at the same path every time, so a rebuild hits),
#          then `nice dpkg-buildpackage -aARCH -B -us -uc -Pcross,nocheck`
#          with DEB_BUILD_OPTIONS="nocheck parallel=JOBS" in the chroot.
#   lintian  with --lintian: `lintian --pedantic` on the .changes, in the root
#
# Needs root (mmdebstrap --mode=root, chroot, mounts) and Debian's archive for
# the first root. Exit 69 when neither a cached root nor mmdebstrap is there,
# or the archive cannot be reached. Environment: JOBS (default 2),
# EDGESPOOL_CROSS_ROOT_CACHE (default build/deb/roots of the source tree),
# EDGESPOOL_CROSS_SUITE (default: this machine's codename, else bookworm).
set -euo pipefail

SRCROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'package_cross.sh: %s\n' "$*" >&2; exit 1; }
unavailable() { printf 'package_cross.sh: %s\n' "$*" >&2; exit 69; }

[ $# -ge 2 ] || { sed -n '5p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 64; }
ARCH="$1" TOP="$2" LINTIAN=0 ROOT_ONLY=0
for a in "${@:3}"; do
  case "$a" in
    --lintian) LINTIAN=1 ;;
    --root-only) ROOT_ONLY=1 ;;  # make (or check) the cached root, build nothing
    *) die "unknown option $a" ;;
  esac
done
case "$ARCH" in arm64|armhf) ;; *) die "unknown architecture $ARCH" ;; esac
[ -d "$TOP" ] || die "no directory $TOP"
TOP="$(cd "$TOP" && pwd)"
[ "$(id -u)" -eq 0 ] || unavailable "needs root (mmdebstrap, chroot, mounts)"
JOBS="${JOBS:-2}"
BUILD_ARCH="$(dpkg --print-architecture)"
SUITE="${EDGESPOOL_CROSS_SUITE:-$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")}"
CACHE="${EDGESPOOL_CROSS_ROOT_CACHE:-$SRCROOT/build/deb/roots}"

# Everything below in a mount namespace of its own: the overlay and the bind
# mounts vanish with it, whatever happens.
if [ -z "${EDGESPOOL_CROSS_NS:-}" ]; then
  exec env EDGESPOOL_CROSS_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi

SRC="$(find "$TOP" -mindepth 1 -maxdepth 1 -type d -name 'edgespool-*' | head -1)"
[ -n "$SRC" ] && [ -f "$SRC/debian/control" ] || die "no edgespool-VERSION/debian/control in $TOP"

# --- the root ---------------------------------------------------------------
# Bump RECIPE when the way the root is made changes; debian/control's source
# paragraph (Build-Depends) is in the key, so a changed Build-Depends makes a
# new root and a changed binary package does not.
RECIPE="v1 buildd crossbuild-essential-$ARCH ccache lintian build-dep(cross,nocheck)"
key="$(cat <(printf '%s\n' "$RECIPE" "$SUITE" "$BUILD_ARCH" "$ARCH") <(sed '/^$/q' "$SRC/debian/control") |
  md5sum | cut -c1-12)"
BASE="$CACHE/cross-$SUITE-$ARCH-$key"
WORK="$(mktemp -d)"
R="$WORK/root"
cleanup() {
  umount -R "$R" 2>/dev/null || umount -l "$R" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if [ ! -f "$BASE/.complete" ]; then
  command -v mmdebstrap >/dev/null ||
    unavailable "no cached root and no mmdebstrap (apt-get install mmdebstrap)"
  t=$SECONDS
  log "$ARCH: making the build root (mmdebstrap $SUITE, build-dep -a $ARCH; cached in $BASE)"
  mkdir -p "$CACHE"
  rm -rf "$BASE" "$BASE.tmp"
  # The build-dep runs on debian/control alone (apt reads a directory's
  # debian/control): the rest of the tree does not shape the root.
  if ! mmdebstrap --mode=root --variant=buildd --architectures="$BUILD_ARCH,$ARCH" \
      --include="crossbuild-essential-$ARCH,ccache,lintian" \
      --customize-hook='mkdir -p "$1/tmp/edgespool-src/debian"' \
      --customize-hook="copy-in $SRC/debian/control /tmp/edgespool-src/debian" \
      --customize-hook="chroot \"\$1\" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y --no-install-recommends -a $ARCH -P cross,nocheck /tmp/edgespool-src" \
      --customize-hook='rm -rf "$1/tmp/edgespool-src"' \
      "$SUITE" "$BASE.tmp" >"$WORK/mmdebstrap.log" 2>&1; then
    tail -30 "$WORK/mmdebstrap.log" >&2
    rm -rf "$BASE.tmp"
    grep -qiE 'could not resolve|failed to fetch|temporary failure|unable to connect' \
      "$WORK/mmdebstrap.log" && unavailable "Debian's archive is out of reach: no build root"
    die "$ARCH: mmdebstrap (log above)"
  fi
  touch "$BASE.tmp/.complete"
  mv "$BASE.tmp" "$BASE"
  # Older roots of this architecture (another debian/control) go.
  find "$CACHE" -maxdepth 1 -name "cross-$SUITE-$ARCH-*" ! -path "$BASE" -exec rm -rf {} +
  log "$ARCH: build root made in $((SECONDS - t)) s ($(du -sh "$BASE" | cut -f1))"
fi

[ "$ROOT_ONLY" -eq 1 ] && { log "$ARCH: build root $BASE ready"; exit 0; }

mkdir -p "$R" "$WORK/upper" "$WORK/ovl"
mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/ovl" "$R" ||
  die "overlay mount on $BASE failed"
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
mkdir -p "$R/build" "$R/ccache" "$CACHE/ccache-$ARCH"
mount --bind "$TOP" "$R/build"
mount --bind "$CACHE/ccache-$ARCH" "$R/ccache"

in_root() {
  chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    "$@"
}

# --- the build --------------------------------------------------------------
t=$SECONDS
name="$(basename "$SRC")"
log "$ARCH: dpkg-buildpackage -a$ARCH -B -Pcross,nocheck in the root (log: $TOP/build.log)"
in_root env CCACHE_DIR=/ccache ccache -z >/dev/null  # the figures below: this build's
# CMake (>= 3.17) takes the compiler launcher from the environment.
if ! in_root DEB_BUILD_OPTIONS="nocheck parallel=$JOBS" CCACHE_DIR=/ccache \
    CMAKE_C_COMPILER_LAUNCHER=ccache CMAKE_CXX_COMPILER_LAUNCHER=ccache \
    sh -c "cd /build/$name && nice -n 10 dpkg-buildpackage -a$ARCH -B -us -uc -Pcross,nocheck" \
    >"$TOP/build.log" 2>&1; then
  tail -60 "$TOP/build.log" >&2
  die "$ARCH: dpkg-buildpackage failed (log: $TOP/build.log)"
fi
log "$ARCH: built in $((SECONDS - t)) s; ccache $(in_root env CCACHE_DIR=/ccache ccache -s |
  sed -n 's/^ *Hits: *\(.*\)/hits \1/p' | head -1)"

if [ "$LINTIAN" -eq 1 ]; then
  changes="$(cd "$TOP" && ls ./*_"$ARCH".changes | head -1)"
  log "$ARCH: lintian --pedantic $changes (in the root)"
  in_root lintian --info --display-info --pedantic "/build/${changes#./}" || true
fi
