#include "agent/agent.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>

#include "agent/agent_metrics.h"
#include "agent/audit_log.h"
#include "agent/daemon.h"
#include "agent/downlink/downlink.h"
#include "agent/encryption.h"
#include "agent/http/metrics.h"
#include "agent/http/server.h"
#include "agent/loop_lag.h"
#include "agent/methods/methods.h"
#include "agent/reload.h"
#include "agent/startup_keepalive.h"
#include "agent/server/producer_server.h"
#include "agent/status_document.h"
#include "agent/watchdog.h"
#include "agent/websocket/server.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/process_info.h"
#include "platform/sd_notify.h"
#include "store/journal.h"
#include "sync/mqtt_uplink.h"
#include "sync/sync_worker.h"

namespace edgespool::agent {

namespace {

// The `reason` of the ack:"delivered" second reply for an expired message.
constexpr char kExpiredReason[] = "ttl ran out before it was uploaded";

store::Priority ParsePriority(const std::string& p) {
  if (p == "high") return store::Priority::kHigh;
  if (p == "low") return store::Priority::kLow;
  return store::Priority::kNormal;
}

store::JournalOptions JournalOptionsFrom(const Config& c) {
  store::JournalOptions o;
  o.path = c.store.path;
  o.max_bytes = static_cast<uint64_t>(c.store.max_bytes);
  o.when_full =
      c.store.when_full == "drop-oldest" ? store::WhenFull::kDropOldest : store::WhenFull::kReject;
  o.durability =
      c.store.durability == "normal" ? store::Durability::kNormal : store::Durability::kFull;
  o.sent_retention_ms = c.store.sent_retention_ms;
  o.cleanup_interval_ms = c.store.cleanup_interval_ms;
  o.group_max_messages = static_cast<uint32_t>(c.store.group_max_messages);
  o.group_max_delay_us = c.store.group_max_delay_ms * 1000;
  o.dedupe_window_ms = c.store.dedupe_window_ms;
  o.dedupe_max_ids = static_cast<uint32_t>(c.store.dedupe_max_ids);
  o.inbox_max_bytes = static_cast<uint64_t>(c.downlink.max_bytes);
  o.high_water = c.store.high_water;
  return o;
}

sync::SyncOptions SyncOptionsFrom(const Config& c) {
  sync::SyncOptions o;
  o.node = c.node.id;
  o.default_mode = c.sync.mode == "batch" ? sync::UploadMode::kBatch : sync::UploadMode::kMessage;
  for (const auto& r : c.routes) {
    sync::Route route;
    route.match = r.match;
    if (!r.priority.empty()) route.priority = ParsePriority(r.priority);
    route.ttl_ms = r.ttl_ms;
    route.mode = r.mode.empty()
                     ? o.default_mode
                     : (r.mode == "batch" ? sync::UploadMode::kBatch : sync::UploadMode::kMessage);
    route.order =
        r.order == "live-first" ? sync::UploadOrder::kLiveFirst : sync::UploadOrder::kStrict;
    route.upstream_topic = r.upstream_topic;
    route.encrypt = r.encrypt == "aes-256-gcm";
    o.routes.push_back(route);
  }
  o.batch_messages = static_cast<uint32_t>(c.sync.batch_messages);
  o.batch_bytes = static_cast<uint32_t>(c.sync.batch_bytes);
  o.linger_ms = c.sync.linger_ms;
  o.compression_level = static_cast<int>(c.sync.compression_level);
  o.bandwidth_limit = c.sync.bandwidth_limit;
  o.max_attempts = static_cast<uint32_t>(c.sync.max_attempts);
  o.batch_topic = c.sync.batch_topic;
  o.priority_weights.assign(c.sync.priority_weights.begin(), c.sync.priority_weights.end());
  o.backlog_share = static_cast<uint32_t>(c.sync.backlog_share);
  return o;
}

ProducerServerOptions ProducerOptionsFrom(const Config& c) {
  ProducerServerOptions o;
  o.socket_path = c.producer.socket;
  o.socket_mode = static_cast<unsigned>(c.producer.socket_mode);
  o.max_message_bytes = static_cast<uint64_t>(c.producer.max_message_bytes);
  o.max_connections = static_cast<size_t>(c.producer.max_connections);
  for (const auto& a : c.acls) {
    AclEntry e;
    if (a.uid >= 0) e.uid = static_cast<uint32_t>(a.uid);
    if (a.gid >= 0) e.gid = static_cast<uint32_t>(a.gid);
    e.publish = a.publish;
    e.subscribe = a.subscribe;
    e.respond = a.respond;
    o.acl.push_back(e);
  }
  for (const auto& r : c.rate_limits) {
    RateLimitRule rule;
    if (r.uid >= 0) rule.uid = static_cast<uint32_t>(r.uid);
    if (r.gid >= 0) rule.gid = static_cast<uint32_t>(r.gid);
    rule.messages_per_second = r.messages_per_second;
    rule.bytes_per_second = r.bytes_per_second;
    rule.burst = r.burst;
    o.rate_limits.push_back(rule);
  }
  return o;
}

// The built-in downlink filter first: it decides for edgespool/{node}/down/...
// even where a [[subscription]] overlaps it (topic_map.h).
downlink::DownlinkOptions DownlinkOptionsFrom(const Config& c) {
  downlink::DownlinkOptions o;
  o.mappings.push_back({ExpandNode(c.downlink.topic, c.node.id), "down/{suffix}", 0, 0});
  for (const auto& s : c.subscriptions) {
    o.mappings.push_back({ExpandNode(s.filter, c.node.id), s.local_topic,
                          static_cast<uint64_t>(s.max_message_bytes), s.ttl_ms});
  }
  o.writer.max_message_bytes = static_cast<uint64_t>(c.downlink.max_message_bytes);
  o.hub.default_window = static_cast<uint32_t>(c.downlink.window);
  o.hub.session_expiry_ms = c.downlink.session_expiry_ms;
  o.hub.retention_ms = c.downlink.retention_ms;
  // WebSocket sessions are hub sessions too: they must not crowd out the
  // Unix-socket consumers' room.
  if (!c.websocket.listen.empty()) {
    o.hub.max_sessions += static_cast<size_t>(c.websocket.max_sessions);
  }
  return o;
}

methods::MethodsOptions MethodsOptionsFrom(const Config& c) {
  methods::MethodsOptions o;
  o.reply_prefix = ExpandNode(c.requests.reply_topic, c.node.id);
  o.method_prefix = ExpandNode(c.requests.method_topic, c.node.id);
  o.default_call_timeout_ms = c.requests.method_timeout_ms;
  o.requests.max_pending = static_cast<size_t>(c.requests.max_pending);
  o.requests.max_per_connection = static_cast<size_t>(c.requests.max_pending_per_connection);
  o.max_pending_calls = static_cast<size_t>(c.requests.max_pending);
  o.max_call_bytes = static_cast<uint64_t>(c.downlink.max_message_bytes);
  return o;
}

// The uplink's options from the configuration: everything MqttUplink::Create
// takes, the password read from its file.
Result<sync::MqttUplinkOptions> UplinkOptionsFrom(const Config& c) {
  sync::MqttUplinkOptions o;
  for (size_t i = 0; i < c.uplink.url.size(); ++i) {
    auto url = sync::ParseBrokerUrl(c.uplink.url[i]);
    if (!url.ok()) {
      return url.status().Annotate(c.uplink.url.size() == 1
                                       ? std::string("uplink.url")
                                       : "uplink.url #" + std::to_string(i + 1));
    }
    o.urls.push_back(*url);
  }
  o.failover = c.uplink.failover == "random" ? sync::FailoverOrder::kRandom
                                             : sync::FailoverOrder::kOrdered;
  o.tls.ca_file = c.uplink.ca_file;
  o.tls.ca_dir = c.uplink.ca_dir;
  o.tls.cert_file = c.uplink.cert_file;
  o.tls.key_file = c.uplink.key_file;
  o.tls.server_name = c.uplink.server_name;
  o.tls.verify = c.uplink.tls_verify;
  o.protocol = static_cast<uint8_t>(c.uplink.protocol);
  o.client_id = c.uplink.client_id;
  o.username = c.uplink.username;
  if (!c.uplink.password_file.empty()) {
    auto pw = platform::ReadWholeFile(c.uplink.password_file);
    if (!pw.ok()) return pw.status().Annotate("uplink.password_file");
    std::string p = *pw;
    auto nl = p.find_first_of("\r\n");
    if (nl != std::string::npos) p.resize(nl);
    o.password = p;
  }
  o.keepalive_s = static_cast<uint16_t>(c.uplink.keepalive_ms / 1000);
  o.inflight = static_cast<uint16_t>(c.uplink.inflight);
  o.ack_timeout_ms = static_cast<uint32_t>(c.uplink.ack_timeout_ms);
  o.backoff_initial_ms = c.sync.backoff_initial_ms;
  o.backoff_max_ms = c.sync.backoff_max_ms;
  return o;
}

bool UsesTls(const Config& c) {
  for (const std::string& url : c.uplink.url) {
    if (url.rfind("mqtts://", 0) == 0) return true;
  }
  return false;
}

// What the uplink's credential files hold (password; CA, client certificate
// and key when the URL is mqtts://), hashed: a reload reconnects when a file
// was rotated in place, under the same name. An unreadable file hashes as
// such; loading it is what reports the error.
uint64_t CredentialFilesDigest(const Config& c) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  auto mix = [&h](const std::string& bytes) {
    for (unsigned char ch : bytes) {
      h ^= ch;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  bool tls = UsesTls(c);
  for (const std::string* path :
       {&c.uplink.password_file, &c.uplink.ca_file, &c.uplink.cert_file, &c.uplink.key_file}) {
    if (path->empty() || (!tls && path != &c.uplink.password_file)) continue;
    auto bytes = platform::ReadWholeFile(*path);
    mix(*path);
    mix(bytes.ok() ? *bytes : "unreadable: " + bytes.status().ToString());
  }
  return h;
}

// Whether a change to one of these keys is among `keys` ("route" matches
// "route", "route[2].ttl").
bool AnyChanged(const std::vector<std::string>& keys, std::initializer_list<const char*> prefixes) {
  for (const std::string& k : keys) {
    for (const char* p : prefixes) {
      if (k.compare(0, std::strlen(p), p) == 0) return true;
    }
  }
  return false;
}

void FillDownlinkMetrics(const downlink::Downlink& d, int64_t now_ms,
                         MetricInputs::Downlink* out) {
  downlink::InboundWriterStats w = d.writer().stats();
  downlink::HubStats h = d.hub().stats();
  out->received = w.received_total;
  out->stored = w.stored_total;
  out->dead = w.dead_total;
  out->unmatched = w.unmatched_total;
  out->delivered = h.delivered_total;
  out->acked = h.acked_total;
  out->dropped = h.dropped_total;
  out->sessions = h.sessions;
  out->attached = h.attached;
  for (const downlink::SessionSnapshot& s : d.hub().Sessions()) {
    out->inflight += s.inflight;
    out->oldest_unacked_age_s =
        std::max(out->oldest_unacked_age_s, static_cast<double>(s.oldest_unacked_age_ms) / 1000.0);
  }
}

void FillRequestMetrics(const methods::MethodsStats& s, MetricInputs::Requests* out) {
  out->total = s.requests_total;
  out->answered = s.requests_answered_total;
  out->timeout = s.requests_timeout_total;
  out->unavailable = s.requests_unavailable_total;
  out->busy = s.requests_busy_total;
  out->late_answers = s.late_answers_total;
  out->unknown_answers = s.unknown_answers_total;
  out->pending = s.requests_pending;
  out->calls = s.calls_total;
  out->calls_answered = s.calls_answered_total;
  out->calls_no_handler = s.calls_no_handler_total;
  out->calls_timeout = s.calls_timeout_total;
  out->calls_refused = s.calls_refused_total;
  out->late_call_answers = s.late_call_answers_total;
  out->calls_pending = s.calls_pending;
}

}  // namespace

class Agent::Impl {
 public:
  Impl(platform::Loop& loop, const Config& config)
      : loop_(loop),
        config_(config),
        clock_(platform::SystemClock::Get()),
        notifier_(platform::SystemdNotifier::FromEnvironment(/*unset_environment=*/true)),
        status_timer_(loop),
        watermark_timer_(loop),
        shutdown_timer_(loop) {}

