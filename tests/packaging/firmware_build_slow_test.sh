#!/usr/bin/env bash
# A firmware build as Yocto's cmake.bbclass or Buildroot's cmake-package does
# it: a fresh tree configured with only the firmware options (no tests, no
# benchmarks, MinSizeRel, prefix /usr), without network where the machine
# lets us take it away (unshare -n), built, then installed with DESTDIR and
# checked by install_staging_test.sh (files, headers, .pc, a linked producer).
# Slow: a full build (minutes on 2 cores).
set -euo pipefail

SRC="${EDGESPOOL_SOURCE_DIR:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
BUILD="$WORK/build"
start=$SECONDS

offline=()
if unshare -n true 2>/dev/null; then
  offline=(unshare -n)
  echo "configure and build run without network (unshare -n)"
else
  echo "NOTE: unshare -n not permitted here; configure runs with the network present"
fi

"${offline[@]}" cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=MinSizeRel \
  -DEDGESPOOL_BUILD_TESTS=OFF -DEDGESPOOL_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr \
  >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; fail "configure"; }
grep -q 'GTest' "$WORK/configure.log" && fail "the firmware configure looked for GoogleTest"
"${offline[@]}" cmake --build "$BUILD" -j "${JOBS:-2}" >"$WORK/build.log" 2>&1 ||
  { tail -50 "$WORK/build.log"; fail "build"; }
echo "firmware build: $(grep -c '^\[' "$WORK/build.log") build steps in $((SECONDS - start)) s"
[ ! -d "$BUILD/tests" ] || fail "tests were configured in a firmware build"
size=$(stat -c %s "$BUILD/agent/edgespool")
strip -o "$WORK/edgespool.stripped" "$BUILD/agent/edgespool"
echo "agent: $size bytes, $(stat -c %s "$WORK/edgespool.stripped") stripped (MinSizeRel, $(uname -m))"

EDGESPOOL_BUILD_DIR="$BUILD" bash "$(dirname "$0")/install_staging_test.sh"
