// The C API over client::Producer and client::Consumer (see edgespool_client.h).
#include "agent/client/edgespool_client.h"

#include <memory>
#include <string>
#include <vector>

#include "agent/client/consumer.h"
#include "agent/client/producer.h"

struct edgespool_producer {
  std::unique_ptr<edgespool::client::Producer> producer;
};

struct edgespool_consumer {
  std::unique_ptr<edgespool::client::Consumer> consumer;
};

namespace {

using edgespool::protocol::ErrorCode;

int ToCode(const edgespool::client::PublishResult& r) {
  if (r.status.ok()) return EDGESPOOL_OK;
  if (!r.code) {
    return r.status.code() == edgespool::Code::kCancelled ? EDGESPOOL_ERR_CLOSED
                                                          : EDGESPOOL_ERR_UNAVAILABLE;
  }
  switch (*r.code) {
    case ErrorCode::kBadFrame: return EDGESPOOL_ERR_BAD_FRAME;
    case ErrorCode::kBadRequest: return EDGESPOOL_ERR_BAD_REQUEST;
    case ErrorCode::kBadTopic: return EDGESPOOL_ERR_BAD_TOPIC;
    case ErrorCode::kTooLarge: return EDGESPOOL_ERR_TOO_LARGE;
    case ErrorCode::kForbidden: return EDGESPOOL_ERR_FORBIDDEN;
    case ErrorCode::kRateLimited: return EDGESPOOL_ERR_RATE_LIMITED;
    case ErrorCode::kBusy: return EDGESPOOL_ERR_BUSY;
    case ErrorCode::kJournalFull: return EDGESPOOL_ERR_JOURNAL_FULL;
    case ErrorCode::kInternal: return EDGESPOOL_ERR_INTERNAL;
    // Request/response codes: the C API has no request call (yet), so a
    // publish never gets them; mapped for completeness.
    case ErrorCode::kUnavailable:
    case ErrorCode::kNoHandler: return EDGESPOOL_ERR_UNAVAILABLE;
    case ErrorCode::kTimeout:
    case ErrorCode::kHandlerError: return EDGESPOOL_ERR_INTERNAL;
  }
  return EDGESPOOL_ERR_INTERNAL;
}

// The consumer's errors come as a Status (agent_connection.cc ReplyStatus).
int StatusToCode(const edgespool::Status& st) {
  using edgespool::Code;
  if (st.ok()) return EDGESPOOL_OK;
  switch (st.code()) {
    case Code::kInvalidArgument: return EDGESPOOL_ERR_BAD_REQUEST;
    case Code::kResourceExhausted: return EDGESPOOL_ERR_BUSY;
    case Code::kPermissionDenied: return EDGESPOOL_ERR_FORBIDDEN;
    case Code::kUnavailable: return EDGESPOOL_ERR_UNAVAILABLE;
    case Code::kCancelled: return EDGESPOOL_ERR_CLOSED;
    default: return EDGESPOOL_ERR_INTERNAL;
  }
}

void CallWith(const edgespool::client::ReceivedMessage& m, edgespool_message_cb cb, void* user) {
  std::vector<const char*> keys, values;
  keys.reserve(m.headers.size());
  values.reserve(m.headers.size());
  for (const auto& [k, v] : m.headers) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  edgespool_message c{};
  c.seq = m.seq;
  c.session = m.session.c_str();
  c.topic = m.topic.c_str();
  c.broker_topic = m.broker_topic.c_str();
  c.ts_ms = m.ts_ms;
  c.payload = m.payload.data();
  c.payload_len = m.payload.size();
  c.header_count = m.headers.size();
  c.header_keys = keys.data();
  c.header_values = values.data();
  c.response_topic = m.response_topic.c_str();
  c.correlation = m.correlation.data();
  c.correlation_len = m.correlation.size();
  cb(&c, user);
}

bool ToFrom(int64_t from, edgespool::client::ConsumerOptions* o) {
  using From = edgespool::client::ConsumerOptions::From;
  if (from == EDGESPOOL_FROM_DEFAULT) o->from = From::kDefault;
  else if (from == EDGESPOOL_FROM_NEW) o->from = From::kNew;
  else if (from == EDGESPOOL_FROM_OLDEST) o->from = From::kOldest;
  else if (from >= 0) o->from = From::kSeq;
  else return false;
  if (from >= 0) o->from_seq = static_cast<uint64_t>(from);
  return true;
}

}  // namespace