  Status Start();
  void Shutdown(std::function<void()> done);
  std::string StatusJson();
  ReloadOutcome Reload();

 private:
  // Applies a plan that was not refused; returns why it cannot be applied
  // ("" when applied). Everything that can fail is tried before anything
  // changes. extra_live gets changes found outside the configuration.
  std::string ApplyReload(const Config& next, const ReloadPlan& plan,
                          std::vector<std::string>* extra_live);
  void StartStatusTimer();
  void CountReload(bool ok);
  Status StartUplink();
  void StartProducers(int inherited_fd);
  void StartDownlink();
  void StartMethods();
  Status StartWebSocket();
  void CloseWebSockets(std::function<void()> next);
  ProducerServerHooks ProducerHooks();
  Status StartMetrics(const std::vector<platform::ListenFd>& fds);
  void RegisterMetrics();
  void PublishStatus();
  Status ApplyRoute(store::Message& m, int64_t now_ms);
  Status StartEncryption();
  void WaitForProducers(int64_t deadline_ms, std::function<void()> next);
  void WaitForInflight(int64_t deadline_ms, std::function<void()> next);
  std::string StatusLine();

  platform::Loop& loop_;
  Config config_;
  const platform::Clock& clock_;
  int64_t started_ms_ = 0;
  std::string status_topic_;
  std::string digest_;
  uint64_t credentials_digest_ = 0;

