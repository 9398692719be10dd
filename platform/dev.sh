#!/usr/bin/env bash
# edgespool developer entry point: dependencies, build, run, test.
#
#   platform/dev.sh deps              install every build and test dependency (Debian 12)
#   platform/dev.sh build [PRESET]    configure and build (default, debug, asan, tsan, fuzz, firmware)
#   platform/dev.sh run               local mosquitto + the agent, end to end (Ctrl-C stops both)
#   platform/dev.sh test [PRESET] [--slow]
#                                     deps + build + the test suite (ctest); --slow adds soak/fault runs
#   platform/dev.sh fuzz [SECONDS] [TARGET...]
#                                     every libFuzzer target (tests/fuzz/*_fuzz.cc) for SECONDS each
#                                     (default 600), one at a time; new inputs merged into the
#                                     in-tree corpus; a coverage table at the end (docs/fuzzing.md)
#   platform/dev.sh bench [--quick]   edgespool vs the mosquitto bridge (platform/bench.sh)
#   platform/dev.sh cross aarch64|armhf   cross build + unit tests under qemu (platform/cross.sh)
#   platform/dev.sh package [ARCH...] [--lintian]
#                                     .deb packages with dpkg-buildpackage (platform/package.sh;
#                                     default: this machine's architecture; also arm64, armhf)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Debian packages: build, test, run. Keep in sync with DESIGN.md's dependency list.
PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libuv1-dev libsqlite3-dev libzstd-dev libmbedtls-dev libcjson-dev libtomlplusplus-dev
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  mosquitto mosquitto-clients libmosquitto-dev
  openssl sqlite3 zstd iproute2 iptables fiu-utils libfiu-dev adduser
  clang-14 libclang-rt-14-dev
  groff-base  # the man page lint (tests/unit/agent/cli_help_test.cc)
  libwebsockets-dev libwebsockets-evlib-uv python3-websockets  # the WebSocket listener and its tests
  prometheus chromium python3  # promtool (alert rules), the dashboard test's browser
  # The .debs (platform/package.sh: dpkg-buildpackage) and their test
  # (tests/packaging/deb_install_test.sh: a clean root, lintian).
  debhelper dpkg-dev mmdebstrap lintian
)

# Optional: the interop tests (rabbitmq), the unit-file check
# (systemd-analyze) and the consume test's skewed clocks (faketime) use these
# when they install, and skip otherwise.
OPTIONAL_PACKAGES=(rabbitmq-server systemd faketime)

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

cmd_deps() {
  local missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "dependencies: all ${#PACKAGES[@]} packages present"
  else
    log "installing ${#missing[@]} packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
  # The mosquitto package may start a system broker; tests use their own on free ports.
  for p in "${OPTIONAL_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "$p" >/dev/null 2>&1 || log "optional package $p not installable: its tests will skip"
  done
}

cmd_build() {
  local preset="${1:-default}"
  log "configure + build: preset $preset"
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$(nproc)"
}

cmd_test() {
  local preset=default slow=0
  for a in "$@"; do
    case "$a" in
      --slow) slow=1 ;;
      -*) echo "unknown option $a" >&2; exit 64 ;;
      *) preset="$a" ;;
    esac
  done
  cmd_deps
  cmd_build "$preset"
  local select=(-LE slow)
  [ "$slow" -eq 1 ] && select=()
  log "tests: preset $preset${slow:+ (slow included: $slow)}"
  ctest --test-dir "build/$preset" --output-on-failure -j "$(nproc)" "${select[@]}"
}

# A loopback port nothing listens on (random in the ephemeral range, probed).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return 0; }
  done
  echo "no free port found" >&2; return 1
}

cmd_run() {
  cmd_deps
  log "configure + build: the agent (preset default)"
  cmake --preset default >/dev/null
  cmake --build --preset default -j "$(nproc)" --target edgespool
  local bin="$ROOT/build/default/agent/edgespool" rundir="$ROOT/.run"
  mkdir -p "$rundir"
  local port; port="$(free_port)"
  cat >"$rundir/mosquitto.conf" <<CONF
listener $port 127.0.0.1
allow_anonymous true
max_queued_messages 0
max_inflight_messages 0
CONF
  [ "$(id -u)" -eq 0 ] && echo "user root" >>"$rundir/mosquitto.conf"
  local pids=()
  # Stops in reverse order: the agent first (it settles what is in flight
  # and publishes its offline status while the broker is still up).
  cleanup() {
    trap - INT TERM EXIT
    log "stopping"
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill -TERM "${pids[i]}" 2>/dev/null || true
      wait "${pids[i]}" 2>/dev/null || true
    done
  }
  trap cleanup INT TERM EXIT

  log "central broker stand-in: mosquitto on 127.0.0.1:$port"
  # Every child in its own session: Ctrl-C reaches only this script, which
  # stops them once each, in order (a second signal makes the agent skip
  # its graceful shutdown).
  setsid mosquitto -c "$rundir/mosquitto.conf" >"$rundir/mosquitto.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done

  log "subscriber on the central broker (what arrives is printed below)"
  setsid mosquitto_sub -h 127.0.0.1 -p "$port" -t '#' -v -q 1 &
  pids+=($!)

  export EDGESPOOL_PRODUCER_SOCKET="$rundir/edgespool.sock"
  export EDGESPOOL_STORE_PATH="$rundir/journal.db"
  export EDGESPOOL_UPLINK_URL="mqtt://127.0.0.1:$port"
  export EDGESPOOL_NODE_ID="${EDGESPOOL_NODE_ID:-dev-gateway}"
  export EDGESPOOL_STATUS_INTERVAL="${EDGESPOOL_STATUS_INTERVAL:-10s}"
  log "agent: $bin run --config config.example.toml (paths under .run/)"
  setsid "$bin" run --config "$ROOT/config.example.toml" &
  pids+=($!)
  for _ in $(seq 100); do [ -S "$EDGESPOOL_PRODUCER_SOCKET" ] && break; sleep 0.1; done

  log "publishing three messages through the agent (acked once durable, then uploaded)"
  for i in 1 2 3; do
    "$bin" publish "sensors/demo/temp" "{\"seq\":$i,\"celsius\":2$i.5}" || true
  done
  sleep 1
  "$bin" status || true
  log "running; publish with: $bin publish --socket $EDGESPOOL_PRODUCER_SOCKET TOPIC MESSAGE"
  log "Ctrl-C stops the agent and the broker"
  wait "${pids[2]}"
}

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

case "${1:-}" in
  deps) shift; cmd_deps "$@" ;;
  build) shift; cmd_build "$@" ;;
  test) shift; cmd_test "$@" ;;
  run) shift; cmd_run "$@" ;;
  fuzz) shift; exec "$ROOT/platform/fuzz.sh" "$@" ;;
  bench) shift; cmd_deps; exec "$ROOT/platform/bench.sh" "$@" ;;
  cross) shift; exec "$ROOT/platform/cross.sh" "$@" ;;
  package) shift; cmd_deps; exec "$ROOT/platform/package.sh" "$@" ;;
  -h|--help|help|"") usage ;;
  *) echo "unknown command: $1" >&2; usage >&2; exit 64 ;;
esac
