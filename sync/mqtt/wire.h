// MQTT's primitive data types (spec 1.5): big-endian integers, Variable Byte
// Integers, length-prefixed UTF-8 strings and binary data. The Reader never
// reads past its input: every getter checks the remaining length first and
// fails with a reason instead.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "platform/status.h"

namespace edgespool::sync::mqtt {

// The largest value a Variable Byte Integer can hold (4 bytes).
inline constexpr uint32_t kMaxVarInt = 268435455;

// True for well-formed UTF-8 that MQTT allows: no overlong forms, no
// surrogates (U+D800..U+DFFF), nothing past U+10FFFF and no U+0000.
bool IsValidMqttUtf8(std::string_view s);
// A topic name a PUBLISH may carry: valid UTF-8, 1..65535 bytes, no wildcard.
bool IsValidTopicName(std::string_view topic);
// A subscription filter: '#' only last and alone in its level, '+' alone.
bool IsValidTopicFilter(std::string_view filter);

size_t VarIntSize(uint32_t value);
void PutVarInt(uint32_t value, std::string* out);
void PutU8(uint8_t v, std::string* out);
void PutU16(uint16_t v, std::string* out);
void PutU32(uint32_t v, std::string* out);
// u16 length + bytes. The caller guarantees s.size() <= 65535.
void PutString(std::string_view s, std::string* out);

// Decodes a Variable Byte Integer from data[0..len). Returns the number of
// bytes used, 0 if more bytes are needed, or -1 if it is malformed (a fifth
// byte, or a non-minimal encoding).
int ParseVarInt(const uint8_t* data, size_t len, uint32_t* value);

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  Status U8(uint8_t* v, const char* what);
  Status U16(uint16_t* v, const char* what);
  Status U32(uint32_t* v, const char* what);
  Status VarInt(uint32_t* v, const char* what);
  Status Utf8(std::string_view* v, const char* what);
  Status Binary(std::string_view* v, const char* what);
  // n bytes, raw.
  Status Bytes(size_t n, std::string_view* v, const char* what);
  std::string_view rest() const { return in_; }
  size_t remaining() const { return in_.size(); }
  bool empty() const { return in_.empty(); }
  void Skip(size_t n) { in_.remove_prefix(n); }

 private:
  std::string_view in_;
};

// "malformed packet: <what> ..." as a kProtocolError.
Status Malformed(std::string_view what);

}  // namespace edgespool::sync::mqtt