  platform::SystemdNotifier notifier_;
  std::unique_ptr<WatchdogPinger> watchdog_;
  std::unique_ptr<store::Journal> journal_;
  // Message-level encryption; null while encryption.key_file is not set.
  std::unique_ptr<MessageSealer> sealer_;
  std::unique_ptr<sync::MqttUplink> uplink_;
  std::unique_ptr<sync::SyncWorker> worker_;
  // Shared with the journal's expiry listener, which may run while the
  // journal closes.
  std::shared_ptr<const AuditLog> audit_;
  // After the uplink and the journal it uses, before the producer server
  // whose connections it serves (destroyed in reverse order).
  std::unique_ptr<downlink::Downlink> downlink_;
  // Likewise: it outlives the producer server, whose closing connections
  // it forgets.
  std::unique_ptr<methods::Methods> methods_;
  // After the downlink whose hub it uses, before the producer server whose
  // uplink tap feeds it.
  std::unique_ptr<websocket::WebSocketServer> websocket_;
  std::unique_ptr<ProducerServer> producers_;
  MetricsRegistry metrics_;
  std::unique_ptr<HttpServer> http_;
  SuccessWindow success_;
  platform::TimerHandle status_timer_;
  // Republishes the status when the upload watermark moved (status.
  // watermark_interval); published_watermark_ms_ is what the broker last got.
  platform::TimerHandle watermark_timer_;
  int64_t published_watermark_ms_ = 0;
  // Idle (status_document.h, watermark_follow): the broker's copy says so,
  // and the consumer follows our clock; nothing to republish until a message
  // is accepted (last_accept_ms_, wall clock) or status.interval.
  bool published_idle_ = false;
  bool rendered_idle_ = false;  // what the last StatusJson() said
  int64_t last_accept_ms_ = 0;
  platform::TimerHandle shutdown_timer_;
  bool shutting_down_ = false;

