// The units of config values: durations ("250ms", "30s", "5m", "1h", "1d")
// and sizes ("512KiB", "256MiB", "1GiB", "123", "123B"). Parsing is strict:
// an integer and one unit, no spaces, no fractions, no decimal SI units ("MB"
// would be ambiguous next to "MiB"). Formatting picks the largest unit that
// divides the value, so a parsed value renders back to the same text.
#pragma once

#include <cstdint>
#include <string>

namespace edgespool::agent {

// Return false with a reason ("\"30\" has no unit (use ms, s, m, h or d)").
bool ParseDurationMs(const std::string& text, int64_t* out, std::string* why);
bool ParseSizeBytes(const std::string& text, int64_t* out, std::string* why);
std::string FormatDurationMs(int64_t ms);
std::string FormatSizeBytes(int64_t bytes);

}  // namespace edgespool::agent
