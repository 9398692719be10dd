#include "agent/config/checks.h"

#include <string_view>
#include <utility>

#include "platform/files.h"
#include "sync/crypto/key_ring.h"
#include "sync/mqtt/wire.h"

namespace edgespool::agent::config_detail {

namespace {

// The broker filter a subscription or the downlink uses, after {node}.
void CheckFilter(const std::string& key, const std::string& tmpl, const std::string& node, int line,
                 const ProblemSink& problems) {
  if (tmpl.empty()) return problems.Add(line, key, "must not be empty: the broker filter to subscribe to");
  if (!sync::mqtt::IsValidTopicFilter(ExpandNode(tmpl, node))) {
    problems.Add(line, key,
                 "\"" + tmpl + "\" is not a valid MQTT filter ('#' only as the last level, '+' a "
                 "whole level)");
  }
}

// A topic prefix (requests.*_topic): a topic name, after {node}, that the
// agent subscribes to with "/#" appended.
void CheckPrefix(const std::string& key, const std::string& tmpl, const std::string& node,
                 const ProblemSink& problems) {
  std::string topic = ExpandNode(tmpl, node);
  if (topic.empty() || topic.back() == '/' || !sync::mqtt::IsValidTopicName(topic)) {
    problems.Add(0, key, "\"" + tmpl + "\" must be a topic name without wildcards or a trailing /");
  }
}

void CheckNodeAndUplink(Config& c, const ProblemSink& problems) {
  if (c.node.id.empty()) c.node.id = platform::HostName();
  for (char ch : c.node.id) {
    if (ch == '/' || ch == '+' || ch == '#' || ch == '\0') {
      problems.Add(0, "node.id", "must not contain /, + or #: it is a topic level");
      break;
    }
  }
  if (c.uplink.client_id.empty()) c.uplink.client_id = "edgespool-" + c.node.id;
  if (c.uplink.url.rfind("mqtt://", 0) != 0 && c.uplink.url.rfind("mqtts://", 0) != 0) {
    problems.Add(0, "uplink.url", "expected mqtt://host[:port] or mqtts://host[:port]");
  }
  if (c.sync.backoff_initial_ms > c.sync.backoff_max_ms) {
    problems.Add(0, "sync.backoff_initial",
                 "must not exceed sync.backoff_max (" + FormatDurationMs(c.sync.backoff_max_ms) + ")");
  }
}

// Files are checked now, so that a typo is a startup error with the key
// rather than a failed TLS handshake minutes later.
void CheckUplinkFiles(const Config::Uplink& u, const ProblemSink& problems) {
  if (!u.password_file.empty()) {
    auto pw = platform::CheckReadable(u.password_file);
    if (!pw.ok()) problems.Add(0, "uplink.password_file", pw.message());
    if (u.username.empty()) problems.Add(0, "uplink.password_file", "a password needs uplink.username");
  }
  for (auto [key, path] : {std::pair{"uplink.ca_file", &u.ca_file},
                           std::pair{"uplink.cert_file", &u.cert_file},
                           std::pair{"uplink.key_file", &u.key_file}}) {
    if (path->empty()) continue;
    auto st = platform::CheckReadable(*path);
    if (!st.ok()) problems.Add(0, key, st.message());
  }
  if (u.cert_file.empty() != u.key_file.empty()) {
    problems.Add(0, "uplink.cert_file", "cert_file and key_file go together (mutual TLS)");
  }
}

// [websocket]: listen is "address:port" ("[v6]:port"); the agent's
// ParseListenAddress makes the final call. Off loopback, a token is required:
// the page and the sessions would otherwise be open to the network.
void CheckWebSocket(const Config::WebSocket& w, const ProblemSink& problems) {
  if (!w.token_file.empty()) {
    auto st = platform::CheckReadable(w.token_file);
    if (!st.ok()) problems.Add(0, "websocket.token_file", st.message());
  }
  if (w.listen.empty()) return;
  size_t colon = w.listen.rfind(':');
  if (colon == std::string::npos || colon + 1 == w.listen.size() ||
      w.listen.rfind("unix:", 0) == 0) {
    problems.Add(0, "websocket.listen", "expected address:port, e.g. 127.0.0.1:8765");
    return;
  }
  std::string host = w.listen.substr(0, colon);
  bool loopback = host.rfind("127.", 0) == 0 || host == "[::1]";
  if (!loopback && w.token_file.empty()) {
    problems.Add(0, "websocket.listen",
                 "a listener off loopback (" + host + ") needs websocket.token_file");
  }
}

}  // namespace

void CheckRoute(void* element, int line, const ProblemSink& problems) {
  const auto& r = *static_cast<RouteConfig*>(element);
  if (r.match.empty()) problems.Add(line, "route.match", "must not be empty");
  if (r.upstream_topic.empty()) problems.Add(line, "route.upstream_topic", "must not be empty");
}

void CheckAcl(void* element, int line, const ProblemSink& problems) {
  auto& a = *static_cast<AclConfig*>(element);
  if (!a.user.empty()) {
    auto uid = platform::LookupUid(a.user);
    if (uid.ok()) {
      a.uid = *uid;
    } else {
      problems.Add(line, "acl.user", uid.status().message());
    }
  }
  if (!a.group.empty()) {
    auto gid = platform::LookupGid(a.group);
    if (gid.ok()) {
      a.gid = *gid;
    } else {
      problems.Add(line, "acl.group", gid.status().message());
    }
  }
  if (a.uid < 0 && a.gid < 0) problems.Add(line, "acl", "needs uid, user, gid or group");
  if (a.publish.empty() && a.subscribe.empty() && a.respond.empty()) {
    problems.Add(line, "acl", "needs publish, subscribe or respond");
  }
}

void CheckRateLimit(void* element, int line, const ProblemSink& problems) {
  const auto& r = *static_cast<RateLimitConfig*>(element);
  if (r.messages_per_second == 0 && r.bytes_per_second == 0) {
    problems.Add(line, "rate_limit", "needs messages_per_second or bytes_per_second");
  }
}

void CheckSubscription(void* element, int line, const ProblemSink& problems) {
  const auto& s = *static_cast<SubscriptionConfig*>(element);
  if (s.local_topic.empty()) {
    problems.Add(line, "subscription.local_topic", "must not be empty");
  } else if (s.local_topic.find_first_of("+#") != std::string::npos) {
    problems.Add(line, "subscription.local_topic",
                 "\"" + s.local_topic + "\" is a topic template, not a filter: no + or #");
  }
}

// Message-level encryption: the key file is read here, so that a missing,
// unreadable, world-readable or malformed one stops `config check`, the
// start (exit 78) and a reload alike, never the first publish.
static void CheckEncryption(const Config& c, const ProblemSink& problems) {
  bool any = false;
  for (const auto& r : c.routes) {
    if (r.encrypt != "aes-256-gcm") continue;
    any = true;
    std::string mode = r.mode.empty() ? c.sync.mode : r.mode;
    if (mode == "message" && c.uplink.protocol == 4) {
      problems.Add(r.line, "route.encrypt",
                   "message mode over MQTT 3.1.1 has no user property for the key id and nonce; "
                   "use batch mode or uplink.protocol = 5");
    }
  }
  if (c.encryption.key_file.empty()) {
    if (any) {
      problems.Add(0, "encryption.key_file",
                   "a route has encrypt = \"aes-256-gcm\": the key file is required");
    }
    return;
  }
  auto ring = crypto::KeyRing::Load(c.encryption.key_file);
  if (!ring.ok()) problems.Add(0, "encryption.key_file", ring.status().message());
}

void CheckConfig(Config& c, const ProblemSink& problems) {
  CheckNodeAndUplink(c, problems);
  CheckUplinkFiles(c.uplink, problems);
  if (c.producer.socket.empty()) problems.Add(0, "producer.socket", "must not be empty");
  if (c.store.path.empty()) problems.Add(0, "store.path", "must not be empty");
  // Filters expand {node}, so they are checked once the node's name is known.
  CheckFilter("downlink.topic", c.downlink.topic, c.node.id, 0, problems);
  for (const auto& s : c.subscriptions) {
    CheckFilter("subscription.filter", s.filter, c.node.id, s.line, problems);
  }
  CheckPrefix("requests.method_topic", c.requests.method_topic, c.node.id, problems);
  CheckPrefix("requests.reply_topic", c.requests.reply_topic, c.node.id, problems);
  if (ExpandNode(c.requests.method_topic, c.node.id) == ExpandNode(c.requests.reply_topic, c.node.id)) {
    problems.Add(0, "requests.reply_topic", "must differ from requests.method_topic");
  }
  CheckWebSocket(c.websocket, problems);
  CheckEncryption(c, problems);
  if (c.routes.empty() || c.routes.back().match != "#") {
    c.routes.emplace_back();  // the default route: everything not matched earlier
  }
}

}  // namespace edgespool::agent::config_detail