extern "C" {

int edgespool_connect(const char* socket_path, edgespool_producer** out) {
  if (socket_path == nullptr || out == nullptr) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  edgespool::client::ProducerOptions options;
  options.socket_path = socket_path;
  options.connect_timeout_ms = 2000;
  auto p = edgespool::client::Producer::Connect(std::move(options));
  if (!p.ok()) return EDGESPOOL_ERR_UNAVAILABLE;
  *out = new edgespool_producer{std::move(p).value()};
  return EDGESPOOL_OK;
}

int64_t edgespool_publish_ex(edgespool_producer* p, const char* topic, const void* payload,
                             size_t len, const char* id, int64_t ts_ms, const char* priority) {
  if (p == nullptr || topic == nullptr || (payload == nullptr && len > 0)) {
    return EDGESPOOL_ERR_INVALID_ARGUMENT;
  }
  edgespool::client::PublishOptions options;
  if (id != nullptr) options.id = id;
  if (ts_ms >= 0) options.ts_ms = ts_ms;
  if (priority != nullptr && !edgespool::protocol::ParsePriority(priority, &options.priority)) {
    return EDGESPOOL_ERR_INVALID_ARGUMENT;
  }
  std::string body(static_cast<const char*>(payload), len);
  auto result = p->producer->Publish(topic, std::move(body), std::move(options)).get();
  int code = ToCode(result);
  if (code != EDGESPOOL_OK) return code;
  return static_cast<int64_t>(result.seq);
}

int64_t edgespool_publish(edgespool_producer* p, const char* topic, const void* payload,
                          size_t len) {
  return edgespool_publish_ex(p, topic, payload, len, nullptr, -1, nullptr);
}

void edgespool_close(edgespool_producer* p) {
  if (p == nullptr) return;
  p->producer->Drain(5000);
  delete p;
}

int edgespool_consumer_open(const char* socket_path, const char* session,
                            const char* const* filters, size_t n, int64_t from,
                            edgespool_message_cb callback, void* user, edgespool_consumer** out) {
  if (out != nullptr) *out = nullptr;
  if (socket_path == nullptr || filters == nullptr || n == 0 || callback == nullptr ||
      out == nullptr) {
    return EDGESPOOL_ERR_INVALID_ARGUMENT;
  }
  edgespool::client::ConsumerOptions options;
  options.socket_path = socket_path;
  if (session != nullptr) options.session = session;
  for (size_t i = 0; i < n; ++i) {
    if (filters[i] == nullptr) return EDGESPOOL_ERR_INVALID_ARGUMENT;
    options.filters.emplace_back(filters[i]);
  }
  if (!ToFrom(from, &options)) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  auto c = edgespool::client::Consumer::Open(
      std::move(options), [callback, user](const edgespool::client::ReceivedMessage& m) {
        CallWith(m, callback, user);
      });
  if (!c.ok()) return StatusToCode(c.status());
  *out = new edgespool_consumer{std::move(c).value()};
  return EDGESPOOL_OK;
}

int edgespool_consumer_ack(edgespool_consumer* c, uint64_t seq) {
  if (c == nullptr) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  edgespool::Status st = c->consumer->Ack(seq);
  return st.code() == edgespool::Code::kInvalidArgument ? EDGESPOOL_ERR_INVALID_ARGUMENT
                                                         : StatusToCode(st);
}

int edgespool_consumer_ack_up_to(edgespool_consumer* c, uint64_t up_to) {
  if (c == nullptr) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  edgespool::Status st = c->consumer->AckUpTo(up_to);
  return st.code() == edgespool::Code::kInvalidArgument ? EDGESPOOL_ERR_INVALID_ARGUMENT
                                                         : StatusToCode(st);
}

uint64_t edgespool_consumer_position(const edgespool_consumer* c) {
  return c == nullptr ? 0 : c->consumer->acked_position();
}

int edgespool_consumer_close(edgespool_consumer* c) {
  if (c == nullptr) return EDGESPOOL_OK;
  edgespool::Status st = c->consumer->Close();
  delete c;
  return StatusToCode(st);
}

const char* edgespool_strerror(int code) {
  switch (code) {
    case EDGESPOOL_OK: return "ok";
    case EDGESPOOL_ERR_UNAVAILABLE: return "agent unavailable";
    case EDGESPOOL_ERR_BAD_FRAME: return "bad frame";
    case EDGESPOOL_ERR_BAD_REQUEST: return "bad request";
    case EDGESPOOL_ERR_BAD_TOPIC: return "bad topic";
    case EDGESPOOL_ERR_TOO_LARGE: return "message too large";
    case EDGESPOOL_ERR_FORBIDDEN: return "forbidden";
    case EDGESPOOL_ERR_RATE_LIMITED: return "rate limited";
    case EDGESPOOL_ERR_BUSY: return "agent busy";
    case EDGESPOOL_ERR_JOURNAL_FULL: return "journal full";
    case EDGESPOOL_ERR_INTERNAL: return "internal error in the agent";
    case EDGESPOOL_ERR_INVALID_ARGUMENT: return "invalid argument";
    case EDGESPOOL_ERR_CLOSED: return "closed";
  }
  return "unknown error";
}

}  // extern "C"
