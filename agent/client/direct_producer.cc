#include "agent/client/direct_producer.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <utility>

#include "platform/process_info.h"
#include "sync/transport.h"

namespace edgespool::client {

namespace pr = ::edgespool::protocol;

namespace {

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  }
  return true;
}

std::string RandomClientId() {
  std::random_device rd;
  char buf[40];
  std::snprintf(buf, sizeof buf, "es-direct-%08x%08x", rd(), rd());
  return buf;
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

PublishResult Refused(const Status& why, pr::ErrorCode code, std::string id) {
  PublishResult r;
  r.status = why;
  r.code = code;
  r.id = std::move(id);
  return r;
}

// What the agent would have said for the same input (agent/protocol's
// checks), so a program sees the same errors in either mode.
Status CheckPublish(const std::string& topic, const PublishOptions& o, pr::ErrorCode* code) {
  *code = pr::ErrorCode::kBadTopic;
  Status st = pr::ValidateTopic(topic);
  if (!st.ok()) return st;
  *code = pr::ErrorCode::kBadRequest;
  if (o.deliver_at_ms || o.delay_ms) {
    return Status::InvalidArgument(
        "scheduled delivery (deliver_at, delay) needs the agent: direct mode stores nothing");
  }
  if (o.id.size() > pr::kMaxIdBytes) return Status::InvalidArgument("id too long");
  if (o.ts_ms && (*o.ts_ms < 0 || *o.ts_ms > pr::kMaxTsMs)) {
    return Status::InvalidArgument("ts out of range");
  }
  if (o.ttl_ms && (*o.ttl_ms < 1 || *o.ttl_ms > pr::kMaxTtlMs)) {
    return Status::InvalidArgument("ttl out of range");
  }
  if (o.headers.size() > pr::kMaxHeaderEntries) return Status::InvalidArgument("too many headers");
  size_t bytes = 0;
  for (const auto& [k, v] : o.headers) {
    if (k.empty() || k.size() > pr::kMaxHeaderKeyBytes) {
      return Status::InvalidArgument("header key empty or too long");
    }
    if (k.rfind("es-", 0) == 0) {
      return Status::InvalidArgument("header keys starting with \"es-\" are reserved");
    }
    if (pr::IsTraceparentKey(k) && !pr::ValidTraceparent(v)) {
      return Status::InvalidArgument("header \"" + k + "\" is not a W3C traceparent");
    }
    bytes += k.size() + v.size();
  }
  if (bytes > pr::kMaxHeadersBytes) return Status::InvalidArgument("headers too large");
  return Status::Ok();
}

// A broker's refusal in a PUBACK, as the agent's error codes name them.
pr::ErrorCode CodeForRefusal(uint8_t reason_code) {
  switch (reason_code) {
    case 0x87:  // Not authorized
      return pr::ErrorCode::kForbidden;
    case 0x90:  // Topic Name invalid
      return pr::ErrorCode::kBadTopic;
    case 0x95:  // Packet too large
    case 0x97:  // Quota exceeded
      return reason_code == 0x95 ? pr::ErrorCode::kTooLarge : pr::ErrorCode::kBusy;
    default:
      return reason_code >= 0x80 ? pr::ErrorCode::kBadRequest : pr::ErrorCode::kUnavailable;
  }
}

}  // namespace

bool IsBrokerUrl(std::string_view s) {
  return StartsWithNoCase(s, "mqtt://") || StartsWithNoCase(s, "mqtts://");
}

DirectProducer::DirectProducer(ProducerOptions options)
    : options_(std::move(options)), ids_(options_.id_prefix) {
  if (options_.window == 0) options_.window = 1;
  if (options_.max_queued == 0) options_.max_queued = 1;
}

Result<std::unique_ptr<DirectProducer>> DirectProducer::Connect(ProducerOptions options) {
  std::unique_ptr<DirectProducer> p(new DirectProducer(std::move(options)));
  Status st = p->Start();
  if (!st.ok()) return st;
  return p;
}

Status DirectProducer::Start() {
  auto url = sync::ParseBrokerUrl(options_.socket_path);
  if (!url.ok()) return url.status();
  url_shown_ = url->Redacted();
  platform::IgnoreSigpipeIfDefault();
  auto io = IoThread::GivenOrStart(options_.io);
  if (!io.ok()) return io.status();
  io_ = std::move(io).value();
  loop_ = &io_->loop();
  std::future<Status> first = first_connect_.get_future();
  std::promise<Status> created;
  std::future<Status> created_f = created.get_future();
  loop_->Post([this, &created] { StartOnLoop(&created); });
  Status st = created_f.get();
  if (st.ok()) st = first.get();
  if (!st.ok()) {
    // The destructor shuts the loop side down; nothing was handed to us.
    return st;
  }
  return Status::Ok();
}

