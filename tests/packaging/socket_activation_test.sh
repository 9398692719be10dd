#!/usr/bin/env bash
# Socket activation (edgespool.socket): the agent takes a listening producer
# socket from its launcher (sd_listen_fds protocol: fd 3, LISTEN_FDS=1,
# LISTEN_PID = the agent's pid, LISTEN_FDNAMES=producer) instead of binding
# producer.socket, and producers publish through it.
#
# Two launchers, each run when available:
#   python   a launcher of our own (below): binds and listens, puts the
#            socket on fd 3, sets the variables with its own pid (the agent's
#            once exec'd), and waits a second before exec'ing it, so the first
#            producer connects before the agent runs (its frame waits in the
#            socket's backlog, as it does under systemd at boot); it listens
#            with a backlog of 16, which the agent must raise to its 4096
#   systemd  systemd-socket-activate (package systemd), as systemd does it
# Each time: producer.socket points elsewhere and must stay unbound; the
# agent logs that it took the activated socket; a publish gets a seq.
# A LISTEN_PID that is not the agent's is ignored (the agent binds its own).
#
# Environment: EDGESPOOL_BUILD_DIR. Exit 77 = skipped.
set -euo pipefail

BUILD="${EDGESPOOL_BUILD_DIR:?}"
BIN="$BUILD/agent/edgespool"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -x "$BIN" ] || skip "$BIN not built"

WORK="$(mktemp -d)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
: >"$WORK/empty.toml"  # every key at its default, but for the environment's

cat >"$WORK/launch.py" <<'PY'
# launch.py SOCKET DELAY_S PID_MODE CMD...: bind + listen SOCKET, then exec CMD
# in this same process (so the test's kill reaches the agent) with the socket
# as fd 3 under the sd_listen_fds(3) protocol. PID_MODE "self": LISTEN_PID is
# ours, i.e. the agent's after exec (right); "other": our parent's (wrong).
import os, socket, sys, time
path, delay, pid_mode, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o660)
s.listen(16)  # the agent must listen again with its own 4096
open(path + ".ready", "w").close()  # the test may connect from now on
time.sleep(delay)
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)  # dup2 clears FD_CLOEXEC on the copy
else:
    os.set_inheritable(3, True)
env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="producer",
           LISTEN_PID=str(os.getpid() if pid_mode == "self" else os.getppid()))
os.execvpe(cmd[0], cmd, env)
PY

# start_agent NAME LAUNCHER...: the agent under LAUNCHER, its own socket
# config pointing at $WORK/NAME-unused.sock.
start_agent() {
  local name="$1"; shift
  mkdir -p "$WORK/$name"
  EDGESPOOL_PRODUCER_SOCKET="$WORK/$name/unused.sock" EDGESPOOL_STORE_PATH="$WORK/$name/journal.db" \
  EDGESPOOL_UPLINK_URL="mqtt://127.0.0.1:9" EDGESPOOL_NODE_ID="activation-$name" \
    "$@" "$BIN" run --config "$WORK/empty.toml" >"$WORK/$name/agent.log" 2>&1 &
  PID=$!
}
stop_agent() {
  kill -TERM "$PID" 2>/dev/null || true
  wait "$PID" 2>/dev/null || true
  PID=""
}
wait_for() {  # wait_for FILE: up to 10 s
  for _ in $(seq 100); do [ -e "$1" ] && return 0; sleep 0.1; done
  return 1
}
publish() {  # publish NAME SOCKET MESSAGE: prints the reply
  timeout 20 "$BIN" publish --socket "$2" "sensors/activation" "$3" </dev/null 2>&1 ||
    { cat "$WORK/$1/agent.log"; fail "$1: publish through $2"; }
}
check_activated() {  # check_activated NAME
  [ ! -e "$WORK/$1/unused.sock" ] || fail "$1: the agent bound producer.socket as well"
  grep -q 'socket activation' "$WORK/$1/agent.log" ||
    { cat "$WORK/$1/agent.log"; fail "$1: the agent does not say it took the activated socket"; }
}

ran=0
if command -v python3 >/dev/null; then
  sock="$WORK/py.sock"
  start_agent py python3 "$WORK/launch.py" "$sock" 1 self
  wait_for "$sock.ready" || { cat "$WORK/py/agent.log"; fail "python launcher: no socket"; }
  # Connects while the agent has not started yet (the launcher waits 1 s).
  out="$(publish py "$sock" "queued before the agent ran")"
  grep -qi 'seq' <<<"$out" || fail "python launcher: publish said '$out'"
  check_activated py
  out="$(publish py "$sock" "second")"
  # The agent listened on the inherited socket again with its backlog (ss
  # shows a listening socket's backlog as Send-Q), not the launcher's 16.
  if command -v ss >/dev/null; then
    backlog="$(ss -xln | awk -v p="$sock" '$5 == p {print $4}')"
    [ "$backlog" = 4096 ] || { ss -xln | grep -F "$sock" || true; fail "inherited socket's backlog is '$backlog', not 4096"; }
  fi
  stop_agent
  echo "python launcher: published before and after the agent was up ($out)"
  ran=$((ran + 1))

  # LISTEN_PID names another process: not ours, so ignored; the agent binds
  # producer.socket as usual.
  start_agent wrongpid python3 "$WORK/launch.py" "$WORK/wrongpid.sock" 0 other
  wait_for "$WORK/wrongpid/unused.sock" ||
    { cat "$WORK/wrongpid/agent.log"; fail "LISTEN_PID of another process: the agent did not bind its own socket"; }
  publish wrongpid "$WORK/wrongpid/unused.sock" "own socket" >/dev/null
  stop_agent
  echo "LISTEN_PID of another process: ignored, producer.socket bound"
fi

if command -v systemd-socket-activate >/dev/null; then
  sock="$WORK/sd.sock"
  start_agent sd systemd-socket-activate -l "$sock" --fdname=producer
  wait_for "$sock" || { cat "$WORK/sd/agent.log"; fail "systemd-socket-activate: no socket"; }
  out="$(publish sd "$sock" "through systemd-socket-activate")"
  grep -qi 'seq' <<<"$out" || fail "systemd-socket-activate: publish said '$out'"
  check_activated sd
  stop_agent
  echo "systemd-socket-activate: published ($out)"
  ran=$((ran + 1))
fi
[ "$ran" -gt 0 ] || skip "neither python3 nor systemd-socket-activate here"
echo "PASS ($ran launchers)"
