# Cross build for 32-bit ARMv7 hard-float gateways with Debian's
# g++-arm-linux-gnueabihf; tests run under qemu-arm. See debian-cross.cmake and
# docs/firmware.md.
set(EDGESPOOL_TRIPLE arm-linux-gnueabihf)
set(EDGESPOOL_PROCESSOR armv7l)
set(EDGESPOOL_QEMU qemu-arm)
# GCC notes on every std::vector/std::map of a struct that their argument
# passing "changed in GCC 7.1" on ARM: it concerns linking with objects built
# by GCC < 7.1, which no edgespool build does.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
