// The C API over client::Producer and client::Consumer (see edgespool_client.h).
#include "agent/client/edgespool_client.h"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agent/client/consumer.h"
#include "agent/client/producer.h"

// The asynchronous publishes not yet settled (their last callback not run)
// are counted here for edgespool_flush. Shared with the callbacks, which the
// Producer may still run while it is being destroyed.
struct AsyncCounter {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t outstanding = 0;

  void Add() {
    std::lock_guard<std::mutex> lock(mu);
    ++outstanding;
  }
  void Done() {
    std::lock_guard<std::mutex> lock(mu);
    if (--outstanding == 0) cv.notify_all();
  }
  bool Wait(int64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(timeout_ms < 0 ? 0 : timeout_ms),
                       [this] { return outstanding == 0; });
  }
};

struct edgespool_producer {
  std::unique_ptr<edgespool::client::Producer> producer;
  std::shared_ptr<AsyncCounter> async = std::make_shared<AsyncCounter>();
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

// The C options as the C++ SDK's; false if one is out of range. Fields past
// the caller's struct_size (a program built against an older header) keep
// their defaults.
bool ToPublishOptions(const edgespool_publish_options* in, edgespool::client::PublishOptions* out) {
  edgespool_publish_options o;
  edgespool_publish_options_init(&o);
  if (in != nullptr) {
    if (in->struct_size < offsetof(edgespool_publish_options, id)) return false;
    std::memcpy(&o, in, std::min(in->struct_size, sizeof o));
  }
  if (o.id != nullptr) out->id = o.id;
  if (o.ts_ms >= 0) out->ts_ms = o.ts_ms;
  using edgespool::protocol::Priority;
  switch (o.priority) {
    case EDGESPOOL_PRIORITY_HIGH: out->priority = Priority::kHigh; break;
    case EDGESPOOL_PRIORITY_NORMAL: out->priority = Priority::kNormal; break;
    case EDGESPOOL_PRIORITY_LOW: out->priority = Priority::kLow; break;
    default: return false;
  }
  if (o.ttl_ms < 0) return false;
  if (o.ttl_ms > 0) out->ttl_ms = o.ttl_ms;
  if (o.deliver_at_ms < 0 || o.delay_ms < 0 || (o.deliver_at_ms > 0 && o.delay_ms > 0)) {
    return false;
  }
  if (o.deliver_at_ms > 0) out->deliver_at_ms = o.deliver_at_ms;
  if (o.delay_ms > 0) out->delay_ms = o.delay_ms;
  if (o.header_count > 0 && o.headers == nullptr) return false;
  for (size_t i = 0; i < o.header_count; ++i) {
    if (o.headers[i].key == nullptr || o.headers[i].value == nullptr) return false;
    out->headers.emplace_back(o.headers[i].key, o.headers[i].value);
  }
  if (o.ack == EDGESPOOL_ACK_STORED) {
    out->ack = edgespool::protocol::AckMode::kStored;
  } else if (o.ack == EDGESPOOL_ACK_DELIVERED) {
    out->ack = edgespool::protocol::AckMode::kDelivered;
  } else {
    return false;
  }
  return true;
}

void Report(edgespool_delivery_cb cb, void* user, edgespool_event event, int error,
            const edgespool::client::PublishResult& r, const std::string& id) {
  if (cb == nullptr) return;
  edgespool_delivery_report report{};
  report.event = event;
  report.error = error;
  report.seq = r.seq;
  report.id = id.c_str();
  report.duplicate = r.duplicate ? 1 : 0;
  report.sent = r.status.ok() && r.receipt == edgespool::client::Receipt::kSent ? 1 : 0;
  std::string reason = error == 0 ? "" : !r.reason.empty() ? r.reason : r.status.message();
  report.reason = reason.c_str();
  cb(&report, user);
}

// The error of a delivery report: dead, expired, or the connection dropped
// (the agent cannot tell a new connection about an old request).
int DeliveryError(const edgespool::client::PublishResult& r) {
  if (r.delivery == "dead") return EDGESPOOL_ERR_DEAD;
  if (r.delivery == "expired") return EDGESPOOL_ERR_EXPIRED;
  return r.status.code() == edgespool::Code::kCancelled ? EDGESPOOL_ERR_CLOSED
                                                         : EDGESPOOL_ERR_UNAVAILABLE;
}

}  // namespace

