# Shared body of the Debian cross toolchain files (aarch64-linux-gnu.cmake,
# arm-linux-gnueabihf.cmake). The including file sets EDGESPOOL_TRIPLE,
# EDGESPOOL_PROCESSOR and EDGESPOOL_QEMU, then includes this.
#
# Compilers: Debian's g++-<triple>. Their libc and libstdc++ live in
# /usr/<triple> (libc6-dev-<arch>-cross), outside any sysroot, and they
# already search /usr/include/<triple>, /usr/include and /usr/lib/<triple>.
#
# The target's third-party libraries come one of two ways:
#  - multiarch (default): `dpkg --add-architecture arm64` and the :arm64 -dev
#    packages put them in /usr/lib/<triple>, where the compiler looks anyway.
#  - a library sysroot: EDGESPOOL_SYSROOT (cache variable or environment)
#    names a directory holding the target's -dev packages unpacked with
#    `dpkg -x` (platform/cross.sh builds one when the multiarch index can't be
#    downloaded). Only the libraries come from there; the compiler keeps its
#    own libc. CMAKE_SYSROOT is deliberately not set: --sysroot would hide
#    the compiler's /usr/<triple> libc and libstdc++ from it.
#
# Either way pkg-config sees only the target's .pc files (PKG_CONFIG_LIBDIR
# replaces, not extends, the default search path), find_library/find_path/
# find_package look in the target's multiarch dirs (CMAKE_LIBRARY_ARCHITECTURE),
# and tests run under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR: this
# machine has no binfmt_misc, so the emulator is always named explicitly.

set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${EDGESPOOL_PROCESSOR})
set(CMAKE_C_COMPILER ${EDGESPOOL_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${EDGESPOOL_TRIPLE}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${EDGESPOOL_TRIPLE})

# try_compile re-reads this file in a fresh scope: pass the sysroot through
# the environment, which that scope shares.
if(DEFINED EDGESPOOL_SYSROOT AND NOT EDGESPOOL_SYSROOT STREQUAL "")
  set(ENV{EDGESPOOL_SYSROOT} "${EDGESPOOL_SYSROOT}")
elseif(DEFINED ENV{EDGESPOOL_SYSROOT} AND NOT "$ENV{EDGESPOOL_SYSROOT}" STREQUAL "")
  set(EDGESPOOL_SYSROOT "$ENV{EDGESPOOL_SYSROOT}" CACHE PATH
      "Directory with the target's -dev packages unpacked (empty: multiarch)")
endif()

if(EDGESPOOL_SYSROOT)
  set(_es_root "${EDGESPOOL_SYSROOT}")
  set(_es_libdirs "${_es_root}/usr/lib/${EDGESPOOL_TRIPLE}" "${_es_root}/lib/${EDGESPOOL_TRIPLE}")
  # Searched before the compiler's own /usr/include, so the target's headers
  # win over the build machine's copies of the same packages.
  set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES
      "${_es_root}/usr/include/${EDGESPOOL_TRIPLE}" "${_es_root}/usr/include")
  set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES ${CMAKE_C_STANDARD_INCLUDE_DIRECTORIES})
  # -rpath-link: the linker must find what the sysroot's libraries need in turn
  # (libmbedtls -> libmbedx509 -> libmbedcrypto).
  set(_es_ldflags "")
  foreach(_d IN LISTS _es_libdirs)
    string(APPEND _es_ldflags " -L${_d} -Wl,-rpath-link,${_d}")
  endforeach()
  set(CMAKE_EXE_LINKER_FLAGS_INIT "${_es_ldflags}")
  set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_es_ldflags}")
  set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_es_ldflags}")
  set(CMAKE_FIND_ROOT_PATH "${_es_root}")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_es_root}")
  set(ENV{PKG_CONFIG_LIBDIR}
      "${_es_root}/usr/lib/${EDGESPOOL_TRIPLE}/pkgconfig:${_es_root}/usr/share/pkgconfig")
  list(JOIN _es_libdirs ":" _es_ld_path)
  # The loader, libc and libstdc++ are the cross toolchain's (/usr/<triple>);
  # the sysroot adds the third-party libraries.
  set(_es_qemu_args -L "/usr/${EDGESPOOL_TRIPLE}" -E "LD_LIBRARY_PATH=${_es_ld_path}")
else()
  # Multiarch: the target's libraries are in the build machine's own tree.
  set(CMAKE_FIND_ROOT_PATH "/usr/${EDGESPOOL_TRIPLE}" "/")
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "")
  set(ENV{PKG_CONFIG_LIBDIR}
      "/usr/lib/${EDGESPOOL_TRIPLE}/pkgconfig:/usr/share/pkgconfig")
  # No -L: the target's own loader and libc (libc6:<arch>) are installed in
  # /lib/<triple> beside the libraries. -L /usr/<triple> would pair the cross
  # toolchain's ld.so (libc6-<arch>-cross, 2.36-8cross1 here) with the
  # multiarch libc.so.6 (2.36-9+deb12u14) that ld.so.cache points at; the two
  # don't match and the first pthread_create hangs (measured: qemu-aarch64).
  set(_es_qemu_args "")
endif()
# Programs (pkg-config, qemu, ninja) are the build machine's; everything else
# is the target's. Host libraries in /usr/lib/x86_64-linux-gnu are never in a
# search path, as CMAKE_LIBRARY_ARCHITECTURE names the target's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
set(PKG_CONFIG_EXECUTABLE pkg-config CACHE FILEPATH "pkg-config of the build machine")

# qemu-user runs the tests (arguments above). Without qemu the project still
# configures and builds.
find_program(EDGESPOOL_QEMU_PROGRAM ${EDGESPOOL_QEMU})
if(EDGESPOOL_QEMU_PROGRAM)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${EDGESPOOL_QEMU_PROGRAM}" ${_es_qemu_args})
endif()
