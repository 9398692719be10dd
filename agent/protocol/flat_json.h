// A fast path for the JSON headers the producer protocol carries on its hot
// path: a publish request and its reply are flat objects of short strings and
// integers, one per message on both sides of the socket.
//
// FlatObject scans exactly that shape without building a tree: it accepts an
// object whose keys and string values contain no backslash and no byte below
// 0x20, whose numbers are integers of at most 15 digits (exact in a double),
// and whose values are never objects or arrays. Anything else (escapes,
// fractions, nested objects such as a publish's "headers", trailing bytes,
// more than kMaxFields members) makes Scan() return false, and the caller
// parses the header with cJSON instead, which decides whether it is JSON at
// all. So the fast path never accepts a header that cJSON would read
// differently: for what it accepts, Find() returns what
// cJSON_GetObjectItemCaseSensitive would (the first member of that name).
// The equivalence is checked by tests/unit/agent/protocol_flat_json_test.cc
// and by the producer_frame fuzzer, which parses every header both ways.
//
// JsonValue is also how request.cc and reply.cc read a cJSON tree, so one
// validation routine serves both paths.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

struct cJSON;

namespace edgespool::protocol {

struct JsonValue {
  enum class Type : uint8_t { kString, kNumber, kTrue, kFalse, kNull, kObject, kArray };
  Type type = Type::kNull;
  std::string_view text;          // kString: the unescaped bytes
  double number = 0;              // kNumber
  const cJSON* object = nullptr;  // kObject/kArray, cJSON path only

  bool is_string() const { return type == Type::kString; }
  bool is_number() const { return type == Type::kNumber; }
};

class FlatObject {
 public:
  static constexpr size_t kMaxFields = 16;

  // True if json is a flat object as described above; the values then point
  // into json, which must outlive this object.
  bool Scan(std::string_view json);
  // The first member named key.
  std::optional<JsonValue> Find(std::string_view key) const;

 private:
  struct Field {
    std::string_view key;
    JsonValue value;
  };
  Field fields_[kMaxFields];
  size_t count_ = 0;
};

// The same lookup over a parsed cJSON object (the slow path).
class CjsonObject {
 public:
  explicit CjsonObject(const cJSON* object) : object_(object) {}
  std::optional<JsonValue> Find(std::string_view key) const;

 private:
  const cJSON* object_;
};

}  // namespace edgespool::protocol
