# Cross build for 32-bit ARMv7 hard-float gateways with Debian's
# g++-arm-linux-gnueabihf; tests run under qemu-arm. See debian-cross.cmake and
# docs/firmware.md.
set(EDGESPOOL_TRIPLE arm-linux-gnueabihf)
set(EDGESPOOL_PROCESSOR armv7l)
set(EDGESPOOL_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
