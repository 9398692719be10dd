#!/usr/bin/env bash
# Build edgespool .deb packages with dpkg-deb (no debhelper needed).
#
#   platform/package.sh [amd64|arm64|armhf ...] [--build-dir DIR] [--out DIR]
#
# Without an architecture it builds all three. Each is built without tests or
# benchmarks in build/h-ship-pkg-ARCH (cross arches through toolchains/, their
# libraries set up by `platform/cross.sh ARCH --deps-only`), then packed from
# platform/debian/:
#   /usr/bin/edgespool                      stripped
#   /etc/edgespool/config.toml              conffile, from config.example.toml
#   /lib/systemd/system/edgespool.service   platform/systemd/
#   /usr/share/doc/edgespool/               copyright, README.md, config.example.toml
# and DEBIAN/{control,conffiles,postinst,prerm,postrm}; Depends from
# dpkg-shlibdeps (for cross arches, with the target's shlibs files), plus
# adduser for the postinst's system user.
#
# --build-dir DIR packs an already built tree (one architecture; the package
# test uses it to avoid a second build). Output: build/h-ship-packages/ or --out.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'package.sh: %s\n' "$*" >&2; exit 1; }
usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }

ARCHES=() BUILD_DIR="" OUT="$ROOT/build/h-ship-packages"
while [ $# -gt 0 ]; do
  case "$1" in
    amd64|arm64|armhf) ARCHES+=("$1") ;;
    --build-dir) BUILD_DIR="$(cd "${2:?}" && pwd)"; shift ;;
    --out) OUT="${2:?}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 64 ;;
  esac
  shift
done
[ ${#ARCHES[@]} -eq 0 ] && ARCHES=(amd64 arm64 armhf)
[ -n "$BUILD_DIR" ] && [ ${#ARCHES[@]} -ne 1 ] && die "--build-dir packs one architecture"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

for tool in dpkg-deb dpkg-shlibdeps; do
  command -v "$tool" >/dev/null || die "$tool missing (apt-get install dpkg-dev)"
done

VERSION="$(sed -n 's/^project(edgespool VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
[ -n "$VERSION" ] || die "no project VERSION in CMakeLists.txt"

triple_of() {
  case "$1" in
    amd64) echo x86_64-linux-gnu ;; arm64) echo aarch64-linux-gnu ;;
    armhf) echo arm-linux-gnueabihf ;;
  esac
}

# Configures and builds the agent alone for $1; prints the build dir.
build_arch() {
  local arch="$1" dir="$ROOT/build/h-ship-pkg-$1" args=()
  args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGESPOOL_WERROR=ON
    -DEDGESPOOL_BUILD_TESTS=OFF -DEDGESPOOL_BUILD_BENCH=OFF -DCMAKE_INSTALL_PREFIX=/usr)
  if [ "$arch" != amd64 ]; then
    local cross_arch=aarch64
    [ "$arch" = armhf ] && cross_arch=armhf
    "$ROOT/platform/cross.sh" "$cross_arch" --deps-only >&2
    args+=(-DCMAKE_TOOLCHAIN_FILE="$ROOT/toolchains/$(triple_of "$arch").cmake")
    local sysroot="$ROOT/build/$cross_arch/sysroot"
    if [ -f "$sysroot/.edgespool-sysroot" ]; then
      args+=(-DEDGESPOOL_SYSROOT="$sysroot")
    else
      args+=(-DEDGESPOOL_SYSROOT=)
    fi
  fi
  log "build $arch in $dir"
  mkdir -p "$dir"
  cmake -S "$ROOT" -B "$dir" "${args[@]}" >"$dir/configure.log" 2>&1 ||
    { cat "$dir/configure.log" >&2; die "configure $arch"; }
  cmake --build "$dir" -j "${JOBS:-2}" --target edgespool >&2
  echo "$dir"
}

