#include "agent/protocol/json_writer.h"

#include <charconv>

#include "platform/json_escape.h"

namespace edgespool::protocol {

void JsonObjectWriter::Key(std::string_view key) {
  if (!first_) out_->push_back(',');
  first_ = false;
  platform::AppendJsonString(out_, key);
  out_->push_back(':');
}

JsonObjectWriter& JsonObjectWriter::Int(std::string_view key, int64_t v) {
  Key(key);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_->append(buf, static_cast<size_t>(r.ptr - buf));
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Uint(std::string_view key, uint64_t v) {
  Key(key);
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out_->append(buf, static_cast<size_t>(r.ptr - buf));
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Bool(std::string_view key, bool v) {
  Key(key);
  *out_ += v ? "true" : "false";
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Str(std::string_view key, std::string_view v) {
  Key(key);
  platform::AppendJsonString(out_, v);
  return *this;
}

JsonObjectWriter& JsonObjectWriter::Raw(std::string_view key, std::string_view json) {
  Key(key);
  out_->append(json.data(), json.size());
  return *this;
}

std::string JsonObjectWriter::Finish() {
  own_.push_back('}');
  return std::move(own_);
}

}  // namespace edgespool::protocol
