#!/usr/bin/env bash
# The amd64 .deb, packed from this build by platform/package.sh --build-dir,
# through its whole life on this machine:
#   dpkg -i       -> files in place, conffile registered, user/group edgespool,
#                    config owned root:edgespool 0640, /var/lib/edgespool 0750
#                    `edgespool config check /etc/edgespool/config.toml`, `version`
#                    `systemd-analyze verify` of the installed unit (if available)
#   dpkg -r       -> program and unit gone; conffile, journal dir and user kept
#   dpkg -P       -> everything gone, user and group too
# Needs root and dpkg (CI runs as root); exits 77 (skipped) otherwise, and
# when a non-test edgespool package is already installed here.
set -euo pipefail

SRC="${EDGESPOOL_SOURCE_DIR:?}"
BUILD="${EDGESPOOL_BUILD_DIR:?}"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || skip "needs root (dpkg -i); CI runs as root"
command -v dpkg >/dev/null && command -v dpkg-deb >/dev/null || skip "dpkg missing"
command -v dpkg-shlibdeps >/dev/null || skip "dpkg-shlibdeps missing (package dpkg-dev)"
command -v adduser >/dev/null || skip "adduser missing (a Depends of the package)"
[ -x "$BUILD/agent/edgespool" ] || skip "$BUILD/agent/edgespool not built"
if dpkg-query -W -f='${Status}' edgespool 2>/dev/null | grep -q installed; then
  skip "an edgespool package is already installed on this machine; not touching it"
fi
getent passwd edgespool >/dev/null && skip "a user edgespool exists already; not touching it"

WORK="$(mktemp -d)"
cleanup() {
  # Whatever happened, leave the machine as found.
  dpkg -P edgespool >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
start=$SECONDS

bash "$SRC/platform/package.sh" amd64 --build-dir "$BUILD" --out "$WORK" >"$WORK/package.log" 2>&1 ||
  { cat "$WORK/package.log"; fail "platform/package.sh amd64"; }
deb="$(ls "$WORK"/edgespool_*_amd64.deb)"
echo "built $(basename "$deb") ($(stat -c %s "$deb") bytes) in $((SECONDS - start)) s"

# The archive itself.
dpkg-deb -c "$deb" >"$WORK/contents"
for f in ./usr/bin/edgespool ./etc/edgespool/config.toml ./lib/systemd/system/edgespool.service \
         ./usr/share/doc/edgespool/copyright; do
  grep -q " $f\$" "$WORK/contents" || fail "$f not in the package"
done
grep -q 'root/root' "$WORK/contents" || fail "files not owned by root in the archive"
depends="$(dpkg-deb -f "$deb" Depends)"
echo "Depends: $depends"
# Every library the agent links comes from a package the Depends name.
grep -q 'adduser' <<<"$depends" || fail "Depends lacks adduser (postinst)"
while read -r soname; do
  # awk reads to the end: leaving early would SIGPIPE ldconfig, and under
  # pipefail that ended the script without a word (seen once in CI, -j2).
  path="$(ldconfig -p | awk -v s="$soname" '$1 == s && /x86-64/ && !found {print $NF; found = 1}')"
  [ -n "$path" ] || fail "NEEDED $soname not found on this machine"
  owner="$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null)" ||
    fail "no package owns $path"
  owner="${owner%%:*}"
  sed 's/ *([^)]*)//g; s/ *| */\n/g; s/, */\n/g' <<<"$depends" | grep -qxF "$owner" ||
    fail "Depends lacks $owner (for $soname)"
done < <(objdump -p "$BUILD/agent/edgespool" | awk '$1 == "NEEDED" {print $2}')
[ "$(dpkg-deb -f "$deb" Architecture)" = amd64 ] || fail "Architecture"
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/edgespool/config.toml ] ||
  fail "conffiles"

