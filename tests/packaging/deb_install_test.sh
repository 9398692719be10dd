#!/usr/bin/env bash
# The .debs as a user gets them: built by debhelper (platform/package.sh,
# i.e. dpkg-buildpackage), then installed into a clean Debian root and taken
# through their life there. Nothing is installed on this machine itself.
#
#   build      platform/package.sh amd64: edgespool, edgespool-dbgsym,
#              libedgespool-client-dev; control fields, md5sums, conffiles,
#              hardening of the agent (FORTIFY, BIND_NOW, PIE), the dbgsym's
#              build id
#   root       a bookworm root made by mmdebstrap from Debian's archive,
#              cached under build/pkgtest/ (made once: ~100 s), used through
#              an overlay so every run starts clean
#   install    dpkg -i in the root (its maintainer scripts run there):
#              user and group from sysusers.d, directories and the config's
#              owner from tmpfiles.d, units in place, the service enabled and
#              the socket not, `systemd-analyze verify`, man pages and bash
#              completion, `edgespool config check` as user edgespool
#   SDK        a C producer built with `pkg-config --cflags --libs
#              edgespool-client` only, a CMake project with
#              find_package(edgespool-client); both publish to the installed
#              agent (the second through socket activation, when
#              systemd-socket-activate is there)
#   upgrade    a locally edited config survives an upgrade that does not
#              touch it, and one that does (--force-confold: .dpkg-dist)
#   remove     the program goes; the config and the journal stay
#   purge      the config, the journal, the enablement links go
#   lintian    on the .changes: no error or warning beyond the ones listed
#              in docs/packaging.md (KNOWN_TAGS below)
#
# Needs root (chroot, mounts), debhelper, mmdebstrap (or a cached root) and
# the network to Debian's archive for the first root. Exit 77 = skipped.
# Environment: EDGESPOOL_SOURCE_DIR; EDGESPOOL_PKGTEST_CACHE (default
# $EDGESPOOL_SOURCE_DIR/build/pkgtest).
set -euo pipefail

SRC="${EDGESPOOL_SOURCE_DIR:?}"
CACHE="${EDGESPOOL_PKGTEST_CACHE:-$SRC/build/pkgtest}"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $* ($((SECONDS - START)) s)"; }
START=$SECONDS

# Lintian errors and warnings that remain, each with its reason in
# docs/packaging.md (none today; the one info tag is overridden in
# debian/edgespool.lintian-overrides).
KNOWN_TAGS=()

[ "$(id -u)" -eq 0 ] || skip "needs root (chroot, mount); CI runs as root"
for t in dpkg-buildpackage dh unshare chroot; do
  command -v "$t" >/dev/null || skip "$t missing (platform/dev.sh deps installs debhelper)"
done

# Everything below runs in a mount namespace of its own: the overlay, /proc
# and /dev in the root vanish with it, whatever happens.
if [ -z "${EDGESPOOL_PKGTEST_NS:-}" ]; then
  exec env EDGESPOOL_PKGTEST_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi

