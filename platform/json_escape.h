// The project's one JSON string escaper: log lines (platform/log.cc), protocol
// replies (agent/protocol/json_writer.cc) and rendered TOML config values
// (agent/config/value.cc) all go through it, so that a fix to escaping lands
// everywhere at once.
//
// Output: '"', then the input with '"' -> \", '\' -> \\, LF -> \n, CR -> \r,
// TAB -> \t, every other byte below 0x20 and DEL (0x7f) -> \u00XX (lower-case
// hex), then '"'. Bytes >= 0x80 are copied as they are: callers pass UTF-8.
// Escaping DEL is optional in JSON but required in a TOML basic string, so the
// same literal is valid in both.
#pragma once

#include <string>
#include <string_view>

namespace edgespool::platform {

// Appends s to *out as a quoted string literal (format above).
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace edgespool::platform