# Install.
dpkg -i "$deb" >"$WORK/install.log" 2>&1 || { cat "$WORK/install.log"; fail "dpkg -i"; }
[ -x /usr/bin/edgespool ] || fail "/usr/bin/edgespool missing after install"
[ -f /lib/systemd/system/edgespool.service ] || fail "unit missing after install"
getent passwd edgespool >/dev/null || fail "no user edgespool after install"
getent group edgespool >/dev/null || fail "no group edgespool after install"
[ "$(id -gn edgespool)" = edgespool ] || fail "user edgespool's group is $(id -gn edgespool)"
[ "$(stat -c '%U:%G %a' /etc/edgespool/config.toml)" = "root:edgespool 640" ] ||
  fail "config is $(stat -c '%U:%G %a' /etc/edgespool/config.toml)"
[ "$(stat -c '%U:%G %a' /var/lib/edgespool)" = "edgespool:edgespool 750" ] ||
  fail "/var/lib/edgespool is $(stat -c '%U:%G %a' /var/lib/edgespool)"
dpkg-query -W -f='${Conffiles}\n' edgespool | grep -q /etc/edgespool/config.toml ||
  fail "config.toml not registered as a conffile"
grep -qx 'socket = "/run/edgespool/edgespool.sock"' /etc/edgespool/config.toml || fail "socket path"
grep -qx 'path = "/var/lib/edgespool/journal.db"' /etc/edgespool/config.toml || fail "journal path"

out="$(/usr/bin/edgespool config check /etc/edgespool/config.toml 2>&1)" ||
  fail "edgespool config check /etc/edgespool/config.toml: $out"
echo "config check: ${out:-ok}"
# As the service user, as systemd would run it (the config is 0640 root:edgespool).
if command -v setpriv >/dev/null; then
  setpriv --reuid=edgespool --regid=edgespool --init-groups \
    /usr/bin/edgespool config check /etc/edgespool/config.toml >/dev/null 2>&1 ||
    fail "user edgespool cannot check its own config"
fi
ver="$(/usr/bin/edgespool version)"
grep -q "^edgespool $(dpkg-deb -f "$deb" Version)" <<<"$ver" || fail "version says '$ver'"
echo "version: $ver"

if command -v systemd-analyze >/dev/null; then
  systemd-analyze verify /lib/systemd/system/edgespool.service >"$WORK/verify.log" 2>&1 ||
    { cat "$WORK/verify.log"; fail "systemd-analyze verify"; }
  echo "systemd-analyze verify: ok; $(systemd-analyze security --offline=true \
    /lib/systemd/system/edgespool.service 2>/dev/null | tail -1 | sed 's/^→ //')"
else
  echo "systemd-analyze not installed: unit verification skipped"
fi

# Remove: the program goes, the admin's config and the journal stay.
dpkg -r edgespool >"$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log"; fail "dpkg -r"; }
[ ! -e /usr/bin/edgespool ] || fail "/usr/bin/edgespool left after dpkg -r"
[ ! -e /lib/systemd/system/edgespool.service ] || fail "unit left after dpkg -r"
[ -f /etc/edgespool/config.toml ] || fail "dpkg -r removed the conffile"
[ -d /var/lib/edgespool ] || fail "dpkg -r removed the journal dir"

# Purge: nothing left.
dpkg -P edgespool >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; fail "dpkg -P"; }
for p in /etc/edgespool /var/lib/edgespool /run/edgespool \
         /etc/systemd/system/edgespool.service \
         /etc/systemd/system/multi-user.target.wants/edgespool.service; do
  [ ! -e "$p" ] && [ ! -L "$p" ] || fail "$p left after dpkg -P"
done
getent passwd edgespool >/dev/null && fail "user edgespool left after purge"
getent group edgespool >/dev/null && fail "group edgespool left after purge"
dpkg-query -W edgespool >/dev/null 2>&1 && fail "dpkg still knows edgespool after purge"
echo "install, config check, version, remove, purge: ok in $((SECONDS - start)) s"
echo "PASS"