extern "C" {

void edgespool_connect_options_init(edgespool_connect_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->connect_timeout_ms = 2000;
  o->window = 256;
  o->max_queued = 10000;
}

int edgespool_connect_opts(const char* socket_path, const edgespool_connect_options* options,
                           edgespool_producer** out) {
  if (socket_path == nullptr || out == nullptr) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  *out = nullptr;
  edgespool_connect_options o;
  edgespool_connect_options_init(&o);
  if (options != nullptr) {
    if (options->struct_size < offsetof(edgespool_connect_options, connect_timeout_ms)) {
      return EDGESPOOL_ERR_INVALID_ARGUMENT;
    }
    std::memcpy(&o, options, std::min(options->struct_size, sizeof o));
  }
  if (o.connect_timeout_ms < 0 || o.window == 0 || o.max_queued == 0) {
    return EDGESPOOL_ERR_INVALID_ARGUMENT;
  }
  edgespool::client::ProducerOptions po;
  po.socket_path = socket_path;
  po.connect_timeout_ms = o.connect_timeout_ms;
  po.window = o.window;
  po.max_queued = o.max_queued;
  auto text = [](const char* s) { return std::string(s ? s : ""); };
  po.direct.ca_file = text(o.ca_file);
  po.direct.cert_file = text(o.cert_file);
  po.direct.key_file = text(o.key_file);
  po.direct.username = text(o.username);
  po.direct.password = text(o.password);
  auto p = edgespool::client::Producer::Connect(std::move(po));
  if (!p.ok()) {
    // A bad URL or TLS file is the caller's; an unreachable peer is not.
    return p.status().code() == edgespool::Code::kInvalidArgument ? EDGESPOOL_ERR_INVALID_ARGUMENT
                                                                  : EDGESPOOL_ERR_UNAVAILABLE;
  }
  *out = new edgespool_producer{std::move(p).value()};
  return EDGESPOOL_OK;
}

void edgespool_publish_options_init(edgespool_publish_options* o) {
  if (o == nullptr) return;
  std::memset(o, 0, sizeof *o);
  o->struct_size = sizeof *o;
  o->ts_ms = -1;
  o->priority = EDGESPOOL_PRIORITY_NORMAL;
  o->ack = EDGESPOOL_ACK_STORED;
}

int64_t edgespool_publish_opts(edgespool_producer* p, const char* topic, const void* payload,
                               size_t len, const edgespool_publish_options* options) {
  if (p == nullptr || topic == nullptr || (payload == nullptr && len > 0)) {
    return EDGESPOOL_ERR_INVALID_ARGUMENT;
  }
  edgespool::client::PublishOptions o;
  if (!ToPublishOptions(options, &o)) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  // Blocking: the delivery report has no one to go to.
  o.ack = edgespool::protocol::AckMode::kStored;
  std::string body(static_cast<const char*>(payload), len);
  auto result = p->producer->Publish(topic, std::move(body), std::move(o)).get();
  int code = ToCode(result);
  if (code != EDGESPOOL_OK) return code;
  return static_cast<int64_t>(result.seq);
}

int edgespool_publish_async(edgespool_producer* p, const char* topic, const void* payload,
                            size_t len, const edgespool_publish_options* options,
                            edgespool_delivery_cb callback, void* user) {
  if (p == nullptr || topic == nullptr || (payload == nullptr && len > 0)) {
    return EDGESPOOL_ERR_INVALID_ARGUMENT;
  }
  edgespool::client::PublishOptions o;
  if (!ToPublishOptions(options, &o)) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  bool delivered = o.ack == edgespool::protocol::AckMode::kDelivered;
  std::shared_ptr<AsyncCounter> counter = p->async;
  counter->Add();
  if (delivered) {
    o.on_delivered = [counter, callback, user](const edgespool::client::PublishResult& r) {
      // The agent's delivery reply carries no id; the stored report had it.
      if (r.status.ok()) {
        Report(callback, user, EDGESPOOL_EVENT_DELIVERED, 0, r, "");
      } else {
        Report(callback, user, EDGESPOOL_EVENT_ERROR, DeliveryError(r), r, "");
      }
      counter->Done();
    };
  }
  std::string body(static_cast<const char*>(payload), len);
  p->producer->Publish(topic, std::move(body), std::move(o),
                       [counter, callback, user, delivered](edgespool::client::PublishResult r) {
                         int code = ToCode(r);
                         if (code == EDGESPOOL_OK) {
                           Report(callback, user, EDGESPOOL_EVENT_STORED, 0, r, r.id);
                           // With ack DELIVERED the second report settles it.
                           if (delivered) return;
                         } else {
                           Report(callback, user, EDGESPOOL_EVENT_ERROR, code, r, r.id);
                         }
                         counter->Done();
                       });
  return EDGESPOOL_OK;
}

int edgespool_flush(edgespool_producer* p, int64_t timeout_ms) {
  if (p == nullptr) return EDGESPOOL_ERR_INVALID_ARGUMENT;
  return p->async->Wait(timeout_ms) ? EDGESPOOL_OK : EDGESPOOL_ERR_TIMEOUT;
}

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
  (void)p->async->Wait(5000);
  // Fails what is still outstanding through its callbacks, which hold the
  // counter, not p.
  p->producer.reset();
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
    case EDGESPOOL_ERR_TIMEOUT: return "timed out";
    case EDGESPOOL_ERR_DEAD: return "dead letter: never delivered";
    case EDGESPOOL_ERR_EXPIRED: return "expired before it was uploaded";
  }
  return "unknown error";
}

}  // extern "C"
