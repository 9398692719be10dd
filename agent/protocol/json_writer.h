// A tiny append-only JSON object writer for protocol headers. Replies are
// built on the hot path (one per publish), so they are appended to a string
// directly instead of going through a cJSON tree. Strings are escaped by the
// project's one escaper, platform/json_escape.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace edgespool::protocol {

class JsonObjectWriter {
 public:
  JsonObjectWriter() : out_(&own_) { own_.push_back('{'); }
  // Appends to *out instead (a frame being built), closed by Close(): no
  // intermediate string per header on the hot path.
  explicit JsonObjectWriter(std::string* out) : out_(out) { out_->push_back('{'); }
  JsonObjectWriter(const JsonObjectWriter&) = delete;
  JsonObjectWriter& operator=(const JsonObjectWriter&) = delete;
  JsonObjectWriter& Int(std::string_view key, int64_t v);
  JsonObjectWriter& Uint(std::string_view key, uint64_t v);
  JsonObjectWriter& Bool(std::string_view key, bool v);
  JsonObjectWriter& Str(std::string_view key, std::string_view v);
  // A value that is already JSON text (an object, an array...).
  JsonObjectWriter& Raw(std::string_view key, std::string_view json);
  // Closes the object and moves the text out (the writer is then spent), so
  // that a chain `JsonObjectWriter().Str(..).Int(..).Finish()` works.
  std::string Finish();
  // Closes the object in the caller's string (the second constructor).
  void Close() { out_->push_back('}'); }

 private:
  void Key(std::string_view key);
  std::string own_;
  std::string* out_;
  bool first_ = true;
};

}  // namespace edgespool::protocol
