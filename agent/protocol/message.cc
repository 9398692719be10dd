#include "agent/protocol/message.h"

#include <optional>

#include "agent/protocol/flat_json.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/pushed_frame_parse.h"

namespace edgespool::protocol {

namespace {

using pushed::Fail;
using pushed::GetInteger;
using pushed::JsonPtr;
using pushed::ParseHeaderObject;

// An optional string field: absent is fine, a non-string is not.
template <typename Src>
bool GetOptionalText(const Src& root, const char* key, std::string* out) {
  auto item = root.Find(key);
  if (!item) return true;
  if (!item->is_string()) return false;
  out->assign(item->text.data(), item->text.size());
  return true;
}

template <typename Src>
bool IsMessage(const Src& root) {
  return pushed::IsOp(root, "message");
}

template <typename Src>
bool ParseMessageFields(const Src& root, PushedMessage* m, std::string* error) {
  if (!IsMessage(root)) return Fail(error, "not a message frame");
  int64_t v;
  if (!GetInteger(root.Find("seq"), 1, kMaxReq, &v)) return Fail(error, "message has no seq");
  m->seq = static_cast<uint64_t>(v);
  auto topic = root.Find("topic");
  if (!topic || !topic->is_string()) return Fail(error, "message has no topic");
  m->topic.assign(topic->text.data(), topic->text.size());
  if (!GetOptionalText(root, "session", &m->session) ||
      !GetOptionalText(root, "broker_topic", &m->broker_topic) ||
      !GetOptionalText(root, "response_topic", &m->response_topic)) {
    return Fail(error, "message has a non-string session, broker_topic or response_topic");
  }
  if (auto ts = root.Find("ts")) {
    if (!GetInteger(ts, 0, kMaxTsMs, &m->ts_ms)) return Fail(error, "message ts is not ms");
  }
  if (auto h = root.Find("headers")) {
    if (!ParseHeaderObject(*h, &m->headers)) return Fail(error, "message headers malformed");
  }
  std::string hex;
  if (!GetOptionalText(root, "correlation", &hex) || !HexDecode(hex, &m->correlation)) {
    return Fail(error, "message correlation is not hex");
  }
  return true;
}

}  // namespace

std::string HexEncode(std::string_view bytes) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xF]);
  }
  return out;
}

bool HexDecode(std::string_view hex, std::string* out) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  if (hex.size() % 2 != 0) return false;
  out->clear();
  out->reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>((hi << 4) | lo));
  }
  return true;
}

namespace {

void WriteMessageHeader(const PushedMessage& m, JsonObjectWriter& w) {
  w.Str("op", "message");
  w.Str("session", m.session);
  w.Uint("seq", m.seq);
  w.Str("topic", m.topic);
  if (!m.broker_topic.empty()) w.Str("broker_topic", m.broker_topic);
  w.Int("ts", m.ts_ms);
  if (!m.headers.empty()) {
    JsonObjectWriter h;
    for (const auto& [k, v] : m.headers) h.Str(k, v);
    w.Raw("headers", std::move(h).Finish());
  }
  if (!m.response_topic.empty()) w.Str("response_topic", m.response_topic);
  if (!m.correlation.empty()) w.Str("correlation", HexEncode(m.correlation));
}

}  // namespace

std::string EncodeMessageHeader(const PushedMessage& m) {
  JsonObjectWriter w;
  WriteMessageHeader(m, w);
  return std::move(w).Finish();
}

void AppendMessageFrame(std::string* out, const PushedMessage& m, std::string_view payload) {
  size_t start = BeginFrame(out);
  JsonObjectWriter w(out);
  WriteMessageHeader(m, w);
  w.Close();
  EndFrame(out, start, payload);
}

bool ParseMessage(std::string_view header, PushedMessage* out, std::string* error) {
  *out = PushedMessage{};
  FlatObject flat;
  if (flat.Scan(header)) return ParseMessageFields(flat, out, error);
  JsonPtr root;
  if (!pushed::ParseTree(header, "message", &root, error)) return false;
  return ParseMessageFields(CjsonObject(root.get()), out, error);
}

// Replies on a consumer's connection are few (subscribe, unsubscribe,
// errors), so a reply found here is parsed a second time by ParseReply
// rather than sharing its field reader.
bool ParseServerFrame(std::string_view header, ServerFrame* out, std::string* error) {
  out->kind = ServerFrame::kReply;
  FlatObject flat;
  if (flat.Scan(header)) {
    if (!IsMessage(flat)) return ParseReply(header, &out->reply, error);
    out->kind = ServerFrame::kMessage;
    out->message = PushedMessage{};
    return ParseMessageFields(flat, &out->message, error);
  }
  JsonPtr root;
  if (!pushed::ParseTree(header, "message", &root, error)) return false;
  CjsonObject object(root.get());
  if (!IsMessage(object)) return ParseReplySlow(header, &out->reply, error);
  out->kind = ServerFrame::kMessage;
  out->message = PushedMessage{};
  return ParseMessageFields(object, &out->message, error);
}

}  // namespace edgespool::protocol
