#include "agent/protocol/call.h"

#include "agent/protocol/flat_json.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/pushed_frame_parse.h"

namespace edgespool::protocol {

namespace {

using pushed::Fail;
using pushed::GetInteger;
using pushed::JsonPtr;

template <typename Src>
bool IsCall(const Src& root) {
  return pushed::IsOp(root, "call");
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
    if (!pushed::ParseHeaderObject(*h, &c->headers)) return Fail(error, "call headers malformed");
  }
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
  return pushed::ParseTree(header, "call", &root, &ignored) && IsCall(CjsonObject(root.get()));
}

bool ParseCall(std::string_view header, MethodCall* out, std::string* error) {
  *out = MethodCall{};
  FlatObject flat;
  if (flat.Scan(header)) return ParseFields(flat, out, error);
  JsonPtr root;
  if (!pushed::ParseTree(header, "call", &root, error)) return false;
  return ParseFields(CjsonObject(root.get()), out, error);
}

}  // namespace edgespool::protocol
