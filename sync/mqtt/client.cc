#include "sync/mqtt/client.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>

#include "platform/log.h"
#include "sync/mqtt/wire.h"
#include "sync/tls_config.h"

namespace edgespool::sync::mqtt {

namespace {

uint64_t Seed(uint64_t seed) {
  if (seed != 0) return seed;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}

// Timers are checked often enough that a deadline is missed by at most a
// tenth of the shortest one, and never more than 250 ms.
uint64_t TickMs(const SessionOptions& o) {
  uint64_t shortest = std::min<uint64_t>(o.ack_timeout_ms, o.connect_timeout_ms);
  if (o.keepalive_s > 0) shortest = std::min<uint64_t>(shortest, o.keepalive_s * 1000ull);
  return std::clamp<uint64_t>(shortest / 10, 10, 250);
}

// Every URL of the list parsed; the error names the one at fault.
Result<std::vector<BrokerUrl>> ParseUrls(const std::vector<std::string>& urls) {
  if (urls.empty()) return Status::InvalidArgument("uplink url: no broker given");
  std::vector<BrokerUrl> out;
  for (const std::string& text : urls) {
    auto url = ParseBrokerUrl(text);
    if (!url.ok()) {
      return url.status().Annotate(urls.size() == 1 ? std::string("uplink url")
                                                    : "uplink url #" + std::to_string(out.size() + 1));
    }
    out.push_back(std::move(url).value());
  }
  return out;
}

bool AnyTls(const std::vector<BrokerUrl>& urls) {
  for (const BrokerUrl& u : urls) {
    if (u.tls) return true;
  }
  return false;
}

size_t IndexOf(const std::vector<BrokerUrl>& urls, const BrokerUrl& u) {
  for (size_t i = 0; i < urls.size(); ++i) {
    if (urls[i].host == u.host && urls[i].port == u.port && urls[i].tls == u.tls) return i;
  }
  return BrokerRotation::kNone;
}

}  // namespace

Result<std::unique_ptr<Client>> Client::Create(platform::Loop& loop, ClientOptions options,
                                               ClientListener* listener) {
  auto urls = ParseUrls(options.urls.empty() ? std::vector<std::string>{options.url} : options.urls);
  if (!urls.ok()) return urls.status();
  const SessionOptions& so = options.session;
  if (so.protocol != kProtocol311 && so.protocol != kProtocol5) {
    return Status::InvalidArgument("protocol must be 4 (3.1.1) or 5");
  }
  if (so.will && !IsValidTopicName(so.will->topic)) {
    return Status::InvalidArgument("invalid will topic \"" + so.will->topic + "\"");
  }
  for (const auto& [filter, qos] : options.subscriptions) {
    if (!IsValidTopicFilter(filter)) {
      return Status::InvalidArgument("invalid topic filter \"" + filter + "\"");
    }
  }
  std::shared_ptr<TlsConfig> tls;
  if (AnyTls(*urls)) {
    // Loaded once: a bad CA or key file is a startup error, and reconnects
    // do not re-parse certificates.
    auto config = TlsConfig::Create(options.tls);
    if (!config.ok()) return config.status();
    tls = std::move(config).value();
  }
  return std::unique_ptr<Client>(
      new Client(loop, std::move(options), std::move(urls).value(), std::move(tls), listener));
}

Client::Client(platform::Loop& loop, ClientOptions options, std::vector<BrokerUrl> urls,
               std::shared_ptr<TlsConfig> tls, ClientListener* listener)
    : loop_(loop),
      options_(std::move(options)),
      urls_(std::move(urls)),
      tls_(std::move(tls)),
      listener_(listener),
      session_(options_.session, this),
      backoff_(options_.backoff_initial_ms, options_.backoff_max_ms, Seed(options_.backoff_seed)),
      // Its own stream from the same seed: the order must not shift the jitter.
      rotation_(urls_.size(), options_.failover, Seed(options_.backoff_seed) ^ 0x9e3779b97f4a7c15ull),
      tick_timer_(loop),
      reconnect_timer_(loop),
      stop_timer_(loop),
      flusher_(loop) {}

Client::~Client() {
  // Handles close themselves; a pending connect is cancelled by its
  // destructor and a transport closes its socket.
  connect_request_.reset();
  transport_.reset();
}

uint64_t Client::wire_bytes() const {
  return wire_bytes_closed_ + (transport_ ? transport_->wire_bytes_written() : 0);
}

void Client::Start() {
  if (started_) return;
  started_ = true;
  stopping_ = false;
  flusher_.Start([this] { OnCheck(); });
  tick_timer_.Start(TickMs(options_.session), TickMs(options_.session), [this] { OnTick(); });
  Connect();
}

void Client::Connect() {
  ++attempts_;
  const BrokerUrl& url = urls_[rotation_.current()];
  ES_LOG_DEBUG("uplink connecting", {{"url", url.Redacted()}});
  connect_request_ = sync::Connect(loop_, url, tls_, [this](Result<std::unique_ptr<Transport>> r) {
    OnTransport(std::move(r));
  });
}

void Client::OnTransport(Result<std::unique_ptr<Transport>> result) {
  // The request finished: release it on a later turn (we are inside its
  // callback).
  if (connect_request_) loop_.DeferDelete(std::move(connect_request_));
  if (!result.ok()) {
    LinkLost(result.status());
    return;
  }
  transport_ = std::move(result).value();
  transport_->StartReading([this](const char* data, size_t len) { OnData(data, len); },
                           [this](const Status& why) { OnEnd(why); });
  session_.StartConnect(loop_.NowMs(), &write_buffer_);
  Wake();
}

void Client::OnData(const char* data, size_t len) {
  if (switching_) return;  // the old broker's last PUBACKs: what they ack is resent anyway
  // The check handle runs right after this poll phase: no wake-up needed
  // for what the listener publishes from here.
  in_read_ = true;
  Status st = session_.OnBytes(std::string_view(data, len), loop_.NowMs(), &write_buffer_);
  in_read_ = false;
  if (!st.ok()) {
    LinkLost(st);
    return;
  }
  if (acked_since_check_ && session_.capacity() > 0) {
    acked_since_check_ = false;
    in_read_ = true;
    listener_->OnWritable();
    in_read_ = false;
  }
}

void Client::OnEnd(const Status& why) {
  if (switching_) return FinishSwitch();
  LinkLost(why.ok() ? Status::Unavailable("connection closed by the broker") : why);
}

void Client::OnTick() {
  if (!transport_) return;
  Status st = session_.Tick(loop_.NowMs(), &write_buffer_);
  if (!st.ok()) {
    LinkLost(st);
    return;
  }
  if (!write_buffer_.empty()) Wake();
}

void Client::Wake() {
  // A write queued from a timer callback would otherwise wait in this
  // iteration's poll for unrelated I/O: an (empty) posted task makes the
  // poll return at once so the check handle flushes.
  if (wake_pending_ || in_read_) return;
  wake_pending_ = true;
  loop_.Post([] {});
}

void Client::OnCheck() {
  wake_pending_ = false;
  Flush();
}

void Client::Flush() {
  if (!transport_) return;
  if (session_.connected() && transport_->write_queue_bytes() < options_.write_high_water_bytes) {
    session_.Pump(loop_.NowMs(), &write_buffer_);
  }
  if (write_buffer_.empty()) return;
  std::vector<std::string> bufs;
  bufs.push_back(std::move(write_buffer_));
  write_buffer_.clear();
  Status st = transport_->Write(std::move(bufs));
  if (!st.ok()) LinkLost(st.Annotate("write"));
}

void Client::ReleaseTransport() {
  if (!transport_) return;
  transport_->StopReading();
  wire_bytes_closed_ += transport_->wire_bytes_written();
  // We may be inside one of its callbacks: destroy it on a later turn.
  loop_.DeferDelete(std::move(transport_));
}

void Client::LinkLost(const Status& why) {
  // Best effort: a protocol error leaves a DISCONNECT in the buffer.
  if (transport_ && !write_buffer_.empty()) {
    std::vector<std::string> bufs{std::move(write_buffer_)};
    (void)transport_->Write(std::move(bufs));
  }
  write_buffer_.clear();
  subscribing_.clear();
  bool was_connected = session_.connected();
  uint8_t protocol_before = session_.protocol();
  session_.OnConnectionLost(why);
  ReleaseTransport();
  last_error_ = why;
  if (stopping_) {
    FinishStop();
    return;
  }
  uint64_t now = loop_.NowMs();
  bool healthy = was_connected && now - connected_at_ms_ >= options_.healthy_after_ms;
  if (healthy) backoff_.Reset();
  std::string lost_url = current_url();
  // The next broker of the round at once; the backoff only between rounds.
  uint64_t delay = rotation_.OnFailure(healthy) ? backoff_.NextDelayMs() : 0;
  std::string fallback =
      session_.protocol() != protocol_before ? " (falling back to MQTT 3.1.1)" : "";
  std::string delay_s = std::to_string(delay);
  std::string attempt = std::to_string(backoff_.attempt());
  std::string cause = why.ToString() + fallback;
  ES_LOG_WARN(was_connected ? "uplink lost; reconnecting" : "uplink connect failed; retrying",
              {{"url", lost_url},
               {"cause", cause},
               {"next", current_url()},
               {"retry_in_ms", delay_s},
               {"attempt", attempt}});
  listener_->OnDisconnected(why);
  reconnect_timer_.Start(delay, 0, [this] { Connect(); });
}

void Client::Stop(std::function<void()> on_stopped) {
  on_stopped_ = std::move(on_stopped);
  stopping_ = true;
  switching_ = false;  // a switch under way ends here: its old link closes as ours
  reconnect_timer_.Stop();
  connect_request_.reset();
  if (!transport_) {
    FinishStop();
    return;
  }
  session_.Disconnect(&write_buffer_);
  Flush();
  // Close once the DISCONNECT has reached the kernel (or after 1 s).
  auto deadline = loop_.NowMs() + 1000;
  stop_timer_.Start(5, 5, [this, deadline] {
    if (transport_ && transport_->write_queue_bytes() > 0 && loop_.NowMs() < deadline) return;
    stop_timer_.Stop();
    ReleaseTransport();
    FinishStop();
  });
}

Result<Endpoint> Client::MakeEndpoint(const std::vector<std::string>& urls,
                                      FailoverOrder failover, const TlsOptions& tls,
                                      std::optional<std::string> username,
                                      std::optional<std::string> password) {
  auto parsed = ParseUrls(urls);
  if (!parsed.ok()) return parsed.status();
  Endpoint e;
  if (AnyTls(*parsed)) {
    auto config = TlsConfig::Create(tls);
    if (!config.ok()) return config.status();
    e.tls = std::move(config).value();
  }
  e.urls = std::move(parsed).value();
  e.failover = failover;
  e.username = std::move(username);
  e.password = std::move(password);
  return e;
}

void Client::SwitchEndpoint(Endpoint endpoint) {
  std::string from = current_url();
  size_t keep = IndexOf(endpoint.urls, urls_[rotation_.current()]);
  bool stay = endpoint.list_only && keep != BrokerRotation::kNone &&
              endpoint.failover == options_.failover;
  options_.failover = endpoint.failover;
  urls_ = std::move(endpoint.urls);
  // The broker of the link (or of the attempt under way) stays current: a
  // new round from it.
  rotation_ = BrokerRotation(urls_.size(), options_.failover, Seed(options_.backoff_seed));
  rotation_.Reset(urls_.size(), keep);
  if (last_connected_ != BrokerRotation::kNone) last_connected_ = keep;
  if (stay) {
    ES_LOG_INFO("uplink broker list changed; staying on the current broker",
                {{"url", current_url()}, {"brokers", std::to_string(urls_.size())}});
    return;
  }
  tls_ = std::move(endpoint.tls);
  bool was_connected = session_.connected();
  // A graceful DISCONNECT first: the old broker must not publish our will
  // (we are not gone, only moving). Drop() returns what is in flight to the
  // front of the queue, for the new connection.
  if (transport_) {
    session_.Disconnect(&write_buffer_);
    Flush();
  } else if (session_.connecting()) {
    session_.OnConnectionLost(Status::Cancelled("switching endpoint"));
  }
  session_.NewPeer(std::move(endpoint.username), std::move(endpoint.password));
  ES_LOG_INFO("uplink endpoint changed", {{"from", from}, {"to", current_url()}});
  if (!started_ || stopping_) return;
  connect_request_.reset();  // a connect under way is abandoned (its callback never runs)
  reconnect_timer_.Stop();
  subscribing_.clear();
  backoff_.Reset();
  if (was_connected)
    listener_->OnDisconnected(Status::Cancelled("switching to " + current_url()));
  if (!transport_) return FinishSwitch();
  // The old broker closes the connection once it has read the DISCONNECT;
  // closing first could reset it with the DISCONNECT still unread in the
  // broker's socket (a reset discards it), and then the will goes out. So
  // the old link is read to its end (OnEnd), for at most 1 s.
  switching_ = true;
  auto deadline = loop_.NowMs() + 1000;
  stop_timer_.Start(5, 5, [this, deadline] {
    if (transport_ && loop_.NowMs() < deadline) return;
    FinishSwitch();
  });
}

void Client::FinishSwitch() {
  switching_ = false;
  stop_timer_.Stop();
  ReleaseTransport();
  // The old link may have ended by itself meanwhile (LinkLost scheduled a
  // retry after a backoff): connect now instead.
  reconnect_timer_.Stop();
  if (!connect_request_) Connect();
}

void Client::FinishStop() {
  if (!started_) return;
  started_ = false;
  stop_timer_.Stop();
  tick_timer_.Stop();
  flusher_.Stop();
  reconnect_timer_.Stop();
  if (session_.connected() || session_.connecting()) session_.OnConnectionLost(Status::Cancelled("stopped"));
  subscribing_.clear();
  ES_LOG_INFO("uplink stopped", {{"url", current_url()}});
  auto done = std::move(on_stopped_);
  on_stopped_ = nullptr;
  if (done) done();
}

Result<uint64_t> Client::Publish(OutgoingMessage msg) {
  auto token = session_.Publish(std::move(msg));
  if (token.ok() && transport_) Wake();
  return token;
}

Status Client::AckIncoming(uint64_t ack_token, uint8_t reason_code) {
  Status st = session_.AckIncoming(ack_token, reason_code, &write_buffer_);
  if (!write_buffer_.empty() && transport_) Wake();
  return st;
}

Status Client::Subscribe(std::string filter, uint8_t qos) {
  if (!IsValidTopicFilter(filter)) {
    return Status::InvalidArgument("invalid topic filter \"" + filter + "\"");
  }
  options_.subscriptions.emplace_back(filter, qos);
  if (!session_.connected()) return Status::Ok();
  return SendSubscribe({{std::move(filter), qos}});
}

Status Client::SendSubscribe(const std::vector<std::pair<std::string, uint8_t>>& filters) {
  auto id = session_.Subscribe(filters, &write_buffer_);
  if (!id.ok()) return id.status();
  std::vector<std::string> names;
  for (const auto& f : filters) names.push_back(f.first);
  subscribing_[*id] = std::move(names);
  Wake();
  return Status::Ok();
}

// ------------------------------------------------------------ session events

void Client::OnConnected(const ConnectInfo& info) {
  ++connects_;
  connected_at_ms_ = loop_.NowMs();
  size_t broker = rotation_.current();
  if (last_connected_ != BrokerRotation::kNone && last_connected_ != broker) ++failovers_;
  last_connected_ = broker;
  ES_LOG_INFO("uplink connected",
              {{"url", current_url()},
               {"protocol", info.protocol == kProtocol5 ? "5" : "3.1.1"},
               {"window", std::to_string(info.window)},
               {"resending", std::to_string(session_.queued_count())}});
  if (!options_.subscriptions.empty()) {
    Status st = SendSubscribe(options_.subscriptions);
    if (!st.ok()) ES_LOG_WARN("subscribe failed", {{"cause", st.ToString()}});
  }
  listener_->OnConnected(info);
  listener_->OnWritable();
}

void Client::OnPublishAcked(uint64_t token, uint8_t reason_code) {
  acked_since_check_ = true;
  listener_->OnPublishAcked(token, Status::Ok(), reason_code);
}

void Client::OnPublishRejected(uint64_t token, const Status& why, uint8_t reason_code) {
  acked_since_check_ = true;
  ES_LOG_WARN("publish rejected", {{"cause", why.ToString()}});
  listener_->OnPublishAcked(token, why, reason_code);
}

void Client::OnMessage(const IncomingMessage& msg) { listener_->OnMessage(msg); }

void Client::OnSubscribed(uint16_t packet_id, const std::vector<uint8_t>& reason_codes) {
  // The session checked that the id is ours and the counts match.
  auto it = subscribing_.find(packet_id);
  if (it != subscribing_.end()) {
    for (size_t i = 0; i < reason_codes.size() && i < it->second.size(); ++i) {
      if (reason_codes[i] < 0x80) continue;
      char code[8];
      std::snprintf(code, sizeof code, "0x%02X", reason_codes[i]);
      ES_LOG_WARN("subscription refused by the broker",
                  {{"filter", it->second[i]}, {"reason", ReasonName(reason_codes[i])},
                   {"code", code}});
    }
    subscribing_.erase(it);
  }
  listener_->OnSubscribed(reason_codes);
}

}  // namespace edgespool::sync::mqtt