# For the library sysroot (no target packages in the dpkg database): the
# target's runtime-library packages unpacked with their control files, for
# dpkg-shlibdeps -S, so that their own symbols files give the versions and
# the Depends name libuv1 and libstdc++6, not the cross toolchain's
# libstdc++6-armhf-cross. The C/C++ runtime is not in the sysroot (the
# compiler brings it): its packages are downloaded just for this.
sysroot_pkg_dirs() {
  local arch="$1" cross_arch="$2" out="$3"
  local apt="$ROOT/build/$cross_arch/apt" f
  [ -d "$apt/debs" ] || return 0
  mkdir -p "$apt/runtime-debs" "$out"
  if ! ls "$apt/runtime-debs"/libc6_*.deb >/dev/null 2>&1; then
    (cd "$apt/runtime-debs" && apt-get -o "APT::Architecture=$arch" \
      -o "APT::Architectures=$arch" -o "Dir::State=$apt/state" \
      -o "Dir::State::status=$apt/status" -o "Dir::Cache=$apt/cache" \
      -o Debug::NoLocking=1 download -qq libc6 libstdc++6 libgcc-s1 2>&1 |
      grep -v unsandboxed >&2 || true)
  fi
  for f in "$apt/debs"/*.deb "$apt/runtime-debs"/*.deb; do
    [ -f "$f" ] || continue
    dpkg-deb -I "$f" shlibs >/dev/null 2>&1 || continue  # not a library package
    local d="$out/$(basename "$f" .deb)"
    dpkg-deb -R "$f" "$d"
    echo "$d"
  done
}

# Prints the Depends value for binary $2 of arch $1.
shlib_depends() {
  local arch="$1" bin="$2" tmp
  tmp="$(mktemp -d)"
  mkdir -p "$tmp/debian"
  printf 'Source: edgespool\n\nPackage: edgespool\nArchitecture: any\n' >"$tmp/debian/control"
  cp "$bin" "$tmp/edgespool"
  local opts=()
  if [ "$arch" != amd64 ]; then
    local triple sysroot cross_arch=aarch64
    triple="$(triple_of "$arch")"
    [ "$arch" = armhf ] && cross_arch=armhf
    sysroot="$ROOT/build/$cross_arch/sysroot"
    # Multiarch: the target's packages are in the dpkg database, with their
    # symbols files; the library dirs only need naming.
    opts=(-l"/lib/$triple" -l"/usr/lib/$triple")
    if [ -f "$sysroot/.edgespool-sysroot" ]; then
      local d
      while read -r d; do opts+=(-S"$d"); done < <(sysroot_pkg_dirs "$arch" "$cross_arch" "$tmp/pkgs")
      opts+=(-l"$sysroot/usr/lib/$triple")
    fi
    opts+=(--ignore-missing-info)
  fi
  local line
  line="$(cd "$tmp" && DEB_HOST_ARCH="$arch" DEB_HOST_MULTIARCH="$(triple_of "$arch")" \
    dpkg-shlibdeps -O "${opts[@]}" -e edgespool 2>"$tmp/err")" ||
    { cat "$tmp/err" >&2; rm -rf "$tmp"; die "dpkg-shlibdeps $arch"; }
  grep -v 'binaries to analyze should already be installed\|no dependency information found' "$tmp/err" >&2 || true
  rm -rf "$tmp"
  echo "${line#shlibs:Depends=}"
}

package_arch() {
  local arch="$1" build="$2"
  local bin="$build/agent/edgespool"
  [ -x "$bin" ] || die "$bin not built"
  local triple strip=strip objdump=objdump
  triple="$(triple_of "$arch")"
  [ "$arch" != amd64 ] && strip="$triple-strip" objdump="$triple-objdump"
  local root
  root="$(mktemp -d)"
  chmod 0755 "$root"  # mktemp's 0700 would be the archive's "./"
  install -d "$root/DEBIAN" "$root/usr/bin" "$root/etc/edgespool" \
    "$root/lib/systemd/system" "$root/usr/share/doc/edgespool"
  "$strip" --strip-unneeded --remove-section=.comment --remove-section=.note \
    -o "$root/usr/bin/edgespool" "$bin"
  chmod 0755 "$root/usr/bin/edgespool"
  # The packaged config is the example with the package's paths made explicit
  # (they are the example's defaults today; this keeps them so if those move).
  sed -e 's|^socket = .*|socket = "/run/edgespool/edgespool.sock"|' \
      -e 's|^path = .*journal.*|path = "/var/lib/edgespool/journal.db"|' \
      config.example.toml >"$root/etc/edgespool/config.toml"
  grep -qx 'socket = "/run/edgespool/edgespool.sock"' "$root/etc/edgespool/config.toml" &&
    grep -qx 'path = "/var/lib/edgespool/journal.db"' "$root/etc/edgespool/config.toml" ||
    die "config.example.toml no longer has [producer] socket / [store] path lines"
  install -m 0644 platform/systemd/edgespool.service "$root/lib/systemd/system/"
  install -m 0644 platform/debian/copyright config.example.toml README.md \
    "$root/usr/share/doc/edgespool/"
  install -m 0644 platform/debian/conffiles "$root/DEBIAN/"
  install -m 0755 platform/debian/postinst platform/debian/prerm platform/debian/postrm \
    "$root/DEBIAN/"
  local depends
  depends="$(shlib_depends "$arch" "$bin")"
  # One package per NEEDED library (libc.so.6 -> libc6, libuv.so.1 -> libuv1;
  # libm, libdl, libpthread and librt are libc6's too): fewer means
  # dpkg-shlibdeps found no information for one of them.
  local needed ndeps
  needed="$("$objdump" -p "$bin" | awk '$1 == "NEEDED" {print $2}' |
    grep -cvE '^lib(m|dl|pthread|rt)\.so\.')"
  ndeps="$(tr ',' '\n' <<<"$depends" | grep -c .)"
  [ "$ndeps" -ge "$needed" ] ||
    die "$arch: Depends ($depends) covers $ndeps of $needed NEEDED libraries"
  # libwebsockets loads its libuv event loop as a plugin (dlopen, so no
  # NEEDED entry names it): the WebSocket listener needs the package.
  depends="$depends, adduser, libwebsockets-evlib-uv"
  local size
  size="$(du -sk --exclude=DEBIAN "$root" | cut -f1)"
  sed -e "s|@VERSION@|$VERSION|" -e "s|@ARCH@|$arch|" -e "s|@DEPENDS@|$depends|" \
      -e "s|@INSTALLED_SIZE@|$size|" platform/debian/control.in >"$root/DEBIAN/control"
  local deb="$OUT/edgespool_${VERSION}_${arch}.deb"
  # --root-owner-group: root:root in the archive whoever builds it.
  dpkg-deb --root-owner-group --build -Zxz "$root" "$deb" >/dev/null
  rm -rf "$root"
  log "$deb ($(stat -c %s "$deb") bytes): Depends: $depends"
}

for arch in "${ARCHES[@]}"; do
  start=$SECONDS
  if [ -n "$BUILD_DIR" ]; then build="$BUILD_DIR"; else build="$(build_arch "$arch")"; fi
  package_arch "$arch" "$build"
  log "$arch packaged in $((SECONDS - start)) s"
done
ls -l "$OUT"/*.deb
