// The C API over client::Producer (see edgespool_client.h).
#include "agent/client/edgespool_client.h"

#include <memory>
#include <string>

#include "agent/client/producer.h"

struct edgespool_producer {
  std::unique_ptr<edgespool::client::Producer> producer;
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
  }
  return EDGESPOOL_ERR_INTERNAL;
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
    case EDGESPOOL_ERR_CLOSED: return "producer closed";
  }
  return "unknown error";
}

}  // extern "C"
