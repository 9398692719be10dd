#include "sync/mqtt_uplink.h"

#include <unordered_map>

#include "platform/clock.h"
#include "platform/log.h"
#include "sync/mqtt/client.h"

namespace edgespool::sync {

// The client's listener; forwards to the worker's UplinkPort::Listener and
// keeps the state the status document shows.
class MqttUplink::Impl : public mqtt::ClientListener {
 public:
  explicit Impl(MqttUplink* owner) : owner_(owner) {}

  void OnConnected(const mqtt::ConnectInfo& info) override {
    owner_->connected_since_ms_ = platform::SystemClock::Get().WallMs();
    ES_LOG_INFO("uplink connected",
                {{"url", url_redacted}, {"protocol", info.protocol == 5 ? "5" : "3.1.1"},
                 {"window", std::to_string(info.window)},
                 {"max_packet", std::to_string(info.maximum_packet_size)},
                 {"session_present", info.session_present ? "true" : "false"}});
    owner_->SetState("connected");
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

  MqttUplink* owner_;
  std::unique_ptr<mqtt::Client> client;
  Listener listener;
  std::string url_redacted;
  bool stopping = false;
  platform::Loop* loop = nullptr;
  // Client tokens count up from 1; local refusals use the top of the range.
  uint64_t next_local_token = uint64_t{1} << 62;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  std::unordered_map<uint64_t, std::function<void(const PublishResult&)>> own_results;
};

Result<std::unique_ptr<MqttUplink>> MqttUplink::Create(platform::Loop& loop,
                                                       MqttUplinkOptions options) {
  std::unique_ptr<MqttUplink> up(new MqttUplink());
  up->impl_ = std::make_unique<Impl>(up.get());
  up->impl_->url_redacted = options.url.Redacted();
  up->impl_->loop = &loop;
  mqtt::ClientOptions o;
  o.url = std::string(options.url.tls ? "mqtts://" : "mqtt://") +
          (options.url.host.find(':') != std::string::npos ? "[" + options.url.host + "]"
                                                            : options.url.host) +
          ":" + std::to_string(options.url.port);
  o.protocol = options.protocol;
  o.client_id = options.client_id;
  if (!options.username.empty()) o.username = options.username;
  if (!options.password.empty()) o.password = options.password;
  o.keepalive_s = options.keepalive_s;
  o.inflight = options.inflight;
  o.ack_timeout_ms = options.ack_timeout_ms;
  o.tls = options.tls;
  o.backoff_initial_ms = static_cast<uint64_t>(options.backoff_initial_ms);
  o.backoff_max_ms = static_cast<uint64_t>(options.backoff_max_ms);
  if (!options.will_topic.empty()) {
    mqtt::WillMessage will;
    will.topic = options.will_topic;
    will.payload = options.will_payload;
    will.qos = 1;
    will.retain = true;
    o.will = will;
  }
  auto client = mqtt::Client::Create(loop, std::move(o), up->impl_.get());
  if (!client.ok()) return client.status();
  up->impl_->client = std::move(*client);
  return up;
}

MqttUplink::~MqttUplink() {
  if (impl_) impl_->client.reset();
}

void MqttUplink::Start() {
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
