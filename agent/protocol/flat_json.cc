#include "agent/protocol/flat_json.h"

#include <cjson/cJSON.h>

namespace edgespool::protocol {

namespace {

// cJSON skips every byte <= 0x20 between tokens; so do we, except NUL,
// which the request parser refuses anywhere (left to the slow path).
size_t SkipSpace(std::string_view s, size_t i) {
  while (i < s.size() && static_cast<unsigned char>(s[i]) <= 0x20 && s[i] != '\0') ++i;
  return i;
}

// A string token at s[i] == '"' without escapes or control bytes; *end is
// the index after the closing quote.
bool ScanString(std::string_view s, size_t i, std::string_view* out, size_t* end) {
  if (i >= s.size() || s[i] != '"') return false;
  size_t start = ++i;
  for (; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"') {
      *out = s.substr(start, i - start);
      *end = i + 1;
      return true;
    }
    if (c == '\\' || c < 0x20) return false;
  }
  return false;
}

// -?[0-9]{1,15}: exact as a double, and read by cJSON's strtod the same way.
bool ScanInteger(std::string_view s, size_t i, double* out, size_t* end) {
  bool negative = i < s.size() && s[i] == '-';
  if (negative) ++i;
  size_t start = i;
  int64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - start < 16) {
    v = v * 10 + (s[i] - '0');
    ++i;
  }
  size_t digits = i - start;
  if (digits == 0 || digits > 15) return false;
  // A fraction or exponent follows: leave it to cJSON.
  if (i < s.size() && (s[i] == '.' || s[i] == 'e' || s[i] == 'E')) return false;
  *out = negative ? -static_cast<double>(v) : static_cast<double>(v);
  *end = i;
  return true;
}

bool ScanLiteral(std::string_view s, size_t i, std::string_view word, size_t* end) {
  if (s.substr(i, word.size()) != word) return false;
  *end = i + word.size();
  return true;
}

}  // namespace

bool FlatObject::Scan(std::string_view s) {
  count_ = 0;
  size_t i = SkipSpace(s, 0);
  if (i >= s.size() || s[i] != '{') return false;
  i = SkipSpace(s, i + 1);
  if (i < s.size() && s[i] == '}') return SkipSpace(s, i + 1) == s.size();
  while (true) {
    if (count_ == kMaxFields) return false;
    Field& f = fields_[count_];
    if (!ScanString(s, i, &f.key, &i)) return false;
    i = SkipSpace(s, i);
    if (i >= s.size() || s[i] != ':') return false;
    i = SkipSpace(s, i + 1);
    if (i >= s.size()) return false;
    JsonValue& v = f.value;
    v = JsonValue{};
    char c = s[i];
    bool ok = false;
    if (c == '"') {
      v.type = JsonValue::Type::kString;
      ok = ScanString(s, i, &v.text, &i);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.type = JsonValue::Type::kNumber;
      ok = ScanInteger(s, i, &v.number, &i);
    } else if (c == 't') {
      v.type = JsonValue::Type::kTrue;
      ok = ScanLiteral(s, i, "true", &i);
    } else if (c == 'f') {
      v.type = JsonValue::Type::kFalse;
      ok = ScanLiteral(s, i, "false", &i);
    } else if (c == 'n') {
      v.type = JsonValue::Type::kNull;
      ok = ScanLiteral(s, i, "null", &i);
    }
    if (!ok) return false;  // objects, arrays, fractions...: cJSON's job
    ++count_;
    i = SkipSpace(s, i);
    if (i >= s.size()) return false;
    if (s[i] == '}') return SkipSpace(s, i + 1) == s.size();
    if (s[i] != ',') return false;
    i = SkipSpace(s, i + 1);
  }
}

std::optional<JsonValue> FlatObject::Find(std::string_view key) const {
  for (size_t i = 0; i < count_; ++i) {
    if (fields_[i].key == key) return fields_[i].value;
  }
  return std::nullopt;
}

std::optional<JsonValue> CjsonObject::Find(std::string_view key) const {
  const cJSON* item = nullptr;
  for (const cJSON* c = object_ ? object_->child : nullptr; c != nullptr; c = c->next) {
    if (c->string != nullptr && key == c->string) {
      item = c;
      break;
    }
  }
  if (item == nullptr) return std::nullopt;
  JsonValue v;
  if (cJSON_IsString(item)) {
    // A string whose text cJSON could not produce has no value: treated as
    // a non-string, as cJSON_IsString && valuestring would be.
    if (item->valuestring == nullptr) {
      v.type = JsonValue::Type::kNull;
    } else {
      v.type = JsonValue::Type::kString;
      v.text = item->valuestring;
    }
  } else if (cJSON_IsNumber(item)) {
    v.type = JsonValue::Type::kNumber;
    v.number = item->valuedouble;
  } else if (cJSON_IsTrue(item)) {
    v.type = JsonValue::Type::kTrue;
  } else if (cJSON_IsFalse(item)) {
    v.type = JsonValue::Type::kFalse;
  } else if (cJSON_IsObject(item)) {
    v.type = JsonValue::Type::kObject;
    v.object = item;
  } else if (cJSON_IsArray(item)) {
    v.type = JsonValue::Type::kArray;
    v.object = item;
  } else {
    v.type = JsonValue::Type::kNull;  // null, or a raw/invalid item
  }
  return v;
}

}  // namespace edgespool::protocol
