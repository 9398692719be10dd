# Cross build for 32-bit ARMv7 hard-float gateways with Debian's
# g++-arm-linux-gnueabihf; tests run under qemu-arm. See debian-cross.cmake and
# docs/firmware.md.
set(EDGESPOOL_TRIPLE arm-linux-gnueabihf)
set(EDGESPOOL_PROCESSOR armv7l)
set(EDGESPOOL_QEMU qemu-arm)
# GCC notes on every std::vector/std::map of a struct that their argument
# passing "changed in GCC 7.1" on ARM: it concerns linking with objects built
# by GCC < 7.1, which no edgespool build does.
#
# _FILE_OFFSET_BITS=64: 64-bit off_t/ino_t on a 32-bit target, as Buildroot
# and Yocto build by default. A journal may pass 2 GiB, and without it
# readdir() fails with EOVERFLOW whenever the kernel hands out 64-bit
# directory cookies (always under qemu-arm on a 64-bit host's ext4).
set(CMAKE_C_FLAGS_INIT "-D_FILE_OFFSET_BITS=64")
set(CMAKE_CXX_FLAGS_INIT "-D_FILE_OFFSET_BITS=64 -Wno-psabi")
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
