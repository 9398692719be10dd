#!/usr/bin/env bash
# Cross-build edgespool for an ARM gateway and run its unit tests under qemu-user.
#
#   platform/cross.sh aarch64|armhf [--mode auto|multiarch|sysroot] [--no-test|--deps-only]
#
# Steps (each is skipped when already done, so a second run only rebuilds):
#   1. build-machine tools: g++-<triple>, qemu-user, cmake, ninja, pkg-config
#   2. the target's -dev libraries, one of two ways (toolchains/debian-cross.cmake):
#      multiarch  `dpkg --add-architecture ARCH` and the :ARCH -dev packages;
#      sysroot    the same packages fetched with `apt-get download` through a
#                 private apt state (the machine's own apt setup is untouched)
#                 and unpacked with `dpkg -x` into build/ARCH/sysroot.
#      auto (default) tries multiarch and falls back to sysroot when the
#      target's package index can't be downloaded (seen here for armhf: a
#      security index of the wrong size) or its packages can't be installed
#      beside the machine's (Multi-Arch: same version skew). A foreign
#      architecture this script added is removed again on that path, since it
#      would make every later `apt-get update` on the machine fail.
#   3. configure with the preset (build/ARCH), build everything (-j2)
#   4. ctest -L unit: each test binary runs under qemu-<arch> (no binfmt_misc
#      needed: CMAKE_CROSSCOMPILING_EMULATOR names it)
#   5. print the stripped agent's size and what it links
#
# Long (minutes): not part of the default CI. Environment: JOBS (default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'cross.sh: %s\n' "$*" >&2; exit 1; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_get() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

ARCH="" MODE=auto RUN_TESTS=1 DEPS_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    aarch64|arm64) ARCH=aarch64 ;;
    armhf|arm) ARCH=armhf ;;
    --mode) MODE="${2:?--mode needs a value}"; shift ;;
    --mode=*) MODE="${1#--mode=}" ;;
    --no-test) RUN_TESTS=0 ;;
    --deps-only) DEPS_ONLY=1 ;;  # steps 1-2 (platform/package.sh uses this)
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 64 ;;
  esac
  shift
done
[ -n "$ARCH" ] || { usage >&2; exit 64; }
case "$MODE" in auto|multiarch|sysroot) ;; *) die "unknown mode $MODE" ;; esac

case "$ARCH" in
  aarch64) TRIPLE=aarch64-linux-gnu DEBARCH=arm64 QEMU=qemu-aarch64 ;;
  armhf) TRIPLE=arm-linux-gnueabihf DEBARCH=armhf QEMU=qemu-arm ;;
esac
PRESET="$ARCH"
BUILD="$ROOT/build/$PRESET"
SYSROOT="$BUILD/sysroot"
JOBS="${JOBS:-2}"
# The target's libraries: DESIGN.md's dependency list, plus GoogleTest.
DEV_PACKAGES=(libuv1-dev libsqlite3-dev libzstd-dev libmbedtls-dev libcjson-dev
  libtomlplusplus-dev libwebsockets-dev libgtest-dev libgmock-dev)
HOST_PACKAGES=("g++-$TRIPLE" qemu-user cmake ninja-build pkg-config file)
START=$SECONDS
# Unit tests that can't run on an emulated target: journal_fiu_test re-runs
# itself under the host's fiu-run, which LD_PRELOADs the host's libfiu and
# execs the (target) binary directly.
CROSS_EXCLUDE='^unit/store/journal_fiu_test$'
# Single test cases left out under qemu-arm: Debian's armhf libmbedtls is
# built without _FILE_OFFSET_BITS=64, so its CA-directory scan (readdir) gets
# EOVERFLOW from qemu on a 64-bit host (a real ARM kernel hands a 32-bit
# process 32-bit cookies). A negative GTEST_FILTER reaches every binary.
GTEST_EXCLUDE=""
[ "$ARCH" = armhf ] && GTEST_EXCLUDE="-TlsConfigTest.FileErrorsNameTheFile"

