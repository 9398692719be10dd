#include "agent/config/units.h"

#include <cctype>

namespace edgespool::agent {

namespace {

// Splits "30s" into "30" and "s".
void SplitNumberUnit(const std::string& text, std::string* digits, std::string* unit) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  *digits = text.substr(0, i);
  *unit = text.substr(i);
}

}  // namespace

bool ParseDurationMs(const std::string& text, int64_t* out, std::string* why) {
  std::string digits, unit;
  SplitNumberUnit(text, &digits, &unit);
  if (digits.empty() || digits.size() > 12) {
    *why = "\"" + text + "\" is not a duration (expected e.g. 250ms, 30s, 5m, 1h, 1d)";
    return false;
  }
  int64_t n = std::stoll(digits);
  int64_t mult;
  if (unit == "ms") {
    mult = 1;
  } else if (unit == "s") {
    mult = 1000;
  } else if (unit == "m") {
    mult = 60000;
  } else if (unit == "h") {
    mult = 3600000;
  } else if (unit == "d") {
    mult = 86400000;
  } else {
    *why = "\"" + text + "\" has " + (unit.empty() ? "no unit" : "unknown unit \"" + unit + "\"") +
           " (use ms, s, m, h or d)";
    return false;
  }
  if (n > INT64_MAX / mult) {  // "999999999999d" would overflow
    *why = "\"" + text + "\" is too large";
    return false;
  }
  *out = n * mult;
  return true;
}

bool ParseSizeBytes(const std::string& text, int64_t* out, std::string* why) {
  std::string digits, unit;
  SplitNumberUnit(text, &digits, &unit);
  if (digits.empty() || digits.size() > 15) {
    *why = "\"" + text + "\" is not a size (expected e.g. 512KiB, 256MiB, 1GiB or bytes)";
    return false;
  }
  int64_t n = std::stoll(digits);
  int64_t mult;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "KiB") {
    mult = int64_t{1} << 10;
  } else if (unit == "MiB") {
    mult = int64_t{1} << 20;
  } else if (unit == "GiB") {
    mult = int64_t{1} << 30;
  } else {
    *why = "\"" + text + "\" has unknown unit \"" + unit + "\" (use B, KiB, MiB or GiB)";
    return false;
  }
  if (n > INT64_MAX / mult) {
    *why = "\"" + text + "\" is too large";
    return false;
  }
  *out = n * mult;
  return true;
}

std::string FormatDurationMs(int64_t ms) {
  if (ms != 0 && ms % 86400000 == 0) return std::to_string(ms / 86400000) + "d";
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string FormatSizeBytes(int64_t b) {
  if (b != 0 && b % (int64_t{1} << 30) == 0) return std::to_string(b >> 30) + "GiB";
  if (b != 0 && b % (int64_t{1} << 20) == 0) return std::to_string(b >> 20) + "MiB";
  if (b != 0 && b % (int64_t{1} << 10) == 0) return std::to_string(b >> 10) + "KiB";
  return std::to_string(b);
}

}  // namespace edgespool::agent