  Histogram* ack_latency_ = nullptr;
  Histogram* upload_latency_ = nullptr;
  Counter* reloads_ok_ = nullptr;
  Counter* reloads_refused_ = nullptr;
  Gauge* last_reload_ts_ = nullptr;
  Gauge* last_reload_ok_ = nullptr;
  std::unique_ptr<LoopLagProbe> loop_lag_;
};

Status Agent::Impl::Start() {
  started_ms_ = clock_.WallMs();
  digest_ = ConfigDigest(config_);
  credentials_digest_ = CredentialFilesDigest(config_);
  status_topic_ = ExpandNode(config_.status.topic, config_.node.id);

  auto fds = platform::TakeListenFds();
  if (!fds.ok()) ES_LOG_WARN("ignoring socket activation", {{"error", fds.status().ToString()}});
  std::vector<platform::ListenFd> listen_fds = fds.ok() ? *fds : std::vector<platform::ListenFd>{};

  // The journal first: nothing is accepted before there is somewhere durable to put it.
  auto dir = config_.store.path.substr(0, config_.store.path.find_last_of('/'));
  if (config_.store.path.find('/') != std::string::npos) {
    ES_RETURN_IF_ERROR(platform::MakeDirectories(dir, 0750).Annotate("store.path"));
  }
  // A big journal's slow steps (a full check after the background one found
  // corruption, a migration, counting the backlog after a crash) keep
  // systemd's start timeout at bay; the keepalive stops with Start().
  StartupKeepalive keepalive(notifier_.socket_path());
  store::JournalOptions journal_options = JournalOptionsFrom(config_);
  journal_options.on_slow_step = [&keepalive](const std::string& step) { keepalive.Step(step); };
  auto journal = store::Journal::Open(loop_, std::move(journal_options));
  if (!journal.ok()) return journal.status().Annotate("journal " + config_.store.path);
  journal_ = std::move(*journal);
  ES_LOG_INFO("journal open", {{"path", config_.store.path},
                               {"durability", config_.store.durability},
                               {"max_bytes", FormatSizeBytes(config_.store.max_bytes)},
                               {"pending", journal_->stats().pending_counting
                                               ? std::string("counting")
                                               : std::to_string(journal_->stats().pending_count)}});

  ES_RETURN_IF_ERROR(StartEncryption());
  ES_RETURN_IF_ERROR(StartUplink());
  StartDownlink();
  StartMethods();
  ES_RETURN_IF_ERROR(StartWebSocket());

  int inherited = -1;
  for (const auto& f : listen_fds) {
    if (f.is_unix && (f.name == "producer" || f.name == "unknown" || f.name.empty())) {
      inherited = f.fd;
      break;
    }
  }
  auto producers = ProducerServer::Start(
      loop_, *journal_,
      [&] {
        ProducerServerOptions o = ProducerOptionsFrom(config_);
        o.inherited_fd = inherited;
        o.reload_uid = platform::EffectiveUid();
        return o;
      }(),
      ProducerHooks());
  if (!producers.ok()) return producers.status().Annotate("producer.socket");
  producers_ = std::move(*producers);
  ES_LOG_INFO("producer socket ready",
              {{"socket", inherited >= 0 ? "(socket activation)" : config_.producer.socket}});

  // The journal takes one expiry listener; it fans out here to the audit log
  // and the producers waiting for an ack:"delivered" second reply. Told on
  // the loop thread after the cleanup step committed, which is after the
  // row's append callback (where the waiter was registered): the journal
  // posts its callbacks in order.
  journal_->SetExpiryListener([this](const std::vector<uint64_t>& seqs) {
    for (uint64_t seq : seqs) {
      if (audit_) audit_->Note("expired", seq);
      if (producers_) {
        producers_->NotifyDelivery(seq, store::MessageState::kExpired, kExpiredReason);
      }
    }
  });
  worker_->SetDeliveryListener(
      [this](uint64_t seq, store::MessageState state, const std::string& reason) {
        success_.Add(clock_.WallMs(), state == store::MessageState::kSent ? 1 : 0,
                     state == store::MessageState::kSent ? 0 : 1);
        if (audit_) audit_->Note(store::MessageStateName(state), seq, {}, reason);
        // Producers close first on shutdown while PUBACKs still arrive.
        if (producers_) producers_->NotifyDelivery(seq, state, reason);
      });
  worker_->Start();
  uplink_->Start();

  RegisterMetrics();
  ES_RETURN_IF_ERROR(StartMetrics(listen_fds));

  StartStatusTimer();
  (void)notifier_.Ready();
  (void)notifier_.Status(StatusLine());
  watchdog_ = std::make_unique<WatchdogPinger>(loop_, notifier_, [this] {
    // Healthy: the loop turns (we are running this) and the journal answers.
    return journal_ != nullptr;
  });
  watchdog_->Start();
  return Status::Ok();
}

Status Agent::Impl::StartUplink() {
  auto options = UplinkOptionsFrom(config_);
  if (!options.ok()) return options.status();
  sync::MqttUplinkOptions& o = *options;
  if (!o.tls.verify && UsesTls(config_)) {
    ES_LOG_WARN("uplink.tls_verify = false: the broker's certificate is NOT checked");
  }
  if (config_.downlink.enabled) {
    // A persistent session, so that what the broker has for the downlink
    // while we are away waits for us (docs/downlink.md).
    o.clean_start = false;
    o.session_expiry_s = static_cast<uint32_t>(config_.uplink.session_expiry_ms / 1000);
    o.receive_maximum = static_cast<uint16_t>(config_.downlink.receive_maximum);
    for (const auto& m : DownlinkOptionsFrom(config_).mappings) o.subscriptions.push_back(m.filter);
  }
  if (config_.requests.enabled) {
    methods::MethodsOptions m = MethodsOptionsFrom(config_);
    o.subscriptions.push_back(m.reply_prefix + "/#");
    o.subscriptions.push_back(m.method_prefix + "/#");
  }
  o.will_topic = status_topic_;
  o.will_payload = RenderOffline(config_.node.id, 0);
  auto uplink = sync::MqttUplink::Create(loop_, std::move(o));
  if (!uplink.ok()) return uplink.status().Annotate("uplink");
  uplink_ = std::move(*uplink);
  uplink_->SetStateListener([this] {
    ES_LOG_INFO(
        "uplink state",
        {{"state", uplink_->state()},
         {"url", uplink_->current_url()},
         {"error", uplink_->last_error()}});
    if (uplink_->connected()) PublishStatus();
    if (methods_) methods_->OnUplinkState();
    (void)notifier_.Status(StatusLine());
  });
  worker_ = std::make_unique<sync::SyncWorker>(loop_, *journal_, *uplink_, SyncOptionsFrom(config_),
                                               clock_);
  return Status::Ok();
}

ProducerServerHooks Agent::Impl::ProducerHooks() {
  ProducerServerHooks h;
  if (config_.audit.enabled) {
    audit_ = std::make_shared<const AuditLog>(true, config_.audit.sample);
    h.on_accepted = [audit = audit_](uint64_t seq, const std::string& topic) {
      audit->Note("accepted", seq, topic);
    };
  }
  h.uplink_connected = [this] { return uplink_ && uplink_->connected(); };
  h.status_json = [this] { return StatusJson(); };
  h.route = [this](store::Message& m, int64_t now_ms) { return ApplyRoute(m, now_ms); };
  h.on_ack_latency = [this](double s) {
    if (ack_latency_) ack_latency_->Observe(s);
  };
  h.reload = [this] { return Reload(); };
  if (downlink_) {
    // The downlink outlives the producer server (member order).
    downlink::ConsumerEndpoint* endpoint = &downlink_->endpoint();
    h.consumer_op = [endpoint](server::Connection& c, const protocol::Request& r) {
      endpoint->Handle(c, r);
    };
  }
  // Both outlive the producer server (member order).
  downlink::ConsumerEndpoint* endpoint = downlink_ ? &downlink_->endpoint() : nullptr;
  methods::Methods* methods = methods_.get();
  if (methods) {
    h.method_op = [methods](server::Connection& c, const protocol::Request& r,
                            std::string_view body) { methods->Handle(c, r, body); };
  }
  if (endpoint || methods) {
    h.on_closing = [endpoint, methods](server::Connection& c) {
      if (endpoint) endpoint->OnClosing(c);
      if (methods) methods->OnClosing(c);
    };
  }
  if (websocket_) {
    // The listener outlives the producer server (member order, and shutdown
    // closes the producers first).
    websocket::WebSocketServer* ws = websocket_.get();
    h.wants_stored = [ws](std::string_view topic) { return ws->WantsUplink(topic); };
    h.on_stored = [ws](uint64_t seq, const store::Message& m) { ws->OnUplinkStored(seq, m); };
    h.on_stored_untapped = [ws](uint64_t seq, std::string_view topic) {
      ws->OnUplinkUntapped(seq, topic);
    };
  }
  return h;
}

// Answers and calls go to Methods, everything else to the downlink's inbox
// (or, with the downlink off, is acknowledged and dropped, as the uplink
// does without a listener).
void Agent::Impl::StartMethods() {
  if (!config_.requests.enabled) return;
  methods_ = std::make_unique<methods::Methods>(loop_, *uplink_, MethodsOptionsFrom(config_));
  uplink_->SetInboundListener([this](sync::InboundPublish p) {
    if (methods_ && methods_->Claims(p.topic)) return methods_->OnInbound(std::move(p));
    if (downlink_) return downlink_->OnPublish(std::move(p));
    uplink_->AckInbound(p.ack_token);
  });
  ES_LOG_INFO("request/response on", {{"methods", MethodsOptionsFrom(config_).method_prefix + "/#"},
                                      {"replies", MethodsOptionsFrom(config_).reply_prefix + "/#"}});
}

void Agent::Impl::StartDownlink() {
  if (!config_.downlink.enabled) return;
  downlink_ = std::make_unique<downlink::Downlink>(loop_, *journal_, *uplink_,
                                                   DownlinkOptionsFrom(config_));
  ES_LOG_INFO("downlink on",
              {{"filters", std::to_string(downlink_->writer().map().mappings().size())}});
}

Status Agent::Impl::StartWebSocket() {
  const Config::WebSocket& c = config_.websocket;
  if (c.listen.empty()) return Status::Ok();
  auto addr = ParseListenAddress(c.listen);
  if (!addr.ok()) return addr.status().Annotate("websocket.listen");
  if (addr->kind != ListenAddress::Kind::kTcp) {
    return Status::InvalidArgument("websocket.listen: a TCP address:port, not a Unix socket");
  }
  websocket::WebSocketOptions o;
  o.host = addr->host;
  o.port = addr->port;
  if (!c.token_file.empty()) {
    auto token = platform::ReadWholeFile(c.token_file);
    if (!token.ok()) return token.status().Annotate("websocket.token_file");
    o.token = *token;
    o.token.resize(o.token.find_last_not_of("\r\n \t") + 1);
    if (o.token.empty()) return Status::InvalidArgument("websocket.token_file: the file is empty");
  }
  o.allowed_origins = c.allowed_origins;
  o.max_sessions = static_cast<size_t>(c.max_sessions);
  o.max_frame_bytes = static_cast<size_t>(c.max_frame_bytes);
  o.idle_timeout_ms = c.idle_timeout_ms;
  o.status_interval_ms = c.status_interval_ms;
  websocket::WebSocketHooks h;
  h.hub = downlink_ ? &downlink_->hub() : nullptr;
  h.journal = journal_.get();
  o.uplink_window = static_cast<uint32_t>(config_.downlink.window);
  h.status_json = [this] { return StatusJson(); };
  auto ws = websocket::WebSocketServer::Create(loop_, o, std::move(h));
  if (!ws.ok()) return ws.status();
  websocket_ = std::move(*ws);
  ES_LOG_INFO("websocket listener", {{"listen", o.host + ":" + std::to_string(websocket_->port())},
                                     {"auth", o.token.empty() ? "none" : "token"}});
  return Status::Ok();
}

void Agent::Impl::CloseWebSockets(std::function<void()> next) {
  if (!websocket_) return next();
  websocket_->CloseAll(1000, [this, next] {
    // Not inside the server's own callback: it is destroyed on a later turn.
    loop_.Post([this, next] {
      websocket_.reset();
      next();
    });
  });
}

// A route's priority overrides the producer's; its ttl applies when the
// producer gave none. Both must be set before the row is stored: priority is
// part of the upload-order index, expiry of the cleanup.
// Encryption last, on the final message: the associated data binds its ts,
// and the journal must only ever see the ciphertext.
Status Agent::Impl::ApplyRoute(store::Message& m, int64_t now_ms) {
  // Accepted: while the broker's status says idle, consumers follow our
  // clock, so say otherwise at once. This status is queued before the
  // message can be committed and uploaded, so it reaches a consumer first
  // on this connection: commit, batching and upload delays cannot let the
  // consumer's view of our watermark pass this message (docs/central.md).
  last_accept_ms_ = now_ms;
  if (published_idle_) PublishStatus();
  const sync::RouteTable& routes = worker_->routes();
  const sync::Route& r = routes.route(routes.Find(m.topic));
  if (r.priority) m.priority = *r.priority;
  if (r.ttl_ms > 0 && !m.expires_at_ms) m.expires_at_ms = now_ms + r.ttl_ms;
  if (!r.encrypt) {
    StripSealHeader(&m.headers);
    return Status::Ok();
  }
  // The config check requires the key file for an encrypting route, and
  // StartEncryption/ApplyReload open it before such a route exists here;
  // should that ever not hold, the publish is refused, never stored in clear.
  if (!sealer_) return Status::Internal("route encrypts but no key file is loaded");
  return sealer_->Seal(m);
}

// Beside the journal (its directory exists by now): the nonce state.
Status Agent::Impl::StartEncryption() {
  if (config_.encryption.key_file.empty()) return Status::Ok();
  auto sealer = MessageSealer::Open(config_.encryption.key_file, config_.store.path + ".nonce",
                                    config_.node.id);
  if (!sealer.ok()) return sealer.status();
  sealer_ = std::move(*sealer);
  ES_LOG_INFO("encryption keys loaded", {{"key_file", config_.encryption.key_file},
                                         {"current", sealer_->keys().current().id},
                                         {"ids", sealer_->keys().Ids()}});
  return Status::Ok();
}

void Agent::Impl::PublishStatus() {
  if (!uplink_ || !uplink_->connected()) return;
  sync::OutboundPublish p;
  p.topic = status_topic_;
  p.payload = StatusJson();
  if (journal_) published_watermark_ms_ = UploadWatermark(journal_->stats(), clock_.WallMs());
  p.retain = true;
  published_idle_ = rendered_idle_;
  // The broker lowers it by the time a retained copy waited: how a consumer
  // subscribing later learns the document's age (its watermark follows our
  // clock from then on).
  if (rendered_idle_) p.message_expiry_s = kIdleStatusExpiryS;
  uplink_->PublishOwn(std::move(p), {});
}

std::string Agent::Impl::StatusJson() {
  StatusInputs in;
  in.node = config_.node.id;
  in.online = !shutting_down_;
  in.now_ms = clock_.WallMs();
  in.started_ms = started_ms_;
  if (uplink_) {
    in.uplink.state = uplink_->state();
    in.uplink.url = uplink_->current_url();
    in.uplink.brokers = uplink_->broker_urls();
    in.uplink.failovers = uplink_->failovers();
    in.uplink.connected_since_ms = uplink_->connected_since_ms();
    in.uplink.last_error = uplink_->last_error();
    in.uplink.last_error_ms = uplink_->last_error_ms();
  }
  if (journal_) in.journal = journal_->stats();
  if (worker_) {
    in.last_sync_ms = worker_->stats().last_sync_ms;
    in.inflight = worker_->stats().inflight_messages;
    in.rate_msgs_per_s = worker_->stats().rate_msgs_per_s;
    in.rate_bytes_per_s = worker_->stats().rate_bytes_per_s;
  }
  in.success_rate_1h = success_.Rate(in.now_ms);
  if (producers_) in.producer_connections = producers_->stats().connections;
  in.config_digest = digest_;
  if (downlink_ && journal_) in.downlink_json = downlink_->StatusJson(journal_->stats());
  rendered_idle_ = journal_ && !shutting_down_ && config_.status.watermark_interval_ms > 0 &&
                   WatermarkIdle(in.journal, in.now_ms, last_accept_ms_);
  if (rendered_idle_) {
    in.follow_lag_ms = config_.status.watermark_interval_ms;
    // Republished every status.interval while idle: 1.5 x that covers a late
    // one, as MQTT's keepalive does.
    in.follow_for_ms = config_.status.interval_ms * 3 / 2;
  }
  return RenderStatus(in);
}

std::string Agent::Impl::StatusLine() {
  std::string s = "uplink " + (uplink_ ? uplink_->state() : std::string("none"));
  if (journal_) {
    const store::JournalStats& j = journal_->stats();
    s += j.pending_counting ? std::string(", counting the backlog")
                            : ", " + std::to_string(j.pending_count) + " pending";
  }
  if (worker_) s += ", " + std::to_string(worker_->stats().messages_sent_total) + " sent";
  return s;
}

void Agent::Impl::RegisterMetrics() {
  ack_latency_ = metrics_.AddHistogram(
      "edgespool_ack_latency_seconds",
      "From a publish's arrival to its durable commit (the producer's ack).", LatencyBuckets());
  upload_latency_ = metrics_.AddHistogram("edgespool_upload_latency_seconds",
                                          "From handing a PUBLISH to the uplink to its PUBACK.",
                                          LatencyBuckets());
  worker_->SetUploadLatencyListener([this](double s) { upload_latency_->Observe(s); });
  const char* reloads_help = "Configuration reloads (SIGHUP, edgespool reload) by result.";
  reloads_ok_ =
      metrics_.AddCounter("edgespool_config_reloads_total", reloads_help, {{"result", "ok"}});
  reloads_refused_ =
      metrics_.AddCounter("edgespool_config_reloads_total", reloads_help, {{"result", "refused"}});
  last_reload_ts_ = metrics_.AddGauge("edgespool_config_last_reload_timestamp_seconds",
                                      "When the last reload was asked for (Unix time; 0: never).");
  last_reload_ok_ = metrics_.AddGauge(
      "edgespool_config_last_reload_successful",
      "1 if the last reload was applied (or none was asked for), 0 if it was refused.");
  last_reload_ok_->Set(1);
  Histogram* lag = metrics_.AddHistogram(
      "edgespool_loop_lag_seconds",
      "How late the event loop ran a 100 ms timer: producer reads, acks and the uplink waited "
      "as long.",
      LatencyBuckets());
  loop_lag_ =
      std::make_unique<LoopLagProbe>(loop_, clock_, 100, [lag](double s) { lag->Observe(s); });
  // Which broker of uplink.url the agent is on: one series per listed
  // broker, 1 for the one connected (all 0 while disconnected).
  sync::MqttUplink* uplink = uplink_.get();
  SampleVec* broker = metrics_.AddGaugeVec(
      "edgespool_uplink_broker", "1 for the broker of uplink.url the uplink is connected to.",
      {"url"});
  metrics_.AddCollector([uplink, broker] {
    broker->Clear();
    std::string current = uplink->connected() ? uplink->current_url() : "";
    std::vector<std::string> seen;
    for (const std::string& url : uplink->broker_urls()) {
      // A URL listed twice is one series (Prometheus refuses duplicates).
      if (std::find(seen.begin(), seen.end(), url) != seen.end()) continue;
      seen.push_back(url);
      broker->Set({url}, url == current ? 1.0 : 0.0);
    }
  });
  // Everything read at scrape time: the table in agent_metrics.cc.
  AddAgentMetrics(metrics_, [this](MetricInputs* in) {
    in->journal = &journal_->stats();
    in->sync = &worker_->stats();
    in->uplink_wire_bytes = uplink_->wire_bytes();
    in->uplink_reconnects = uplink_->reconnects();
    in->uplink_failovers = uplink_->failovers();
    in->uplink_connected = uplink_->connected();
    in->producer_connections = producers_ ? producers_->stats().connections : 0;
    in->now_ms = clock_.WallMs();
    if (downlink_) FillDownlinkMetrics(*downlink_, in->now_ms, &in->downlink);
    if (methods_) FillRequestMetrics(methods_->stats(), &in->requests);
    if (websocket_) {
      websocket::WebSocketStats w = websocket_->stats();
      in->websocket.sessions = w.sessions;
      in->websocket.refused = w.refused_unauthorized + w.refused_origin + w.refused_too_many;
      in->websocket.closed_bad = w.closed_bad_message;
      in->websocket.closed_idle = w.closed_idle;
      in->websocket.uplink_delivered = w.uplink_delivered;
      in->websocket.uplink_dropped = w.uplink_dropped;
    }
  });
}

Status Agent::Impl::StartMetrics(const std::vector<platform::ListenFd>& fds) {
  HttpServerHandlers h;
  h.metrics = &metrics_;
  h.readiness = [this] {
    Readiness r;
    r.ready = journal_ != nullptr && !shutting_down_;
    r.detail = std::string(r.ready ? "journal open" : "not ready") + ", uplink " +
               (uplink_ ? uplink_->state() : std::string("none"));
    return r;
  };
  for (const auto& f : fds) {
    if (f.name == "metrics") {
      auto s = HttpServer::CreateFromFd(loop_, f.fd, f.is_unix, h);
      if (!s.ok()) return s.status().Annotate("metrics (socket activation)");
      http_ = std::move(*s);
      return Status::Ok();
    }
  }
  if (config_.metrics.listen.empty()) return Status::Ok();
  auto addr = ParseListenAddress(config_.metrics.listen);
  if (!addr.ok()) return addr.status().Annotate("metrics.listen");
  auto s = HttpServer::Create(loop_, *addr, h);
  if (!s.ok()) return s.status().Annotate("metrics.listen");
  http_ = std::move(*s);
  ES_LOG_INFO("metrics endpoint", {{"listen", config_.metrics.listen}});
  return Status::Ok();
}

void Agent::Impl::Shutdown(std::function<void()> done) {
  if (shutting_down_) return;
  shutting_down_ = true;
  (void)notifier_.Stopping();
  status_timer_.Stop();
  watermark_timer_.Stop();
  if (loop_lag_) loop_lag_->Stop();
  int64_t deadline = static_cast<int64_t>(loop_.NowMs()) + config_.uplink.shutdown_timeout_ms;
  // 1. Producers: what was received is committed and answered; then close.
  WaitForProducers(static_cast<int64_t>(loop_.NowMs()) + 5000, [this, deadline, done] {
    producers_.reset();
    // WebSocket sessions detach (the flush below persists their positions).
    CloseWebSockets([this, deadline, done] {
    // 2. Uplink: lease nothing new; wait for in-flight PUBACKs.
    worker_->StopFetching();
    WaitForInflight(deadline, [this, done] {
      ES_LOG_INFO("uplink drained for shutdown",
                  {{"inflight", std::to_string(worker_->stats().inflight_messages)}});
      // 3. The offline status (retained) — acked before DISCONNECT, which
      // would otherwise cut it off — then DISCONNECT (so no will).
      auto disconnect = [this, done] {
        shutdown_timer_.Stop();
        uplink_->Stop([this, done] {
          methods_.reset();
          if (downlink_) {
            // Positions persisted: a restart resumes every session where it was.
            downlink::Downlink* d = downlink_.get();
            return d->Flush([this, done] {
              downlink_.reset();
              worker_.reset();
              http_.reset();
              if (watchdog_) watchdog_->Stop();
              done();
            });
          }
          worker_.reset();
          http_.reset();
          if (watchdog_) watchdog_->Stop();
          done();
        });
      };
      if (!uplink_->connected()) return disconnect();
      sync::OutboundPublish p;
      p.topic = status_topic_;
      p.payload = StatusJson();
      p.retain = true;
      auto once = std::make_shared<bool>(false);
      auto finish = [once, disconnect] {
        if (*once) return;
        *once = true;
        disconnect();
      };
      uplink_->PublishOwn(std::move(p), [finish](const sync::PublishResult&) { finish(); });
      shutdown_timer_.Start(2000, 0, finish);
    });
    });
  });
}

void Agent::Impl::WaitForProducers(int64_t deadline_ms, std::function<void()> next) {
  if (!producers_ || producers_->stats().awaiting_commit == 0 ||
      static_cast<int64_t>(loop_.NowMs()) >= deadline_ms) {
    return next();
  }
  shutdown_timer_.Start(10, 0, [this, deadline_ms, next] { WaitForProducers(deadline_ms, next); });
}

void Agent::Impl::WaitForInflight(int64_t deadline_ms, std::function<void()> next) {
  if (!uplink_->connected() || worker_->idle() ||
      static_cast<int64_t>(loop_.NowMs()) >= deadline_ms) {
    return next();
  }
  shutdown_timer_.Start(10, 0, [this, deadline_ms, next] { WaitForInflight(deadline_ms, next); });
}

// The status timer, and the watermark's (status.watermark_interval, 0: off):
// at start and again when a reload changes either interval.
void Agent::Impl::StartStatusTimer() {
  auto every = static_cast<uint64_t>(config_.status.interval_ms);
  status_timer_.Start(every, every, [this] {
    PublishStatus();
    (void)notifier_.Status(StatusLine());
  });
  watermark_timer_.Stop();
  if (config_.status.watermark_interval_ms > 0) {
    auto watermark_every = static_cast<uint64_t>(config_.status.watermark_interval_ms);
    watermark_timer_.Start(watermark_every, watermark_every, [this] {
      if (!journal_) return;
      store::JournalStats j = journal_->stats();
      int64_t now = clock_.WallMs();
      // Idle and already said so: the consumers follow our clock, nothing
      // to send (status.interval still refreshes it).
      if (published_idle_ && WatermarkIdle(j, now, last_accept_ms_)) return;
      if (UploadWatermark(j, now) != published_watermark_ms_) PublishStatus();
    });
  }
}

// Reads the file the agent started with, decides (agent/reload.h) and
// applies. systemd sees RELOADING=1 ... READY=1 around it, whatever the
// outcome: a refused reload leaves the service running as it was.
ReloadOutcome Agent::Impl::Reload() {
  (void)notifier_.Reloading();
  ES_LOG_INFO("reloading configuration",
              {{"config", config_.source.empty() ? "(defaults)" : config_.source}});
  LoadResult next = LoadConfig(config_.source, ProcessEnvironment());
  ReloadPlan plan = PlanReload(config_, next);
  std::vector<std::string> extra_live;
  std::string failure;
  if (shutting_down_) {
    failure = "the agent is shutting down";
  } else if (!plan.refused()) {
    failure = ApplyReload(next.config, plan, &extra_live);
  }
  ReloadOutcome out = DescribeReload(plan, extra_live, failure, config_.source, digest_);
  if (out.ok) {
    ES_LOG_INFO(out.changed ? "configuration reloaded" : "configuration reloaded: no changes",
                {{"changes", out.message}, {"digest", digest_}});
  } else {
    ES_LOG_ERROR("reload refused; the running configuration is kept",
                 {{"reason", out.message}, {"digest", digest_}});
  }
  CountReload(out.ok);
  (void)notifier_.Ready();
  (void)notifier_.Status(StatusLine());
  return out;
}

std::string Agent::Impl::ApplyReload(const Config& next, const ReloadPlan& plan,
                                     std::vector<std::string>* extra_live) {
  const std::vector<std::string>& keys = plan.live;
  // 1. What can fail, tried before anything changes.
  uint64_t credentials = CredentialFilesDigest(next);
  // TLS settings matter only where TLS is (or was) used.
  bool list_keys = AnyChanged(keys, {"uplink.url", "uplink.failover"});
  bool endpoint_keys = list_keys || AnyChanged(keys, {"uplink.username", "uplink.password_file"});
  if (UsesTls(next) || UsesTls(config_)) {
    endpoint_keys = endpoint_keys || AnyChanged(keys, {"uplink.ca_", "uplink.cert_", "uplink.key_",
                                                       "uplink.server_name", "uplink.tls_verify"});
  }
  bool rotated = credentials != credentials_digest_;
  if (rotated && !endpoint_keys) extra_live->push_back("uplink credential files (contents)");
  std::optional<sync::mqtt::Endpoint> endpoint;
  if (endpoint_keys || rotated) {
    auto options = UplinkOptionsFrom(next);
    if (!options.ok()) return "uplink: " + options.status().ToString();
    auto e = sync::MqttUplink::PrepareEndpoint(*options);
    if (!e.ok()) return "uplink: " + e.status().ToString();
    endpoint = std::move(*e);
    // Only the list (or its order) changed: a link to a broker still listed
    // stays up.
    endpoint->list_only = !rotated && !AnyChanged(keys, {"uplink.username", "uplink.password_file",
                                                         "uplink.ca_", "uplink.cert_", "uplink.key_",
                                                         "uplink.server_name", "uplink.tls_verify"});
    if (!next.uplink.tls_verify && UsesTls(next)) {
      ES_LOG_WARN("uplink.tls_verify = false: the broker's certificate is NOT checked");
    }
  }
  // The key file is read on every reload: a rotation changes its contents,
  // not its name.
  std::shared_ptr<const crypto::KeyRing> next_keys;
  std::unique_ptr<MessageSealer> new_sealer;
  if (!next.encryption.key_file.empty()) {
    if (!sealer_) {
      auto s = MessageSealer::Open(next.encryption.key_file, config_.store.path + ".nonce",
                                   config_.node.id);
      if (!s.ok()) return s.status().message();
      new_sealer = std::move(*s);
    } else {
      auto k = MessageSealer::LoadKeys(next.encryption.key_file);
      if (!k.ok()) return k.status().message();
      next_keys = std::move(*k);
      if (next_keys->Ids() != sealer_->keys().Ids() ||
          std::memcmp(next_keys->current().bytes.data(), sealer_->keys().current().bytes.data(),
                      crypto::kKeyBytes) != 0) {
        extra_live->push_back("encryption keys (current " + next_keys->current().id + ")");
      }
    }
  }
  if (producers_ && AnyChanged(keys, {"acl", "rate_limit"})) {
    ProducerServerOptions p = ProducerOptionsFrom(next);
    Status st = producers_->Reconfigure(std::move(p.acl), std::move(p.rate_limits));
    if (!st.ok()) return "acl: " + st.ToString();
  }
  // 2. From here on nothing fails.
  Config previous = std::move(config_);
  config_ = next;
  config_.source = previous.source;
  digest_ = ConfigDigest(config_);
  credentials_digest_ = credentials;
  if (AnyChanged(keys, {"log."})) ApplyLogSettings(config_);
  // Keys before routes: a route that starts encrypting finds them.
  if (new_sealer) sealer_ = std::move(new_sealer);
  if (next_keys) sealer_->SetKeys(std::move(next_keys));
  if (AnyChanged(keys, {"route", "sync."})) worker_->Reconfigure(SyncOptionsFrom(config_));
  if (endpoint) uplink_->SwitchEndpoint(std::move(*endpoint));
  if (config_.status.interval_ms != previous.status.interval_ms ||
      config_.status.watermark_interval_ms != previous.status.watermark_interval_ms) {
    StartStatusTimer();
  }
  // The central side sees the new config_digest at once.
  PublishStatus();
  return "";
}

void Agent::Impl::CountReload(bool ok) {
  if (!reloads_ok_) return;  // before RegisterMetrics
  (ok ? reloads_ok_ : reloads_refused_)->Inc();
  last_reload_ts_->Set(static_cast<double>(clock_.WallMs()) / 1000.0);
  last_reload_ok_->Set(ok ? 1 : 0);
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::Start(platform::Loop& loop, const Config& config) {
  auto impl = std::make_unique<Impl>(loop, config);
  ES_RETURN_IF_ERROR(impl->Start());
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

void Agent::Shutdown(std::function<void()> done) { impl_->Shutdown(std::move(done)); }
std::string Agent::StatusJson() { return impl_->StatusJson(); }
ReloadOutcome Agent::Reload() { return impl_->Reload(); }

}  // namespace edgespool::agent