void DirectProducer::StartOnLoop(std::promise<Status>* created) {
  wake_ = std::make_unique<platform::AsyncHandle>(*loop_, [this] { OnWake(); });
  first_connect_timer_ = std::make_unique<platform::TimerHandle>(*loop_);
  grace_timer_ = std::make_unique<platform::TimerHandle>(*loop_);
  const DirectOptions& d = options_.direct;
  sync::mqtt::ClientOptions co;
  co.url = options_.socket_path;
  co.session.protocol = d.protocol;
  co.session.client_id = d.client_id.empty() ? RandomClientId() : d.client_id;
  if (!d.username.empty()) co.session.username = d.username;
  if (!d.password.empty()) co.session.password = d.password;
  co.session.keepalive_s = d.keepalive_s;
  co.session.inflight = static_cast<uint16_t>(std::clamp<size_t>(options_.window, 1, 65535));
  uint64_t connect_ms = static_cast<uint64_t>(std::max<int64_t>(options_.connect_timeout_ms, 1));
  co.session.connect_timeout_ms = static_cast<uint32_t>(std::min<uint64_t>(connect_ms, 60000));
  co.tls.ca_file = d.ca_file;
  co.tls.cert_file = d.cert_file;
  co.tls.key_file = d.key_file;
  co.tls.server_name = d.server_name;
  co.tls.verify = d.verify;
  co.tls.handshake_timeout_ms = co.session.connect_timeout_ms;
  co.backoff_initial_ms = static_cast<uint64_t>(std::max<int64_t>(options_.backoff_initial_ms, 1));
  co.backoff_max_ms = static_cast<uint64_t>(
      std::max<int64_t>(options_.backoff_max_ms, options_.backoff_initial_ms));
  auto client = sync::mqtt::Client::Create(*loop_, std::move(co), this);
  if (!client.ok()) {
    created->set_value(client.status());
    return;
  }
  client_ = std::move(client).value();
  created->set_value(Status::Ok());
  first_connect_timer_->Start(connect_ms, 0, [this] {
    std::string cause = last_error_.ok() ? "no CONNACK" : last_error_.ToString();
    FinishFirstConnect(Status::Unavailable("broker not reachable at " + url_shown_ + " within " +
                                           std::to_string(options_.connect_timeout_ms) +
                                           " ms: " + cause));
  });
  client_->Start();
}

DirectProducer::~DirectProducer() {
  if (loop_) {
    ShutDownFromOutside(*loop_, "a Producer", [this] { ShutdownOnLoop(); }, shut_down_);
  }
  std::deque<Pending> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    left.swap(queue_);
  }
  for (auto& p : left) Complete(p, Status::Cancelled("producer closed"), Receipt::kSent);
}

// DISCONNECT (up to 1 s for it to be written), then every message not yet
// acknowledged fails with Cancelled. The client and the handles go on later
// loop turns (we may be inside the client's callback), then *this is free.
void DirectProducer::ShutdownOnLoop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  FinishFirstConnect(Status::Cancelled("producer closed"));
  auto finish = [this] {
    connected_ = false;
    OnWake();  // what callers queued meanwhile fails (stopping_)
    FailInflight(Status::Cancelled("producer closed"));
    if (client_) loop_->DeferDelete(std::move(client_));
    loop_->Post([this] {
      wake_.reset();
      first_connect_timer_.reset();
      grace_timer_.reset();
      shut_down_.set_value();
    });
  };
  if (!client_) return finish();
  client_->Stop(finish);
}

void DirectProducer::FinishFirstConnect(const Status& st) {
  if (first_connect_done_) return;
  first_connect_done_ = true;
  if (first_connect_timer_) first_connect_timer_->Stop();
  first_connect_.set_value(st);
}

void DirectProducer::Publish(std::string topic, std::string payload, PublishOptions options,
                             std::function<void(PublishResult)> done) {
  std::string id = options.id.empty() ? ids_.Next() : std::move(options.id);
  pr::ErrorCode code;
  Status st = CheckPublish(topic, options, &code);
  if (!st.ok()) return done(Refused(st, code, std::move(id)));
  if (ever_connected_.load() && !connected_.load()) {
    // Nothing is stored in direct mode: no queue grows while the link is down.
    PublishResult r = Refused(Status::Unavailable("not connected to the broker at " + url_shown_ +
                                                  " (direct mode stores nothing)"),
                              pr::ErrorCode::kUnavailable, std::move(id));
    r.retry_after_ms = options_.backoff_initial_ms;
    return done(std::move(r));
  }
  Pending p;
  p.msg.topic = std::move(topic);
  p.msg.payload = std::move(payload);
  p.msg.qos = 1;
  auto& props = p.msg.user_properties;
  props.reserve(2 + options.headers.size());
  props.emplace_back("es-ts", std::to_string(options.ts_ms.value_or(WallMs())));
  props.emplace_back("es-id", id);
  for (auto& h : options.headers) props.push_back(std::move(h));
  if (options.ttl_ms) {
    p.msg.message_expiry_s =
        static_cast<uint32_t>(std::min<int64_t>((*options.ttl_ms + 999) / 1000, UINT32_MAX));
  }
  p.id = std::move(id);
  p.ack = options.ack;
  if (options.ack == pr::AckMode::kDelivered) p.on_delivered = std::move(options.on_delivered);
  p.done = std::move(done);
  bool on_loop = loop_->InLoopThread();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!on_loop) {
      cv_.wait(lock, [this] { return outstanding_ < options_.max_queued || stopping_; });
    }
    if (stopping_) {
      lock.unlock();
      return p.done(Refused(Status::Cancelled("producer closed"), pr::ErrorCode::kUnavailable,
                            std::move(p.id)));
    }
    ++outstanding_;
    queue_.push_back(std::move(p));
  }
  wake_->Send();
}

