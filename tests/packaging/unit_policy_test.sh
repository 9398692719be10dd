#!/usr/bin/env bash
# The shipped unit's operating policy (platform/systemd/edgespool.service), as
# systemd 252 (Debian 12) reads it:
#   - no start rate limit (StartLimitIntervalSec=0 in [Unit]): an unattended
#     gateway keeps retrying instead of staying failed after five quick failures
#   - Restart=on-failure, RestartPreventExitStatus= includes 78 (EX_CONFIG)
#   - ExecReload= sends SIGHUP to the main pid (the agent reloads its config;
#     systemd 252 has no Type=notify-reload)
#   - LimitNOFILE= soft >= the default producer.max_connections + 64 + 4096
#     (agent/fd_limit.h: own fds, refusals in flight), the default read from
#     `edgespool config show`
#   - `systemd-analyze verify` accepts the unit with no unknown key and no
#     value it failed to parse (it only warns about those, exit status 0)
# Exits 77 (skipped) without the built binary; the verify step is skipped
# without systemd-analyze.
set -euo pipefail

SRC="${EDGESPOOL_SOURCE_DIR:?}"
BUILD="${EDGESPOOL_BUILD_DIR:?}"
UNIT="$SRC/platform/systemd/edgespool.service"
BIN="$BUILD/agent/edgespool"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -x "$BIN" ] || skip "$BIN not built"

# key SECTION KEY: the last value of KEY in [SECTION] (systemd: last one wins).
key() {
  awk -v sec="[$1]" -v k="$2" '
    /^\[/ { in_sec = ($0 == sec); next }
    in_sec && index($0, k "=") == 1 { v = substr($0, length(k) + 2) }
    END { print v }' "$UNIT"
}

[ "$(key Unit StartLimitIntervalSec)" = "0" ] ||
  fail "[Unit] StartLimitIntervalSec=0 missing (got '$(key Unit StartLimitIntervalSec)')"
[ -z "$(key Service StartLimitIntervalSec)" ] ||
  fail "StartLimitIntervalSec= belongs in [Unit] (systemd >= 230 ignores it in [Service])"
[ "$(key Service Restart)" = "on-failure" ] || fail "Restart=on-failure missing"
echo " $(key Service RestartPreventExitStatus) " | grep -q " 78 " ||
  fail "RestartPreventExitStatus= lacks 78 (got '$(key Service RestartPreventExitStatus)')"
[ "$(key Service ExecReload)" = "/bin/kill -HUP \$MAINPID" ] ||
  fail "ExecReload=/bin/kill -HUP \$MAINPID missing (got '$(key Service ExecReload)')"

nofile="$(key Service LimitNOFILE)"
soft="${nofile%%:*}"
[[ "$soft" =~ ^[0-9]+$ ]] || fail "LimitNOFILE= soft limit not a number: '$nofile'"
empty="$(mktemp)"
trap 'rm -f "$empty"' EXIT
conns="$("$BIN" config show "$empty" | awk -F' = ' '/^max_connections = / { print $2; exit }')"
[[ "$conns" =~ ^[0-9]+$ ]] || fail "no producer.max_connections in 'edgespool config show'"
[ "$soft" -ge $((conns + 64 + 4096)) ] ||
  fail "LimitNOFILE= soft $soft < default producer.max_connections $conns + 64 + 4096"
echo "policy: StartLimitIntervalSec=0, RestartSec=$(key Service RestartSec)," \
  "RestartPreventExitStatus=$(key Service RestartPreventExitStatus), LimitNOFILE=$nofile" \
  "(default max_connections $conns)"

if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed: verify skipped"
  exit 0
fi
# verify insists that ExecStart= exists: point it at this build.
dir="$(mktemp -d)"
trap 'rm -f "$empty"; rm -rf "$dir"' EXIT
sed "s|^ExecStart=/usr/bin/edgespool |ExecStart=$BIN |" "$UNIT" >"$dir/edgespool.service"
systemd-analyze verify "$dir/edgespool.service" >"$dir/verify.log" 2>&1 ||
  { cat "$dir/verify.log"; fail "systemd-analyze verify"; }
if grep -E "Unknown key|Unknown section|Failed to parse|[Ii]nvalid|ignoring" "$dir/verify.log"; then
  fail "systemd-analyze verify warned about the unit (above)"
fi
echo "systemd-analyze verify ($(systemd-analyze --version | head -1)): no warnings"
