#include "sync/mqtt_uplink.h"

#include <unordered_map>

#include "platform/clock.h"
#include "platform/log.h"
#include "sync/mqtt/client.h"

namespace edgespool::sync {

namespace {

InboundPublish ToInbound(const mqtt::IncomingMessage& m) {
  InboundPublish in;
  in.topic = std::string(m.topic);
  in.payload = std::string(m.payload);
  in.qos = m.qos;
  in.retain = m.retain;
  in.dup = m.dup;
  in.ack_token = m.ack_token;
  if (m.properties) {
    const mqtt::Properties& p = *m.properties;
    in.message_expiry_s = p.message_expiry_s;
    in.response_topic = std::string(p.response_topic.value_or(""));
    in.correlation_data = std::string(p.correlation_data.value_or(""));
    in.content_type = std::string(p.content_type.value_or(""));
    in.user_properties.reserve(p.user_properties.size());
    for (const mqtt::UserProperty& u : p.user_properties) {
      in.user_properties.emplace_back(std::string(u.key), std::string(u.value));
    }
  }
  return in;
}

// An empty username or password is "none" (uplink.username = "").
struct SessionCredentials {
  std::optional<std::string> username, password;
};
SessionCredentials Credentials(const MqttUplinkOptions& options) {
  SessionCredentials c;
  if (!options.username.empty()) c.username = options.username;
  if (!options.password.empty()) c.password = options.password;
  return c;
}

std::string UrlText(const BrokerUrl& u) {
  return std::string(u.tls ? "mqtts://" : "mqtt://") +
         (u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host) + ":" +
         std::to_string(u.port);
}

std::vector<std::string> UrlTexts(const std::vector<BrokerUrl>& urls) {
  std::vector<std::string> out;
  for (const BrokerUrl& u : urls) out.push_back(UrlText(u));
  return out;
}

mqtt::SessionOptions ToSessionOptions(const MqttUplinkOptions& options) {
  mqtt::SessionOptions s;
  s.protocol = options.protocol;
  s.client_id = options.client_id;
  SessionCredentials c = Credentials(options);
  s.username = c.username;
  s.password = c.password;
  s.keepalive_s = options.keepalive_s;
  s.inflight = options.inflight;
  s.ack_timeout_ms = options.ack_timeout_ms;
  s.clean_start = options.clean_start;
  s.session_expiry_s = options.session_expiry_s;
  s.receive_maximum = options.receive_maximum;
  s.strict_receive_maximum = options.strict_receive_maximum;
  // Always: without an inbound listener the uplink acks on receipt itself.
  s.manual_acks = true;
  if (!options.will_topic.empty()) {
    mqtt::WillMessage will;
    will.topic = options.will_topic;
    will.payload = options.will_payload;
    will.qos = 1;
    will.retain = true;
    s.will = will;
  }
  return s;
}

mqtt::ClientOptions ToClientOptions(const MqttUplinkOptions& options) {
  mqtt::ClientOptions o;
  o.urls = UrlTexts(options.urls);
  o.failover = options.failover;
  o.session = ToSessionOptions(options);
  o.tls = options.tls;
  o.backoff_initial_ms = static_cast<uint64_t>(options.backoff_initial_ms);
  o.backoff_max_ms = static_cast<uint64_t>(options.backoff_max_ms);
  for (const std::string& filter : options.subscriptions) o.subscriptions.emplace_back(filter, 1);
  return o;
}

}  // namespace

// The client's listener; forwards to the worker's UplinkPort::Listener and
// keeps the state the status document shows.
class MqttUplink::Impl : public mqtt::ClientListener {
 public:
  explicit Impl(MqttUplink* owner) : owner_(owner) {}

