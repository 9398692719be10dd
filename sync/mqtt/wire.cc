#include "sync/mqtt/wire.h"

#include <string>

namespace edgespool::sync::mqtt {

namespace {
bool IsCont(uint8_t c) { return (c & 0xC0) == 0x80; }
}  // namespace

bool IsValidMqttUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t* end = p + s.size();
  while (p < end) {
    uint8_t c = *p;
    if (c < 0x80) {
      if (c == 0) return false;  // U+0000 is forbidden in MQTT strings [MQTT-1.5.4-2]
      ++p;
      continue;
    }
    size_t left = static_cast<size_t>(end - p);
    if (c >= 0xC2 && c <= 0xDF) {
      if (left < 2 || !IsCont(p[1])) return false;
      p += 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      if (left < 3 || !IsCont(p[1]) || !IsCont(p[2])) return false;
      if (c == 0xE0 && p[1] < 0xA0) return false;   // overlong
      if (c == 0xED && p[1] > 0x9F) return false;   // surrogates U+D800..U+DFFF
      p += 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      if (left < 4 || !IsCont(p[1]) || !IsCont(p[2]) || !IsCont(p[3])) return false;
      if (c == 0xF0 && p[1] < 0x90) return false;   // overlong
      if (c == 0xF4 && p[1] > 0x8F) return false;   // past U+10FFFF
      p += 4;
    } else {
      return false;  // continuation byte first, 0xC0/0xC1 overlong, 0xF5+
    }
  }
  return true;
}

bool IsValidTopicName(std::string_view topic) {
  if (topic.empty() || topic.size() > 65535) return false;
  if (topic.find_first_of("+#") != std::string_view::npos) return false;
  return IsValidMqttUtf8(topic);
}

bool IsValidTopicFilter(std::string_view filter) {
  if (filter.empty() || filter.size() > 65535 || !IsValidMqttUtf8(filter)) return false;
  for (size_t i = 0; i < filter.size(); ++i) {
    char c = filter[i];
    if (c != '+' && c != '#') continue;
    bool level_start = i == 0 || filter[i - 1] == '/';
    bool level_end = i + 1 == filter.size() || filter[i + 1] == '/';
    if (!level_start || !level_end) return false;
    if (c == '#' && i + 1 != filter.size()) return false;
  }
  return true;
}

size_t VarIntSize(uint32_t value) {
  if (value < 128) return 1;
  if (value < 16384) return 2;
  if (value < 2097152) return 3;
  return 4;
}

void PutVarInt(uint32_t value, std::string* out) {
  do {
    uint8_t b = value % 128;
    value /= 128;
    if (value > 0) b |= 0x80;
    out->push_back(static_cast<char>(b));
  } while (value > 0);
}

void PutU8(uint8_t v, std::string* out) { out->push_back(static_cast<char>(v)); }

void PutU16(uint16_t v, std::string* out) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v & 0xFF));
}

void PutU32(uint32_t v, std::string* out) {
  PutU16(static_cast<uint16_t>(v >> 16), out);
  PutU16(static_cast<uint16_t>(v & 0xFFFF), out);
}

void PutString(std::string_view s, std::string* out) {
  PutU16(static_cast<uint16_t>(s.size()), out);
  out->append(s.data(), s.size());
}

int ParseVarInt(const uint8_t* data, size_t len, uint32_t* value) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (i >= len) return 0;
    uint8_t b = data[i];
    v |= static_cast<uint32_t>(b & 0x7F) << (7 * i);
    if ((b & 0x80) == 0) {
      // A last byte of 0 after a continuation means a longer encoding than
      // needed [MQTT-1.5.5-1]; accepting it would let 0x80 0x80 0x80 0x00
      // alias 0 and hide garbage.
      if (i > 0 && b == 0) return -1;
      *value = v;
      return static_cast<int>(i + 1);
    }
  }
  return -1;  // a fifth byte would be needed
}

Status Malformed(std::string_view what) {
  std::string m = "malformed packet: ";
  m.append(what);
  return Status::ProtocolError(m);
}

namespace {
Status Short(const char* what) { return Malformed(std::string(what) + " runs past the packet"); }
}  // namespace

Status Reader::U8(uint8_t* v, const char* what) {
  if (in_.size() < 1) return Short(what);
  *v = static_cast<uint8_t>(in_[0]);
  in_.remove_prefix(1);
  return Status::Ok();
}

Status Reader::U16(uint16_t* v, const char* what) {
  if (in_.size() < 2) return Short(what);
  const auto* p = reinterpret_cast<const uint8_t*>(in_.data());
  *v = static_cast<uint16_t>((p[0] << 8) | p[1]);
  in_.remove_prefix(2);
  return Status::Ok();
}

Status Reader::U32(uint32_t* v, const char* what) {
  if (in_.size() < 4) return Short(what);
  const auto* p = reinterpret_cast<const uint8_t*>(in_.data());
  *v = (static_cast<uint32_t>(p[0]) << 24) | (static_cast<uint32_t>(p[1]) << 16) |
       (static_cast<uint32_t>(p[2]) << 8) | p[3];
  in_.remove_prefix(4);
  return Status::Ok();
}

Status Reader::VarInt(uint32_t* v, const char* what) {
  int n = ParseVarInt(reinterpret_cast<const uint8_t*>(in_.data()), in_.size(), v);
  if (n == 0) return Short(what);
  if (n < 0) return Malformed(std::string("variable byte integer ") + what + " is over 4 bytes or not minimal");
  in_.remove_prefix(static_cast<size_t>(n));
  return Status::Ok();
}

Status Reader::Binary(std::string_view* v, const char* what) {
  uint16_t len = 0;
  ES_RETURN_IF_ERROR(U16(&len, what));
  return Bytes(len, v, what);
}

Status Reader::Utf8(std::string_view* v, const char* what) {
  ES_RETURN_IF_ERROR(Binary(v, what));
  if (!IsValidMqttUtf8(*v)) return Malformed(std::string(what) + " is not valid UTF-8");
  return Status::Ok();
}

Status Reader::Bytes(size_t n, std::string_view* v, const char* what) {
  if (in_.size() < n) return Short(what);
  *v = in_.substr(0, n);
  in_.remove_prefix(n);
  return Status::Ok();
}

}  // namespace edgespool::sync::mqtt