WORK="$(mktemp -d)"
R="$WORK/root"
AGENT_PIDS=()
cleanup() {
  local p
  for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${AGENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  umount -R "$R" 2>/dev/null || umount -l "$R" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
in_root() { chroot "$R" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

# --- build ------------------------------------------------------------------
step "build: platform/package.sh amd64"
DEBS="$WORK/debs"
bash "$SRC/platform/package.sh" amd64 --out "$DEBS" >"$WORK/package.log" 2>&1 ||
  { tail -40 "$WORK/package.log"; fail "platform/package.sh amd64"; }
VERSION="$(cd "$SRC" && dpkg-parsechangelog -S Version)"
deb="$DEBS/edgespool_${VERSION}_amd64.deb"
dev="$DEBS/libedgespool-client-dev_${VERSION}_amd64.deb"
dbg="$DEBS/edgespool-dbgsym_${VERSION}_amd64.deb"
for f in "$deb" "$dev" "$dbg" "$DEBS/edgespool_${VERSION}_amd64.changes"; do
  [ -f "$f" ] || fail "not built: $(basename "$f") (built: $(ls "$DEBS" | tr '\n' ' '))"
done
echo "built in $((SECONDS - START)) s: $(cd "$DEBS" && for f in *.deb; do printf '%s (%s B) ' "$f" "$(stat -c %s "$f")"; done)"

# --- the archives -----------------------------------------------------------
step "archives"
field() { dpkg-deb -f "$1" "$2"; }
[ "$(field "$deb" Recommends)" = ca-certificates ] || fail "Recommends: $(field "$deb" Recommends)"
grep -q 'systemd' <<<"$(field "$deb" Depends)" || fail "Depends lacks systemd (sysusers): $(field "$deb" Depends)"
grep -q 'libuv1 ' <<<"$(field "$deb" Depends)" || fail "Depends lacks libuv1 (shlibs): $(field "$deb" Depends)"
[ "$(field "$dev" Multi-Arch)" = same ] || fail "the -dev package is not Multi-Arch: same"
for d in "$deb" "$dev"; do
  x="$WORK/x-$(basename "$d" .deb)"
  dpkg-deb -R "$d" "$x"
  [ -s "$x/DEBIAN/md5sums" ] || fail "$(basename "$d"): no md5sums"
  (cd "$x" && md5sum --quiet -c DEBIAN/md5sums) || fail "$(basename "$d"): md5sums do not match"
done
X="$WORK/x-edgespool_${VERSION}_amd64"
[ "$(cat "$X/DEBIAN/conffiles")" = /etc/edgespool/config.toml ] ||
  fail "conffiles: $(cat "$X/DEBIAN/conffiles")"
for f in usr/bin/edgespool etc/edgespool/config.toml lib/systemd/system/edgespool.service \
         lib/systemd/system/edgespool.socket usr/lib/sysusers.d/edgespool.conf \
         usr/lib/tmpfiles.d/edgespool.conf usr/share/doc/edgespool/copyright \
         usr/share/doc/edgespool/changelog.gz; do
  [ -e "$X/$f" ] || fail "edgespool lacks /$f"
done
# No hand-written user or directory handling: debhelper's snippets, which
# run the sysusers.d and tmpfiles.d files a firmware image runs at boot.
grep -q 'systemd-sysusers.*edgespool.conf' "$X/DEBIAN/postinst" || fail "postinst does not run sysusers"
grep -q 'systemd-tmpfiles.*edgespool.conf' "$X/DEBIAN/postinst" || fail "postinst does not run tmpfiles"
[ "$(grep -n -m1 systemd-sysusers "$X/DEBIAN/postinst" | cut -d: -f1)" -lt \
  "$(grep -n -m1 systemd-tmpfiles "$X/DEBIAN/postinst" | cut -d: -f1)" ] ||
  fail "postinst runs tmpfiles before sysusers (the directories' owner would not exist)"
grep -q adduser "$X/DEBIAN/postinst" && fail "postinst still calls adduser"
# Hardening (dpkg-buildflags, hardening=+all): PIE, full RELRO with BIND_NOW,
# FORTIFY (the checked variants of libc calls), the stack protector.
bin="$X/usr/bin/edgespool"
# (Into files first: grep -q leaving early would SIGPIPE readelf, and under
# pipefail a found match would read as a failure.)
readelf -hdlSW --dyn-syms "$bin" >"$WORK/readelf.txt"
grep -q 'Type:.*DYN' "$WORK/readelf.txt" || fail "the agent is not PIE"
grep -q 'FLAGS_1.*PIE' "$WORK/readelf.txt" || fail "the agent is not PIE (FLAGS_1)"
grep -qE 'BIND_NOW|FLAGS_1.*NOW' "$WORK/readelf.txt" || fail "the agent is not linked with -z now"
grep -q GNU_RELRO "$WORK/readelf.txt" || fail "the agent has no RELRO segment"
grep -qE 'UND __[a-z_]+_chk' "$WORK/readelf.txt" || fail "no FORTIFY (_chk) calls in the agent"
grep -q 'UND __stack_chk_fail' "$WORK/readelf.txt" || fail "no stack protector in the agent"
# The agent is stripped; its debug info is in the dbgsym, under its build id.
grep -q '\.debug_info' "$WORK/readelf.txt" && fail "the agent is not stripped"
build_id="$(readelf -n "$bin" | awk '/Build ID/ {print $3}')"
[ -n "$build_id" ] || fail "the agent has no build id"
dpkg-deb -c "$dbg" >"$WORK/dbgsym.txt"
grep -q "usr/lib/debug/.build-id/${build_id:0:2}/${build_id:2}.debug" "$WORK/dbgsym.txt" ||
  fail "edgespool-dbgsym has no debug file for build id $build_id"
echo "agent: PIE, BIND_NOW, RELRO, FORTIFY, stack protector; build id $build_id in the dbgsym"

# --- a clean root -----------------------------------------------------------
SUITE="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
first() { sed 's/([^)]*)//g; s/|[^,]*//g; s/,/\n/g' | tr -d ' ' | grep -v '^\${' | grep .; }
# What the packages need, and what the SDK checks use.
mapfile -t base_pkgs < <({ field "$deb" Depends | first; field "$dev" Depends | first;
  printf '%s\n' gcc libc6-dev pkg-config cmake make; } | sort -u)
key="$(printf '%s\n' "$SUITE" "${base_pkgs[@]}" | md5sum | cut -c1-12)"
BASE="$CACHE/root-$SUITE-$key"
if [ ! -f "$BASE/.complete" ]; then
  command -v mmdebstrap >/dev/null || skip "no cached root and no mmdebstrap (apt-get install mmdebstrap)"
  step "making the root: mmdebstrap $SUITE + ${base_pkgs[*]} (cached in $BASE)"
  mkdir -p "$CACHE"
  rm -rf "$BASE" "$BASE.tmp"
  inc="$(IFS=,; echo "${base_pkgs[*]}")"
  if ! mmdebstrap --quiet --mode=root --variant=apt --include="$inc" "$SUITE" "$BASE.tmp" \
      >"$WORK/mmdebstrap.log" 2>&1; then
    tail -20 "$WORK/mmdebstrap.log"
    rm -rf "$BASE.tmp"
    grep -qiE 'could not resolve|failed to fetch|temporary failure|unable to connect' \
      "$WORK/mmdebstrap.log" && skip "Debian's archive is out of reach: no root"
    fail "mmdebstrap"
  fi
  touch "$BASE.tmp/.complete"
  mv "$BASE.tmp" "$BASE"
  # Older roots (other package sets) go.
  find "$CACHE" -maxdepth 1 -name "root-*" ! -path "$BASE" -exec rm -rf {} +
fi
mkdir -p "$R" "$WORK/upper" "$WORK/ovl"
if mount -t overlay overlay -o "lowerdir=$BASE,upperdir=$WORK/upper,workdir=$WORK/ovl" "$R" 2>/dev/null; then
  how="overlay on the cached root"
else
  cp -a "$BASE/." "$R/"
  how="a copy of the cached root"
fi
mount -t proc proc "$R/proc"
mount --bind /dev "$R/dev"
echo "root: $how ($BASE)"

# --- install ----------------------------------------------------------------
step "dpkg -i"
cp "$deb" "$dev" "$R/tmp/"
in_root dpkg -i "/tmp/$(basename "$deb")" "/tmp/$(basename "$dev")" >"$WORK/install.log" 2>&1 ||
  { cat "$WORK/install.log"; fail "dpkg -i in the clean root"; }
grep -iE 'warning|error' "$WORK/install.log" && fail "dpkg -i printed warnings (above)"
in_root getent passwd edgespool >/dev/null || fail "no user edgespool (sysusers.d)"
in_root getent group edgespool >/dev/null || fail "no group edgespool (sysusers.d)"
[ "$(in_root id -gn edgespool)" = edgespool ] || fail "edgespool's group is $(in_root id -gn edgespool)"
home_shell="$(in_root getent passwd edgespool | cut -d: -f6,7)"
[ "${home_shell%%:*}" = /var/lib/edgespool ] || fail "edgespool's home: $home_shell"
case "${home_shell#*:}" in */nologin|*/false) ;; *) fail "edgespool has a login shell: $home_shell" ;; esac
mode() { in_root stat -c '%U:%G %a' "$1"; }
[ "$(mode /var/lib/edgespool)" = "edgespool:edgespool 750" ] || fail "/var/lib/edgespool is $(mode /var/lib/edgespool) (tmpfiles.d)"
[ "$(mode /run/edgespool)" = "edgespool:edgespool 750" ] || fail "/run/edgespool is $(mode /run/edgespool) (tmpfiles.d)"
[ "$(mode /etc/edgespool/config.toml)" = "root:edgespool 640" ] || fail "config is $(mode /etc/edgespool/config.toml) (tmpfiles.d z)"
grep -q '/etc/edgespool/config.toml' <<<"$(in_root dpkg-query -W -f='${Conffiles}\n' edgespool)" ||
  fail "config.toml not registered as a conffile"
[ "$(in_root systemctl is-enabled edgespool.service 2>&1)" = enabled ] ||
  fail "edgespool.service is $(in_root systemctl is-enabled edgespool.service 2>&1), not enabled"
[ "$(in_root systemctl is-enabled edgespool.socket 2>&1)" = disabled ] ||
  fail "edgespool.socket is $(in_root systemctl is-enabled edgespool.socket 2>&1), not disabled"
for u in edgespool.service edgespool.socket; do
  in_root systemd-analyze verify "/lib/systemd/system/$u" >"$WORK/verify.log" 2>&1 ||
    { cat "$WORK/verify.log"; fail "systemd-analyze verify $u"; }
  grep -E "Unknown|Failed to|[Ii]nvalid|ignoring" "$WORK/verify.log" && fail "systemd-analyze verify $u warned (above)"
done
echo "units: edgespool.service enabled, edgespool.socket disabled; both verify"
# Man pages and bash completion, written by the built agent (`edgespool
# manpage 8|5`, `edgespool completion`) and compressed by dh_compress.
for m in /usr/share/man/man8/edgespool.8.gz /usr/share/man/man5/edgespool.toml.5.gz; do
  in_root test -f "$m" || fail "man page $m not installed"
  in_root sh -c "zcat $m | grep -q '^\.TH'" || fail "$m is not a man page"
done
in_root test -f /usr/share/bash-completion/completions/edgespool || fail "bash completion not installed"
in_root bash -c '. /usr/share/bash-completion/completions/edgespool && complete -p edgespool' >/dev/null ||
  fail "the bash completion does not register for edgespool"
echo "man pages: edgespool(8), edgespool.toml(5); bash completion"
in_root chroot --userspec=edgespool:edgespool / /usr/bin/edgespool config check /etc/edgespool/config.toml ||
  fail "user edgespool cannot check its installed config"
ver="$(in_root edgespool version)"
grep -q "^edgespool ${VERSION%%-*}" <<<"$ver" || fail "version says '$ver'"

# --- the SDK: pkg-config only, and CMake ------------------------------------
step "SDK: a C producer with pkg-config only; a CMake consumer"
mkdir -p "$R/tmp/sdk/cmake"
cat >"$R/tmp/sdk/producer.c" <<'C'
/* Publishes argv[2] on argv[1]'s agent; prints the seq. */
#include <edgespool/agent/client/edgespool_client.h>
#include <stdio.h>
#include <string.h>
int main(int argc, char** argv) {
  edgespool_producer* p = NULL;
  if (argc != 3) return 64;
  int rc = edgespool_connect(argv[1], &p);
  if (rc != 0) { printf("connect: %s\n", edgespool_strerror(rc)); return 1; }
  int64_t seq = edgespool_publish(p, "sensors/pkgtest", argv[2], strlen(argv[2]));
  printf("seq %lld\n", (long long)seq);
  edgespool_close(p);
  return seq >= 1 ? 0 : 1;
}
C
in_root sh -c 'cd /tmp/sdk && cc -std=c99 -Wall -Werror -o producer producer.c $(pkg-config --cflags --libs edgespool-client)' \
  >"$WORK/cc.log" 2>&1 || { cat "$WORK/cc.log"; fail "a C producer does not build with pkg-config edgespool-client alone"; }
cp "$R/tmp/sdk/producer.c" "$R/tmp/sdk/cmake/producer.c"
cat >"$R/tmp/sdk/cmake/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.22)
project(pkgtest_consumer C)
find_package(edgespool-client 0.1 REQUIRED)
add_executable(producer producer.c)
target_link_libraries(producer PRIVATE edgespool::client)
CMAKE
in_root sh -c 'cd /tmp/sdk/cmake && cmake -S . -B out >/dev/null && cmake --build out' \
  >"$WORK/cmake.log" 2>&1 || { cat "$WORK/cmake.log"; fail "find_package(edgespool-client) consumer"; }

# The installed agent, as its unit runs it (user edgespool, the packaged
# config), its uplink pointing nowhere: store-and-forward acks all the same.
run_agent() {  # run_agent LOG [launcher...]
  local log="$1"; shift
  chroot "$R" /usr/bin/env -i PATH=/usr/bin:/bin EDGESPOOL_UPLINK_URL=mqtt://127.0.0.1:9 \
    EDGESPOOL_NODE_ID=pkgtest /usr/sbin/chroot --userspec=edgespool:edgespool / \
    "$@" /usr/bin/edgespool run --config /etc/edgespool/config.toml >"$log" 2>&1 &
  AGENT_PIDS+=($!)
}
wait_socket() {
  for _ in $(seq 100); do [ -S "$R/run/edgespool/edgespool.sock" ] && return 0; sleep 0.1; done
  return 1
}
stop_agents() {
  local p
  for p in "${AGENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${AGENT_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  AGENT_PIDS=()
}
run_agent "$WORK/agent.log"
wait_socket || { cat "$WORK/agent.log"; fail "the installed agent opened no socket in 10 s"; }
in_root /tmp/sdk/producer /run/edgespool/edgespool.sock "21.5" ||
  { cat "$WORK/agent.log"; fail "publish from the pkg-config-built producer"; }
stop_agents
rm -f "$R/run/edgespool/edgespool.sock"
if in_root sh -c 'command -v systemd-socket-activate' >/dev/null; then
  # As edgespool.socket would: systemd-socket-activate binds the socket,
  # then execs the agent with it as fd 3 (LISTEN_FDS=1, LISTEN_FDNAMES=producer).
  run_agent "$WORK/agent-activated.log" systemd-socket-activate \
    -l /run/edgespool/edgespool.sock --fdname=producer
  wait_socket || { cat "$WORK/agent-activated.log"; fail "systemd-socket-activate made no socket"; }
  in_root /tmp/sdk/cmake/out/producer /run/edgespool/edgespool.sock "22.5" ||
    { cat "$WORK/agent-activated.log"; fail "publish from the CMake-built producer (socket activation)"; }
  grep -q 'socket activation' "$WORK/agent-activated.log" ||
    { cat "$WORK/agent-activated.log"; fail "the agent did not take the activated socket"; }
  stop_agents
  echo "SDK: both producers published (the CMake one through socket activation)"
else
  run_agent "$WORK/agent2.log"
  wait_socket || fail "the agent opened no socket"
  in_root /tmp/sdk/cmake/out/producer /run/edgespool/edgespool.sock "22.5" || fail "publish from the CMake-built producer"
  stop_agents
  echo "SDK: both producers published"
fi
[ -f "$R/var/lib/edgespool/journal.db" ] || fail "no journal in /var/lib/edgespool"

# --- upgrade: the admin's config is kept ------------------------------------
# Next versions repacked from this one (a second dpkg-buildpackage would only
# cost time): +u1 with the same config, +u2 with a changed one.
step "upgrade"
repack() {  # repack SUFFIX CHANGE_CONFIG -> path of the new .deb
  local v="$VERSION+$1" d="$WORK/up-$1"
  dpkg-deb -R "$deb" "$d"
  sed -i "s/^Version: .*/Version: $v/" "$d/DEBIAN/control"
  if [ "$2" = yes ]; then
    echo "# $v: a new default" >>"$d/etc/edgespool/config.toml"
    (cd "$d" && sed -i "s|^[0-9a-f]*  etc/edgespool/config.toml\$|$(md5sum etc/edgespool/config.toml)|" DEBIAN/md5sums)
  fi
  dpkg-deb --root-owner-group -b "$d" "$WORK/edgespool_${v}_amd64.deb" >/dev/null
  echo "$WORK/edgespool_${v}_amd64.deb"
}
echo "# edited by the admin" >>"$R/etc/edgespool/config.toml"
edited="$(md5sum <"$R/etc/edgespool/config.toml")"
u1="$(repack u1 no)"; u2="$(repack u2 yes)"
cp "$u1" "$u2" "$R/tmp/"
in_root dpkg -i "/tmp/$(basename "$u1")" >"$WORK/u1.log" 2>&1 || { cat "$WORK/u1.log"; fail "upgrade to +u1"; }
[ "$(md5sum <"$R/etc/edgespool/config.toml")" = "$edited" ] || fail "upgrade (config unchanged upstream) lost the admin's edit"
in_root dpkg -i --force-confdef --force-confold "/tmp/$(basename "$u2")" </dev/null >"$WORK/u2.log" 2>&1 ||
  { cat "$WORK/u2.log"; fail "upgrade to +u2"; }
[ "$(md5sum <"$R/etc/edgespool/config.toml")" = "$edited" ] || fail "upgrade (config changed upstream) lost the admin's edit"
grep -q '+u2: a new default' "$R/etc/edgespool/config.toml.dpkg-dist" ||
  fail "the new upstream config is not beside it as config.toml.dpkg-dist"
[ "$(mode /etc/edgespool/config.toml)" = "root:edgespool 640" ] || fail "config is $(mode /etc/edgespool/config.toml) after upgrade"
[ "$(in_root systemctl is-enabled edgespool.service 2>&1)" = enabled ] || fail "the service is not enabled after upgrade"
echo "upgrade: edited config kept (upstream unchanged: silently; changed: .dpkg-dist beside it)"

# --- remove, purge ----------------------------------------------------------
step "remove, purge"
in_root dpkg -r libedgespool-client-dev edgespool >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; fail "dpkg -r"; }
for p in /usr/bin/edgespool /lib/systemd/system/edgespool.service /lib/systemd/system/edgespool.socket \
         /usr/include/edgespool /usr/lib/x86_64-linux-gnu/libedgespool-client.a; do
  in_root test ! -e "$p" || fail "$p left after dpkg -r"
