// The table: every key of the configuration, with its kind, range and
// choices. Defaults live in the structs of config.h, documentation in
// config.example.toml (a test checks that it names every key here).
#include "agent/config/schema.h"

#include <cstring>

#include "agent/config/checks.h"

namespace edgespool::agent::config_detail {

namespace {

template <typename>
struct MemberTraits;
template <typename C, typename V>
struct MemberTraits<V C::*> {
  using Class = C;
  using Value = V;
};

template <typename V>
constexpr Storage StorageOf();
template <>
constexpr Storage StorageOf<std::string>() { return Storage::kString; }
template <>
constexpr Storage StorageOf<int64_t>() { return Storage::kInt; }
template <>
constexpr Storage StorageOf<bool>() { return Storage::kBool; }
template <>
constexpr Storage StorageOf<double>() { return Storage::kDouble; }
template <>
constexpr Storage StorageOf<std::vector<int64_t>>() { return Storage::kIntList; }
template <>
constexpr Storage StorageOf<std::vector<std::string>>() { return Storage::kStringList; }

constexpr Storage StorageFor(Kind kind) {
  switch (kind) {
    case Kind::kString:
    case Kind::kEnum: return Storage::kString;
    case Kind::kInt:
    case Kind::kDuration:
    case Kind::kSize:
    case Kind::kMode: return Storage::kInt;
    case Kind::kBool: return Storage::kBool;
    case Kind::kFraction:
    case Kind::kNumber: return Storage::kDouble;
    case Kind::kWeights: return Storage::kIntList;
    case Kind::kFilterList:
    case Kind::kStringList: return Storage::kStringList;
  }
  return Storage::kString;
}

template <auto M>
void* FieldOf(void* owner) {
  using C = typename MemberTraits<decltype(M)>::Class;
  return &(static_cast<C*>(owner)->*M);
}

// One row: the key's name, its kind, and the member that holds its value.
template <auto M>
constexpr KeyDesc Key(const char* key, Kind kind) {
  return KeyDesc{key, kind, StorageOf<typename MemberTraits<decltype(M)>::Value>(), &FieldOf<M>};
}

// Every row's kind fits the C++ type of its member (a kDuration on a
// std::string would otherwise be a wild write through a void*).
template <size_t N>
constexpr bool KindsFit(const KeyDesc (&keys)[N]) {
  for (const KeyDesc& d : keys) {
    if (StorageFor(d.kind) != d.storage) return false;
    if (d.kind == Kind::kEnum && d.choices == nullptr) return false;
  }
  return true;
}

constexpr int64_t kDay = 86400000;
constexpr int64_t kMaxMqttMessage = 256 << 20;

using K = Kind;
using N = Config::Node;
using P = Config::Producer;
using St = Config::Store;
using U = Config::Uplink;
using Sy = Config::Sync;
using D = Config::Downlink;
using Rq = Config::Requests;
using Sta = Config::Status;
using Me = Config::Metrics;
using L = Config::Log;
using Au = Config::Audit;
using W = Config::WebSocket;
using E = Config::Encryption;

constexpr KeyDesc kNode[] = {Key<&N::id>("id", K::kString)};

constexpr KeyDesc kProducer[] = {
    Key<&P::socket>("socket", K::kString),
    Key<&P::socket_mode>("socket_mode", K::kMode).Range(0, 0777),
    Key<&P::max_message_bytes>("max_message_bytes", K::kSize).Range(1, kMaxMqttMessage),
    Key<&P::max_connections>("max_connections", K::kInt).Range(1, 1000000),
};

constexpr KeyDesc kStore[] = {
    Key<&St::path>("path", K::kString),
    Key<&St::max_bytes>("max_bytes", K::kSize).Range(1 << 20, INT64_MAX),
    Key<&St::when_full>("when_full", K::kEnum).Choices("reject|drop-oldest"),
    Key<&St::durability>("durability", K::kEnum).Choices("full|normal"),
    Key<&St::sent_retention_ms>("sent_retention", K::kDuration).Range(0, 365 * kDay),
    Key<&St::cleanup_interval_ms>("cleanup_interval", K::kDuration).Range(100, kDay),
    Key<&St::group_max_messages>("group_max_messages", K::kInt).Range(1, 1000000),
    Key<&St::group_max_delay_ms>("group_max_delay", K::kDuration).Range(0, 1000),
    Key<&St::dedupe_window_ms>("dedupe_window", K::kDuration).Range(0, 7 * kDay),
    Key<&St::dedupe_max_ids>("dedupe_max_ids", K::kInt).Range(0, 10000000),
    Key<&St::high_water>("high_water", K::kFraction),
};

constexpr KeyDesc kUplink[] = {
    Key<&U::url>("url", K::kString).Secret().Live(),
    Key<&U::protocol>("protocol", K::kInt).Range(4, 5),
    Key<&U::client_id>("client_id", K::kString),
    Key<&U::username>("username", K::kString).Live(),
    Key<&U::password_file>("password_file", K::kString).Live(),
    Key<&U::ca_file>("ca_file", K::kString).Live(),
    Key<&U::ca_dir>("ca_dir", K::kString).Live(),
    Key<&U::cert_file>("cert_file", K::kString).Live(),
    Key<&U::key_file>("key_file", K::kString).Live(),
    Key<&U::server_name>("server_name", K::kString).Live(),
    Key<&U::tls_verify>("tls_verify", K::kBool).Live(),
    Key<&U::keepalive_ms>("keepalive", K::kDuration).Range(0, 65535000),
    Key<&U::inflight>("inflight", K::kInt).Range(1, 65535),
    Key<&U::ack_timeout_ms>("ack_timeout", K::kDuration).Range(100, kDay),
    Key<&U::shutdown_timeout_ms>("shutdown_timeout", K::kDuration).Range(0, 600000).Live(),
    // MQTT 5 Session Expiry Interval: a four-byte count of seconds.
    Key<&U::session_expiry_ms>("session_expiry", K::kDuration).Range(1000, 4294967295000),
};

constexpr KeyDesc kSync[] = {
    Key<&Sy::mode>("mode", K::kEnum).Choices("message|batch").Live(),
    Key<&Sy::batch_messages>("batch_messages", K::kInt).Range(1, 100000).Live(),
    Key<&Sy::batch_bytes>("batch_bytes", K::kSize).Range(1024, 256 << 20).Live(),
    Key<&Sy::linger_ms>("linger", K::kDuration).Range(0, 60000).Live(),
    Key<&Sy::compression_level>("compression_level", K::kInt).Range(1, 22).Live(),
    Key<&Sy::bandwidth_limit>("bandwidth_limit", K::kSize).Range(0, INT64_MAX).Live(),
    Key<&Sy::backoff_initial_ms>("backoff_initial", K::kDuration).Range(10, 3600000),
    Key<&Sy::backoff_max_ms>("backoff_max", K::kDuration).Range(10, kDay),
    Key<&Sy::max_attempts>("max_attempts", K::kInt).Range(0, 1000000).Live(),
    Key<&Sy::batch_topic>("batch_topic", K::kString).Live(),
    Key<&Sy::priority_weights>("priority_weights", K::kWeights).Range(1, 1000).Live(),
    Key<&Sy::backlog_share>("backlog_share", K::kInt).Range(1, 100).Live(),
};

constexpr KeyDesc kDownlink[] = {
    Key<&D::enabled>("enabled", K::kBool),
    Key<&D::topic>("topic", K::kString),  // a filter: checked once {node} is known (checks.cc)
    Key<&D::max_bytes>("max_bytes", K::kSize).Range(1, INT64_MAX),
    Key<&D::max_message_bytes>("max_message_bytes", K::kSize).Range(1, kMaxMqttMessage),
    Key<&D::session_expiry_ms>("session_expiry", K::kDuration).Range(1000, 365 * kDay),
    Key<&D::session_max_bytes>("session_max_bytes", K::kSize).Range(1, INT64_MAX),
    Key<&D::window>("window", K::kInt).Range(1, 10000),
    Key<&D::retention_ms>("retention", K::kDuration).Range(0, 365 * kDay),
    // The MQTT 5 CONNECT property is two bytes and must not be 0.
    Key<&D::receive_maximum>("receive_maximum", K::kInt).Range(1, 65535),
};

constexpr KeyDesc kRequests[] = {
    Key<&Rq::enabled>("enabled", K::kBool),
    Key<&Rq::method_topic>("method_topic", K::kString),  // topics: checks.cc, after {node}
    Key<&Rq::reply_topic>("reply_topic", K::kString),
    Key<&Rq::method_timeout_ms>("method_timeout", K::kDuration).Range(1, 600000),
    Key<&Rq::max_pending>("max_pending", K::kInt).Range(1, 1000000),
    Key<&Rq::max_pending_per_connection>("max_pending_per_connection", K::kInt).Range(1, 1000000),
};

constexpr KeyDesc kStatus[] = {
    Key<&Sta::topic>("topic", K::kString),
    Key<&Sta::interval_ms>("interval", K::kDuration).Range(1000, kDay).Live(),
    Key<&Sta::watermark_interval_ms>("watermark_interval", K::kDuration).Range(0, kDay).Live(),
};

constexpr KeyDesc kMetrics[] = {Key<&Me::listen>("listen", K::kString)};

// listen and token_file are checked together in checks.cc (a listener off
// loopback needs a token).
constexpr KeyDesc kWebSocket[] = {
    Key<&W::listen>("listen", K::kString),
    Key<&W::token_file>("token_file", K::kString),
    Key<&W::allowed_origins>("allowed_origins", K::kStringList),
    Key<&W::max_sessions>("max_sessions", K::kInt).Range(1, 100000),
    Key<&W::max_frame_bytes>("max_frame_bytes", K::kSize).Range(256, 16 << 20),
    Key<&W::idle_timeout_ms>("idle_timeout", K::kDuration).Range(100, kDay),
    Key<&W::status_interval_ms>("status_interval", K::kDuration).Range(100, kDay),
};

constexpr KeyDesc kAudit[] = {
    Key<&Au::enabled>("enabled", K::kBool),
    Key<&Au::sample>("sample", K::kFraction),
};

// Live: a reload reads the key file again (a rotation adds a key to it).
constexpr KeyDesc kEncryption[] = {
    Key<&E::key_file>("key_file", K::kString).Live(),
};

constexpr KeyDesc kLog[] = {
    Key<&L::level>("level", K::kEnum).Choices("debug|info|warn|error").Live(),
    Key<&L::format>("format", K::kEnum).Choices("text|json").Live(),
};

constexpr KeyDesc kRoute[] = {
    Key<&RouteConfig::match>("match", K::kString).Live(),
    Key<&RouteConfig::priority>("priority", K::kEnum)
        .Choices("high|normal|low")
        .Shown(Show::kUnlessEmpty)
        .Live(),
    Key<&RouteConfig::ttl_ms>("ttl", K::kDuration).Shown(Show::kUnlessEmpty).Live(),
    Key<&RouteConfig::mode>("mode", K::kEnum)
        .Choices("message|batch")
        .Shown(Show::kUnlessEmpty)
        .Live(),
    Key<&RouteConfig::order>("order", K::kEnum).Choices("strict|live-first").Live(),
    Key<&RouteConfig::upstream_topic>("upstream_topic", K::kString).Live(),
    Key<&RouteConfig::encrypt>("encrypt", K::kEnum)
        .Choices("aes-256-gcm|none")
        .Shown(Show::kUnlessEmpty)
        .Live(),
};

// user and group resolve to uid and gid at load (CheckAcl); show prints those.
constexpr KeyDesc kAcl[] = {
    Key<&AclConfig::uid>("uid", K::kInt).Shown(Show::kUnlessNegative).Live(),
    Key<&AclConfig::user>("user", K::kString).Shown(Show::kNever).Live(),
    Key<&AclConfig::gid>("gid", K::kInt).Shown(Show::kUnlessNegative).Live(),
    Key<&AclConfig::group>("group", K::kString).Shown(Show::kNever).Live(),
    Key<&AclConfig::publish>("publish", K::kFilterList).Live(),
    Key<&AclConfig::subscribe>("subscribe", K::kFilterList).Live(),
    Key<&AclConfig::respond>("respond", K::kFilterList).Live(),
};

constexpr KeyDesc kRateLimit[] = {
    Key<&RateLimitConfig::uid>("uid", K::kInt).Shown(Show::kUnlessNegative).Live(),
    Key<&RateLimitConfig::gid>("gid", K::kInt).Shown(Show::kUnlessNegative).Live(),
    Key<&RateLimitConfig::messages_per_second>("messages_per_second", K::kNumber).Live(),
    Key<&RateLimitConfig::bytes_per_second>("bytes_per_second", K::kNumber).Live(),
    Key<&RateLimitConfig::burst>("burst", K::kNumber).Live(),
};

// 0 in max_message_bytes and ttl means "not set" (downlink.max_message_bytes;
// no expiry), so a value given must be at least 1.
constexpr KeyDesc kSubscription[] = {
    Key<&SubscriptionConfig::filter>("filter", K::kString),  // checked in checks.cc
    Key<&SubscriptionConfig::local_topic>("local_topic", K::kString),
    Key<&SubscriptionConfig::max_message_bytes>("max_message_bytes", K::kSize)
        .Range(1, kMaxMqttMessage)
        .Shown(Show::kUnlessEmpty),
    Key<&SubscriptionConfig::ttl_ms>("ttl", K::kDuration)
        .Range(1, INT64_MAX)
        .Shown(Show::kUnlessEmpty),
};

static_assert(KindsFit(kNode) && KindsFit(kProducer) && KindsFit(kStore) && KindsFit(kUplink) &&
                  KindsFit(kSync) && KindsFit(kDownlink) && KindsFit(kRequests) &&
                  KindsFit(kStatus) && KindsFit(kMetrics) && KindsFit(kWebSocket) &&
                  KindsFit(kLog) && KindsFit(kEncryption) && KindsFit(kRoute) && KindsFit(kAcl) &&
                  KindsFit(kRateLimit) && KindsFit(kSubscription),
              "a key's Kind does not fit the type of its field");

template <auto M>
void* TableOf(Config& c) {
  return &(c.*M);
}

template <auto M>
struct ArrayOf {
  static void* Append(Config& c, int line) {
    auto& v = c.*M;
    v.emplace_back();
    v.back().line = line;
    return &v.back();
  }
  static size_t Count(const Config& c) { return (c.*M).size(); }
  static void* Element(Config& c, size_t i) { return &(c.*M)[i]; }
};

template <auto M, size_t Size>
SectionDesc Table(const char* name, const KeyDesc (&keys)[Size]) {
  SectionDesc s{name, keys, Size};
  s.table = &TableOf<M>;
  return s;
}

template <auto M, size_t Size>
SectionDesc Array(const char* name, const KeyDesc (&keys)[Size],
                  void (*check)(void*, int, const ProblemSink&)) {
  SectionDesc s{name, keys, Size};
  s.append = &ArrayOf<M>::Append;
  s.count = &ArrayOf<M>::Count;
  s.element = &ArrayOf<M>::Element;
  s.check = check;
  return s;
}

}  // namespace

const std::vector<SectionDesc>& Sections() {
  static const std::vector<SectionDesc> sections = {
      Table<&Config::node>("node", kNode),
      Table<&Config::producer>("producer", kProducer),
      Table<&Config::store>("store", kStore),
      Table<&Config::uplink>("uplink", kUplink),
      Table<&Config::sync>("sync", kSync),
      Table<&Config::downlink>("downlink", kDownlink),
      Table<&Config::requests>("requests", kRequests),
      Table<&Config::status>("status", kStatus),
      Table<&Config::metrics>("metrics", kMetrics),
      Table<&Config::websocket>("websocket", kWebSocket),
      Table<&Config::log>("log", kLog),
      Table<&Config::audit>("audit", kAudit),
      Table<&Config::encryption>("encryption", kEncryption),
      Array<&Config::routes>("route", kRoute, &CheckRoute),
      Array<&Config::acls>("acl", kAcl, &CheckAcl),
      Array<&Config::rate_limits>("rate_limit", kRateLimit, &CheckRateLimit),
      Array<&Config::subscriptions>("subscription", kSubscription, &CheckSubscription),
  };
  return sections;
}

const SectionDesc* FindSection(const std::string& name) {
  for (const auto& s : Sections()) {
    if (name == s.name) return &s;
  }
  return nullptr;
}

const KeyDesc* FindKey(const SectionDesc& section, const std::string& key) {
  for (const auto& d : section) {
    if (key == d.key) return &d;
  }
  return nullptr;
}

}  // namespace edgespool::agent::config_detail