  void OnConnected(const mqtt::ConnectInfo& info) override {
    owner_->connected_since_ms_ = platform::SystemClock::Get().WallMs();
    ES_LOG_INFO("uplink connected",
                {{"url", client->current_url()}, {"protocol", info.protocol == 5 ? "5" : "3.1.1"},
                 {"window", std::to_string(info.window)},
                 {"max_packet", std::to_string(info.maximum_packet_size)},
                 {"session_present", info.session_present ? "true" : "false"}});
    owner_->SetState("connected");
    rm_exceeded_at_connect = rm_exceeded_logged = client->receive_maximum_exceeded();
    if (listener.on_connected) listener.on_connected();
  }
  void OnDisconnected(const Status& why) override {
    bool was_connected = owner_->state_ == "connected";
    owner_->last_error_ = why.ToString();
    owner_->last_error_ms_ = platform::SystemClock::Get().WallMs();
    owner_->connected_since_ms_ = 0;
    ++owner_->reconnects_;
    if (!stopping) owner_->SetState("backoff");
    if (was_connected && listener.on_disconnected) listener.on_disconnected(why.ToString());
  }
  void OnPublishAcked(uint64_t token, const Status& status, uint8_t reason_code) override {
    auto own = own_results.find(token);
    if (own == own_results.end() && !listener.on_publish_result) return;
    PublishResult r;
    r.reason_code = reason_code;
    if (status.ok()) {
      r.outcome = PublishOutcome::kAcked;
    } else {
      r.outcome = PublishOutcome::kRejected;
      r.reason = status.message();
    }
    if (own != own_results.end()) {
      auto cb = std::move(own->second);
      own_results.erase(own);
      if (cb) cb(r);
      return;
    }
    listener.on_publish_result(token, r);
  }
  void OnWritable() override {
    if (listener.on_writable) listener.on_writable();
  }
  void OnMessage(const mqtt::IncomingMessage& msg) override {
    ++owner_->inbound_received_;
    uint64_t over = client->receive_maximum_exceeded();
    if (over > rm_exceeded_logged) {
      if (rm_exceeded_logged == rm_exceeded_at_connect) {
        ES_LOG_WARN("broker exceeds our Receive Maximum; tolerated",
                    {{"url", client->current_url()}, {"exceeded_total", std::to_string(over)}});
      }
      rm_exceeded_logged = over;
    }
    if (!on_inbound) {
      // Nobody to make it durable: acknowledge on receipt, as a plain client does.
      if (msg.ack_token) owner_->AckInbound(msg.ack_token);
      return;
    }
    on_inbound(ToInbound(msg));
  }
  void OnSubscribed(const std::vector<uint8_t>& reason_codes) override {
    // The client logged each refusal with its filter.
    for (uint8_t rc : reason_codes) {
      ++(rc >= 0x80 ? owner_->subscribe_refusals_ : owner_->subscriptions_granted_);
    }
  }