done
in_root test -f /etc/edgespool/config.toml || fail "dpkg -r removed the config"
in_root test -f /var/lib/edgespool/journal.db || fail "dpkg -r removed the journal"
in_root dpkg -P edgespool libedgespool-client-dev >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "dpkg -P"; }
for p in /etc/edgespool /var/lib/edgespool /run/edgespool /etc/systemd/system/edgespool.service \
         /etc/systemd/system/multi-user.target.wants/edgespool.service \
         /var/lib/systemd/deb-systemd-helper-enabled/edgespool.service.dsh-also; do
  in_root test ! -e "$p" -a ! -L "$p" || fail "$p left after dpkg -P"
done
in_root dpkg-query -W edgespool >/dev/null 2>&1 && fail "dpkg still knows edgespool after purge"
echo "remove: config and journal kept; purge: nothing left (the system user stays, as Debian's do)"

# --- lintian ----------------------------------------------------------------
if command -v lintian >/dev/null; then
  step "lintian"
  lintian --pedantic "$DEBS/edgespool_${VERSION}_amd64.changes" 2>/dev/null |
    grep -E '^[EW]: ' >"$WORK/lintian.txt" || true
  unexpected="$(grep -vxF -f <(printf '%s\n' "${KNOWN_TAGS[@]}" "no known tag") "$WORK/lintian.txt" || true)"
  [ -z "$unexpected" ] || { echo "$unexpected"; fail "lintian: tags beyond the known ones (above)"; }
  echo "lintian: $(wc -l <"$WORK/lintian.txt") error/warning tags, all known: $(tr '\n' ';' <"$WORK/lintian.txt")"
else
  echo "lintian not installed: skipped"
fi
echo "PASS in $((SECONDS - START)) s"
