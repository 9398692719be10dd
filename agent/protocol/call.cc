#include "agent/protocol/call.h"

#include <cjson/cJSON.h>

#include <cmath>
#include <memory>
#include <optional>

#include "agent/protocol/flat_json.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/json_writer.h"

namespace edgespool::protocol {

namespace {

struct CjsonDeleter {
  void operator()(cJSON* j) const { cJSON_Delete(j); }
};
using JsonPtr = std::unique_ptr<cJSON, CjsonDeleter>;

bool Fail(std::string* error, std::string why) {
  *error = std::move(why);
  return false;
}

bool GetInteger(const std::optional<JsonValue>& item, int64_t lo, int64_t hi, int64_t* out) {
  if (!item || !item->is_number()) return false;
  double d = item->number;
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(lo) ||
      d > static_cast<double>(hi)) {
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

template <typename Src>
bool IsCall(const Src& root) {
  auto op = root.Find("op");
  return op && op->is_string() && op->text == "call";
}

template <typename Src>
bool ParseFields(const Src& root, MethodCall* c, std::string* error) {
  if (!IsCall(root)) return Fail(error, "not a call frame");
  int64_t v;
  if (!GetInteger(root.Find("call"), 1, kMaxReq, &v)) return Fail(error, "call has no id");
  c->call = static_cast<uint64_t>(v);
  auto method = root.Find("method");
  if (!method || !method->is_string()) return Fail(error, "call has no method");
  c->method.assign(method->text.data(), method->text.size());
  if (!GetInteger(root.Find("timeout_ms"), 0, kMaxRequestTimeoutMs, &c->timeout_ms)) {
    return Fail(error, "call has no timeout_ms");
  }
  if (auto h = root.Find("headers")) {
    if (h->type != JsonValue::Type::kObject || h->object == nullptr) {
      return Fail(error, "call headers malformed");
    }
    for (const cJSON* kv = h->object->child; kv != nullptr; kv = kv->next) {
      if (!cJSON_IsString(kv) || kv->valuestring == nullptr || kv->string == nullptr) {
        return Fail(error, "call headers malformed");
      }
      c->headers.emplace_back(kv->string, kv->valuestring);
    }
  }
  return true;
}

// As message.cc: a NUL would cut a string short in cJSON unnoticed.
bool ParseTree(std::string_view header, JsonPtr* root, std::string* error) {
  if (header.find('\0') != std::string_view::npos ||
      header.find("\\u0000") != std::string_view::npos) {
    return Fail(error, "NUL in a call header");
  }
  root->reset(cJSON_ParseWithLength(header.data(), header.size()));
  if (!*root || !cJSON_IsObject(root->get())) return Fail(error, "header is not a JSON object");
  return true;
}

}  // namespace

void AppendCallFrame(std::string* out, const MethodCall& c, std::string_view payload) {
  size_t start = BeginFrame(out);
  JsonObjectWriter w(out);
  w.Str("op", "call").Uint("call", c.call).Str("method", c.method).Int("timeout_ms", c.timeout_ms);
  if (!c.headers.empty()) {
    JsonObjectWriter h;
    for (const auto& [k, v] : c.headers) h.Str(k, v);
    w.Raw("headers", std::move(h).Finish());
  }
  w.Close();
  EndFrame(out, start, payload);
}

bool IsCallFrame(std::string_view header) {
  FlatObject flat;
  if (flat.Scan(header)) return IsCall(flat);
  JsonPtr root;
  std::string ignored;
  return ParseTree(header, &root, &ignored) && IsCall(CjsonObject(root.get()));
}

bool ParseCall(std::string_view header, MethodCall* out, std::string* error) {
  *out = MethodCall{};
  FlatObject flat;
  if (flat.Scan(header)) return ParseFields(flat, out, error);
  JsonPtr root;
  if (!ParseTree(header, &root, error)) return false;
  return ParseFields(CjsonObject(root.get()), out, error);
}

}  // namespace edgespool::protocol