  MqttUplink* owner_;
  std::unique_ptr<mqtt::Client> client;
  Listener listener;
  bool stopping = false;
  platform::Loop* loop = nullptr;
  // Client tokens count up from 1; local refusals use the top of the range.
  uint64_t next_local_token = uint64_t{1} << 62;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  std::unordered_map<uint64_t, std::function<void(const PublishResult&)>> own_results;
  std::function<void(InboundPublish)> on_inbound;
  // Receive Maximum excess is logged once per connection.
  uint64_t rm_exceeded_at_connect = 0;
  uint64_t rm_exceeded_logged = 0;
};

Result<std::unique_ptr<MqttUplink>> MqttUplink::Create(platform::Loop& loop,
                                                       MqttUplinkOptions options) {
  std::unique_ptr<MqttUplink> up(new MqttUplink());
  up->impl_ = std::make_unique<Impl>(up.get());
  up->impl_->loop = &loop;
  auto client = mqtt::Client::Create(loop, ToClientOptions(options), up->impl_.get());
  if (!client.ok()) return client.status();
  up->impl_->client = std::move(*client);
  return up;
}

Result<mqtt::Endpoint> MqttUplink::PrepareEndpoint(const MqttUplinkOptions& options) {
  const SessionCredentials c = Credentials(options);
  return mqtt::Client::MakeEndpoint(UrlTexts(options.urls), options.failover, options.tls,
                                    c.username, c.password);
}

void MqttUplink::SwitchEndpoint(mqtt::Endpoint endpoint) {
  bool was_connected = connected();
  impl_->client->SwitchEndpoint(std::move(endpoint));
  if (was_connected && connected()) {
    if (on_state_) on_state_();  // the same link; the list in the status changed
    return;
  }
  if (!impl_->stopping && state_ != "stopped") SetState("connecting");
}

std::string MqttUplink::current_url() const { return impl_->client->current_url(); }
uint64_t MqttUplink::failovers() const { return impl_->client->failovers(); }
std::vector<std::string> MqttUplink::broker_urls() const {
  std::vector<std::string> out;
  for (const BrokerUrl& u : impl_->client->urls()) out.push_back(u.Redacted());
  return out;
}

MqttUplink::~MqttUplink() {
  if (impl_) impl_->client.reset();
}

void MqttUplink::Start() {
  impl_->stopping = false;
  SetState("connecting");
  impl_->client->Start();
}

void MqttUplink::Stop(std::function<void()> done) {
  impl_->stopping = true;
  impl_->client->Stop([this, done = std::move(done)] {
    SetState("stopped");
    if (done) done();
  });
}

void MqttUplink::SetState(std::string state) {
  if (state == state_) return;
  state_ = std::move(state);
  if (on_state_) on_state_();
}

void MqttUplink::SetListener(Listener listener) { impl_->listener = std::move(listener); }
bool MqttUplink::connected() const { return impl_->client->connected(); }
size_t MqttUplink::window_free() const { return impl_->client->capacity(); }
uint32_t MqttUplink::max_packet_size() const {
  return connected() ? impl_->client->max_packet_size() : 0;
}
uint64_t MqttUplink::stale_acks() const { return impl_->client->stale_acks(); }
uint64_t MqttUplink::receive_maximum_exceeded() const {
  return impl_->client->receive_maximum_exceeded();
}

void MqttUplink::SetInboundListener(std::function<void(InboundPublish)> on_message) {
  impl_->on_inbound = std::move(on_message);
}

void MqttUplink::AckInbound(uint64_t ack_token) {
  if (ack_token == 0) return;  // QoS 0: nothing to acknowledge
  uint64_t stale_before = impl_->client->stale_acks();
  Status st = impl_->client->AckIncoming(ack_token);
  if (!st.ok()) {
    // The caller's bookkeeping is off; the broker's session is unharmed.
    ES_LOG_WARN("inbound ack refused", {{"cause", st.ToString()}});
    return;
  }
  if (impl_->client->stale_acks() == stale_before) ++inbound_acked_;
}

bool MqttUplink::properties_supported() const { return impl_->client->protocol() == 5; }
uint64_t MqttUplink::wire_bytes() const { return impl_->client->wire_bytes(); }

uint64_t MqttUplink::Publish(OutboundPublish publish) {
  mqtt::OutgoingMessage m;
  m.topic = std::move(publish.topic);
  m.payload = std::move(publish.payload);
  m.qos = 1;
  m.retain = publish.retain;
  if (publish.message_expiry_s) m.message_expiry_s = publish.message_expiry_s;
  m.user_properties = std::move(publish.user_properties);
  auto token = impl_->client->Publish(std::move(m));
  if (token.ok()) return *token;
  // Refused before it was queued (e.g. an invalid topic): report it like a
  // broker refusal under a token of our own, on a later turn, because the
  // caller records the token only after Publish returns.
  uint64_t local = impl_->next_local_token++;
  PublishResult r;
  r.outcome = token.status().code() == Code::kInvalidArgument ? PublishOutcome::kRejected
                                                               : PublishOutcome::kRetry;
  r.reason = token.status().message();
  std::weak_ptr<bool> alive = impl_->alive;
  impl_->loop->Post([this, alive, local, r] {
    if (alive.expired()) return;
    if (impl_->listener.on_publish_result) impl_->listener.on_publish_result(local, r);
  });
  return local;
}

}  // namespace edgespool::sync

namespace edgespool::sync {

void MqttUplink::PublishOwn(OutboundPublish publish,
                            std::function<void(const PublishResult&)> on_result) {
  mqtt::OutgoingMessage m;
  m.topic = std::move(publish.topic);
  m.payload = std::move(publish.payload);
  m.qos = 1;
  m.retain = publish.retain;
  if (publish.message_expiry_s) m.message_expiry_s = publish.message_expiry_s;
  m.user_properties = std::move(publish.user_properties);
  m.response_topic = std::move(publish.response_topic);
  m.correlation_data = std::move(publish.correlation_data);
  auto token = impl_->client->Publish(std::move(m));
  if (!token.ok()) {
    PublishResult r;
    r.outcome = PublishOutcome::kRejected;
    r.reason = token.status().message();
    if (on_result) on_result(r);
    return;
  }
  impl_->own_results[*token] = std::move(on_result);
}

}  // namespace edgespool::sync
