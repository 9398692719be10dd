// Hand-built MQTT bytes for tests that talk to a broker without our codec
// (transport, interop and benchmark harnesses): an independent encoding, so
// a codec bug cannot hide behind itself.
#pragma once

#include <cstddef>
#include <string>

namespace edgespool::testing {

// MQTT variable byte integer (the Remaining Length field).
inline std::string RemainingLength(size_t n) {
  std::string out;
  do {
    char b = static_cast<char>(n % 128);
    n /= 128;
    if (n > 0) b = static_cast<char>(b | 0x80);
    out.push_back(b);
  } while (n > 0);
  return out;
}

// MQTT UTF-8 string: u16 big-endian length, then the bytes.
inline std::string Utf8(const std::string& s) {
  return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xff)} + s;
}

}  // namespace edgespool::testing
