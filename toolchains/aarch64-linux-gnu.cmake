# Cross build for 64-bit ARM gateways with Debian's g++-aarch64-linux-gnu;
# tests run under qemu-aarch64. See debian-cross.cmake and docs/firmware.md.
set(EDGESPOOL_TRIPLE aarch64-linux-gnu)
set(EDGESPOOL_PROCESSOR aarch64)
set(EDGESPOOL_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
