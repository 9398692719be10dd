#!/usr/bin/env bash
# edgespool vs the mosquitto bridge, side by side (issue 9; docs/benchmarks.md).
#
#   platform/bench.sh [--quick] [harness options...]
#
# Builds the agent and tests/bench/bridge_compare_bench in build/bench
# (RelWithDebInfo), runs every scenario through edgespool (message and batch
# mode) and through an edge mosquitto bridged to a central one, prints the
# table and writes it to tests/bench/RESULTS.md (--quick: build/bench/
# RESULTS-quick.md, so CI never dirties the tree). Exit status non-zero when
# edgespool lost or invented a single acknowledged message in any scenario.
# Speed figures are printed, not asserted.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${EDGESPOOL_BENCH_BUILD:-$ROOT/build/bench}"
quick=0
for a in "$@"; do [ "$a" = "--quick" ] && quick=1; done

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

for tool in mosquitto mosquitto_pub pkg-config cmake ninja; do
  command -v "$tool" >/dev/null || { echo "bench: $tool missing (platform/dev.sh deps)" >&2; exit 69; }
done

log "build: $BUILD"
cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target edgespool bridge_compare_bench

out="$ROOT/tests/bench/RESULTS.md"
[ "$quick" -eq 1 ] && out="$BUILD/RESULTS-quick.md"
log "bench$([ "$quick" -eq 1 ] && echo ' --quick'): results to $out"
EDGESPOOL_BIN="$BUILD/agent/edgespool" \
  "$BUILD/tests/bench/bridge_compare_bench" --out "$out" "$@"
