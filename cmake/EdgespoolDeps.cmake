# Finds every third-party dependency once, as imported targets, through
# pkg-config where Debian ships a .pc file (this also works for cross builds
# with PKG_CONFIG_LIBDIR pointed at the target's multiarch dir).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET sqlite3)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
# The WebSocket listener (agent/websocket/). It runs on our libuv loop through
# libwebsockets' libuv event-lib plugin, loaded at run time: package
# libwebsockets-evlib-uv must be installed beside libwebsockets17.
pkg_check_modules(LWS REQUIRED IMPORTED_TARGET libwebsockets)
# Debian 12's mbedTLS 2.28 ships neither a .pc file nor a CMake config.
find_package(MbedTLS REQUIRED)