void DirectProducer::OnWake() {
  std::deque<Pending> batch;
  bool stopping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch.swap(queue_);
    stopping = stopping_;
  }
  for (auto& p : batch) {
    if (stopping || !client_) {
      Complete(p, Status::Cancelled("producer closed"), Receipt::kSent);
      continue;
    }
    auto token = client_->Publish(p.msg);
    if (!token.ok()) {
      Complete(p, token.status(), Receipt::kSent, 0x80);
      continue;
    }
    if (p.ack == pr::AckMode::kNone) {
      Complete(p, Status::Ok(), Receipt::kWritten);
      continue;  // its PUBACK finds no entry and is ignored
    }
    // The message is the client's now (resent from its own copy): ours
    // keeps only what the result needs.
    p.msg = {};
    inflight_.emplace(*token, std::move(p));
  }
}

void DirectProducer::Complete(Pending& p, const Status& status, Receipt receipt,
                              uint8_t reason_code) {
  PublishResult r;
  r.status = status;
  r.id = p.id;
  if (status.ok()) {
    r.receipt = receipt;
    r.uplink_connected = connected_.load();
  } else if (status.code() == Code::kCancelled) {
    // No error code: the agent sends none for a closed producer either.
  } else if (status.code() == Code::kUnavailable || reason_code == 0) {
    r.code = pr::ErrorCode::kUnavailable;
  } else {
    r.code = CodeForRefusal(reason_code);
  }
  if (p.on_delivered && receipt != Receipt::kWritten) {
    PublishResult d = r;
    d.delivery = status.ok() ? "delivered" : "";
    p.on_delivered(d);
  }
  if (p.done) p.done(std::move(r));
  {
    std::lock_guard<std::mutex> lock(mu_);
    --outstanding_;
  }
  cv_.notify_all();
}

void DirectProducer::FailInflight(const Status& why) {
  auto inflight = std::move(inflight_);
  inflight_.clear();
  // In the order they were published (tokens increase).
  std::vector<std::pair<uint64_t, Pending*>> order;
  order.reserve(inflight.size());
  for (auto& [token, p] : inflight) order.emplace_back(token, &p);
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [token, p] : order) Complete(*p, why, Receipt::kSent);
}

bool DirectProducer::Drain(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                      [this] { return outstanding_ == 0; });
}

void DirectProducer::OnConnected(const sync::mqtt::ConnectInfo&) {
  if (ever_connected_.exchange(true)) ++reconnects_;
  connected_ = true;
  last_error_ = Status::Ok();
  grace_timer_->Stop();
  FinishFirstConnect(Status::Ok());
}

// The client keeps what was in flight and resends it first on the next
// connection; if that does not come within connect_timeout_ms, those
// publishes fail (the caller decides whether to publish them again).
void DirectProducer::OnDisconnected(const Status& why) {
  connected_ = false;
  last_error_ = why;
  if (!ever_connected_.load() || grace_timer_->active()) return;
  grace_timer_->Start(
      static_cast<uint64_t>(std::max<int64_t>(options_.connect_timeout_ms, 1)), 0, [this] {
        if (connected_.load()) return;
        FailInflight(Status::Unavailable("link to the broker at " + url_shown_ + " lost (" +
                                         last_error_.ToString() + ") and not back within " +
                                         std::to_string(options_.connect_timeout_ms) +
                                         " ms; the message may or may not have arrived"));
      });
}

void DirectProducer::OnPublishAcked(uint64_t token, const Status& status, uint8_t reason_code) {
  auto it = inflight_.find(token);
  if (it == inflight_.end()) return;  // ack none, or already failed after a drop
  Pending p = std::move(it->second);
  inflight_.erase(it);
  Complete(p, status, Receipt::kSent, reason_code);
}

}  // namespace edgespool::client
