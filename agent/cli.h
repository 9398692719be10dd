// The command line: `edgespool <command> [options]`. Exit codes follow
// sysexits where one fits (64 usage, 65 bad data, 69 unavailable, 78 config).
#pragma once

namespace edgespool::agent {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;
inline constexpr int kExitDataErr = 65;
inline constexpr int kExitUnavailable = 69;
inline constexpr int kExitSoftware = 70;
inline constexpr int kExitCantCreate = 73;
inline constexpr int kExitConfig = 78;

int CliMain(int argc, char** argv);

}  // namespace edgespool::agent