phase_time() { log "$1 done in $((SECONDS - $2)) s"; }

install_host_tools() {
  local missing=()
  for p in "${HOST_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing build-machine tools: ${missing[*]}"
  apt_get update -qq || log "apt-get update reported errors (continuing: the tools may still install)"
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

multiarch_ready() {
  for p in "${DEV_PACKAGES[@]}" libstdc++6; do installed "$p:$DEBARCH" || return 1; done
}

# Returns non-zero (leaving the machine's apt setup as it found it) when the
# target's packages can't be had through multiarch.
setup_multiarch() {
  multiarch_ready && return 0
  local added=0
  if ! dpkg --print-foreign-architectures | grep -qx "$DEBARCH"; then
    log "dpkg --add-architecture $DEBARCH"
    as_root dpkg --add-architecture "$DEBARCH"
    added=1
  fi
  local out
  out="$(mktemp)"
  if ! apt_get update >"$out" 2>&1; then
    grep -E '^(E|Err):' "$out" | head -5 >&2 || true
    log "apt-get update failed with $DEBARCH enabled"
    rm -f "$out"
    undo_architecture "$added"
    return 1
  fi
  rm -f "$out"
  log "installing ${DEV_PACKAGES[*]} for $DEBARCH (multiarch)"
  # libstdc++6 too: under qemu the tests use the target's own loader, libc
  # and libstdc++ from /lib/TRIPLE (see toolchains/debian-cross.cmake).
  if ! apt_get install -y -qq --no-install-recommends "${DEV_PACKAGES[@]/%/:$DEBARCH}" \
      "libstdc++6:$DEBARCH" >/dev/null; then
    log "the :$DEBARCH packages do not install beside this machine's"
    undo_architecture "$added"
    return 1
  fi
}

undo_architecture() {
  [ "$1" -eq 1 ] || return 0
  if dpkg -l | awk '{print $2}' | grep -q ":$DEBARCH\$"; then
    log "leaving architecture $DEBARCH: packages of it are installed"
    return 0
  fi
  log "dpkg --remove-architecture $DEBARCH (restoring the machine's apt setup)"
  as_root dpkg --remove-architecture "$DEBARCH"
  apt_get update -qq >/dev/null 2>&1 || true
}

# Bump the version when the way the sysroot is made changes.
SYSROOT_STAMP="v2 ${DEV_PACKAGES[*]}"
sysroot_ready() {
  [ "$(cat "$SYSROOT/.edgespool-sysroot" 2>/dev/null)" = "$SYSROOT_STAMP" ]
}

# A library sysroot from the target's packages, without touching the machine's
# dpkg database or apt lists: apt runs with its own state and cache dirs, and
# the machine's sources and keys.
setup_sysroot() {
  if sysroot_ready; then
    log "sysroot $SYSROOT is up to date"
    return 0
  fi
  local apt_dir="$BUILD/apt"
  mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/debs"
  : >"$apt_dir/status"
  local opts=(-o "APT::Architecture=$DEBARCH" -o "APT::Architectures=$DEBARCH"
    -o "Dir::State=$apt_dir/state" -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache" -o "Debug::NoLocking=1")
  log "downloading the $DEBARCH package index (private apt state in $apt_dir)"
  # An index that fails (e.g. one suite's) is reported and skipped: the
  # others are enough when they hold every package we need.
  apt-get "${opts[@]}" update -qq 2>&1 | grep -E '^(E|W|Err):' >&2 || true
  # The dependency closure, less what the cross compiler brings itself
  # (/usr/TRIPLE: libc, its headers, libstdc++): a second libc.so or stdlib.h
  # in the library path would shadow the compiler's own and not match its ld.so.
  closure() {
    apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests \
        --no-conflicts --no-breaks --no-replaces --no-enhances "$@" |
      grep -E '^[a-z0-9]' | sort -u
  }
  local pkgs toolchain_pkgs
  toolchain_pkgs="$(closure libc6-dev libstdc++6 libgcc-s1)" ||
    die "apt-cache found no $DEBARCH index"
  pkgs="$(closure "${DEV_PACKAGES[@]}" | grep -vxF -f <(echo "$toolchain_pkgs"))" ||
    die "apt-cache could not resolve ${DEV_PACKAGES[*]} for $DEBARCH"
  for p in "${DEV_PACKAGES[@]}"; do
    grep -qx "$p" <<<"$pkgs" || die "$p not found in the $DEBARCH package index"
  done
  log "downloading $(wc -w <<<"$pkgs") packages: $(tr '\n' ' ' <<<"$pkgs")"
  rm -f "$apt_dir/debs"/*.deb
  # shellcheck disable=SC2086  # one word a package
  (cd "$apt_dir/debs" && apt-get "${opts[@]}" download -qq $pkgs 2>&1 |
    grep -v 'unsandboxed as root' >&2 || true)
  [ "$(ls "$apt_dir/debs"/*.deb 2>/dev/null | wc -l)" -eq "$(wc -w <<<"$pkgs")" ] ||
    die "apt-get download fetched $(ls "$apt_dir/debs" | wc -l) of $(wc -w <<<"$pkgs") packages"
  rm -rf "$SYSROOT"
  mkdir -p "$SYSROOT"
  for deb in "$apt_dir/debs"/*.deb; do dpkg -x "$deb" "$SYSROOT"; done
  echo "$SYSROOT_STAMP" >"$SYSROOT/.edgespool-sysroot"
  log "sysroot ready: $SYSROOT ($(du -sh "$SYSROOT" | cut -f1))"
}

t=$SECONDS
install_host_tools
case "$MODE" in
  multiarch) setup_multiarch || die "multiarch setup failed (try --mode sysroot)" ;;
  sysroot) setup_sysroot ;;
  auto)
    # A sysroot made by an earlier run means multiarch already failed here.
    if ! sysroot_ready && setup_multiarch; then MODE=multiarch; else
      log "falling back to a library sysroot for $DEBARCH"
      MODE=sysroot
      setup_sysroot
    fi ;;
esac
phase_time "dependencies ($MODE)" "$t"
[ "$DEPS_ONLY" -eq 1 ] && exit 0

t=$SECONDS
sysroot_arg=""
[ "$MODE" = sysroot ] && sysroot_arg="$SYSROOT"
mkdir -p "$BUILD"
log "configure: preset $PRESET ($MODE) in $BUILD"
cmake --preset "$PRESET" -DEDGESPOOL_SYSROOT="$sysroot_arg" >"$BUILD/configure.log" 2>&1 ||
  { cat "$BUILD/configure.log" >&2; die "configure failed"; }
log "build: cmake --build $BUILD -j$JOBS"
cmake --build "$BUILD" -j "$JOBS"
phase_time "build" "$t"

if [ "$RUN_TESTS" -eq 1 ]; then
  t=$SECONDS
  log "unit tests under $QEMU: ctest -L unit -E '$CROSS_EXCLUDE'${GTEST_EXCLUDE:+ (GTEST_FILTER=$GTEST_EXCLUDE)}"
  GTEST_FILTER="${GTEST_EXCLUDE:-*}" \
    ctest --test-dir "$BUILD" -L unit -E "$CROSS_EXCLUDE" --output-on-failure -j "$JOBS"
  phase_time "unit tests" "$t"
fi

bin="$BUILD/agent/edgespool"
stripped="$BUILD/edgespool.stripped"
"$TRIPLE-strip" -o "$stripped" "$bin"
size=$(stat -c %s "$stripped")
limit=$((3 * 1024 * 1024 / 2))
log "edgespool for $ARCH: $(file -b "$stripped" | cut -d, -f1-2)"
printf 'stripped size: %d bytes (%s KiB); goal <= %d bytes (1.5 MiB): %s\n' \
  "$size" "$((size / 1024))" "$limit" "$([ "$size" -le "$limit" ] && echo met || echo OVER)"
printf 'links: %s\n' "$("$TRIPLE-readelf" -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
log "cross build for $ARCH finished in $((SECONDS - START)) s"
