// The agent's configuration: TOML file + EDGESPOOL_<SECTION>_<KEY> environment
// overrides, parsed strictly into typed values with defaults.
//
// Every key is described once, in the table of agent/config/schema.cc
// (section, key, kind, range, choices, how it is shown); the structs below
// only hold the values and their defaults. Parsing, environment overrides,
// `config show` and the test that checks config.example.toml documents
// every key all walk that table, so they cannot drift apart.
//
// The room: config.cc (this API), schema.{h,cc} (the table), value.{h,cc}
// (one value of one kind: parse, check, render), parser.cc (the TOML and
// the environment onto the table), checks.cc (rules across keys),
// render.cc (`config show`, the digest), diff.cc (what a reload changes),
// units.{h,cc} (durations, sizes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/config/units.h"

namespace edgespool::agent {

struct RouteConfig {
  std::string match = "#";
  std::string priority;        // "" = keep the producer's
  int64_t ttl_ms = 0;          // 0 = none
  std::string mode;            // "" = sync.mode
  std::string order = "strict";  // "strict" | "live-first"
  std::string upstream_topic = "{topic}";
  // Message-level encryption (docs/encryption.md): "aes-256-gcm" seals the
  // payload with [encryption] key_file's current key before it is stored.
  std::string encrypt;  // "" or "none": stored and sent as given
  int line = 0;
};

struct AclConfig {
  int64_t uid = -1;            // -1 = any
  int64_t gid = -1;
  std::string user, group;     // resolved to uid/gid at load
  std::vector<std::string> publish;    // MQTT filters over topics
  std::vector<std::string> subscribe;  // ... over downlink topics
  std::vector<std::string> respond;    // ... over method names
  int line = 0;
};

struct RateLimitConfig {
  int64_t uid = -1;
  int64_t gid = -1;
  double messages_per_second = 0;  // 0 = unlimited
  double bytes_per_second = 0;
  double burst = 0;                // 0 = one second's worth
  int line = 0;
};

// [[subscription]]: a broker filter the uplink subscribes to for the
// downlink, and the local topic its messages are stored under.
struct SubscriptionConfig {
  std::string filter;                  // MQTT filter on the broker; {node} expands
  std::string local_topic = "{topic}";  // {topic}: broker topic, {suffix}: what '#' matched
  int64_t max_message_bytes = 0;       // 0: downlink.max_message_bytes
  int64_t ttl_ms = 0;                  // 0: none
  int line = 0;
};

struct Config {
  struct Node {
    std::string id;  // default: the host name
  } node;
  struct Producer {
    std::string socket = "/run/edgespool/edgespool.sock";
    int64_t socket_mode = 0660;
    int64_t max_message_bytes = 2 << 20;
    int64_t max_connections = 10000;
  } producer;
  struct Store {
    std::string path = "/var/lib/edgespool/journal.db";
    int64_t max_bytes = 256ll << 20;
    std::string when_full = "reject";
    std::string durability = "full";
    int64_t sent_retention_ms = 600000;
    int64_t cleanup_interval_ms = 60000;
    int64_t group_max_messages = 2048;
    int64_t group_max_delay_ms = 0;
    int64_t dedupe_window_ms = 600000;
    int64_t dedupe_max_ids = 100000;
    double high_water = 0.8;
  } store;
  struct Uplink {
    // One broker or several (a cluster), tried in `failover` order.
    std::vector<std::string> url = {"mqtt://127.0.0.1:1883"};
    std::string failover = "ordered";
    int64_t protocol = 5;
    std::string client_id;  // default: edgespool-<node id>
    std::string username;
    std::string password_file;
    std::string ca_file, ca_dir, cert_file, key_file;
    std::string server_name;
    bool tls_verify = true;
    int64_t keepalive_ms = 30000;
    int64_t inflight = 1000;
    int64_t ack_timeout_ms = 30000;
    int64_t shutdown_timeout_ms = 5000;
    int64_t session_expiry_ms = 86400000;  // the MQTT persistent session's expiry
  } uplink;
  struct Sync {
    std::string mode = "message";
    int64_t batch_messages = 1000;
    int64_t batch_bytes = 256 << 10;
    int64_t linger_ms = 50;
    int64_t compression_level = 3;
    int64_t bandwidth_limit = 0;  // bytes/s, 0 = unlimited
    int64_t backoff_initial_ms = 1000;
    int64_t backoff_max_ms = 30000;
    int64_t max_attempts = 0;
    std::string batch_topic = "edgespool/{node}/batch";
    std::vector<int64_t> priority_weights = {70, 20, 10};
    int64_t backlog_share = 20;  // percent kept by the backlog behind live-first routes
  } sync;
  struct Status {
    std::string topic = "edgespool/{node}/status";
    int64_t interval_ms = 60000;
    // Republish (at most this often) when the upload watermark moved, so
    // central consumers (edgespool consume) can release in order; 0: off.
    int64_t watermark_interval_ms = 1000;
  } status;
  struct Metrics {
    std::string listen;  // "" = off; "127.0.0.1:9464" or "unix:/path"
  } metrics;
  // The WebSocket listener for local HMIs (docs/websocket.md).
  struct WebSocket {
    std::string listen;      // "" = off; "127.0.0.1:8765"
    std::string token_file;  // "" = no token (only on a loopback address)
    std::vector<std::string> allowed_origins;  // besides the page's own; "*" = any
    int64_t max_sessions = 64;
    int64_t max_frame_bytes = 64 << 10;
    int64_t idle_timeout_ms = 60000;
    int64_t status_interval_ms = 2000;
  } websocket;
  struct Log {
    std::string level = "info";
    std::string format = "text";
  } log;

  // One structured line per accepted, sent and dead message (agent/audit_log.h).
  struct Audit {
    bool enabled = false;
    double sample = 1.0;  // share of messages logged, chosen by seq
  } audit;

  // Message-level encryption's keys (sync/crypto/key_ring.h has the format).
  struct Encryption {
    std::string key_file;  // "" = none; required when a route encrypts
  } encryption;

  struct Downlink {
    bool enabled = true;
    std::string topic = "edgespool/{node}/down/#";
    int64_t max_bytes = 64ll << 20;
    int64_t max_message_bytes = 1 << 20;
    int64_t session_expiry_ms = 3600000;
    int64_t session_max_bytes = 16ll << 20;
    int64_t window = 100;
    int64_t retention_ms = 3600000;
    int64_t receive_maximum = 1000;
  } downlink;

  // Request/response both ways (docs/request-response.md).
  struct Requests {
    bool enabled = true;
    std::string method_topic = "edgespool/{node}/method";  // calls on method_topic/NAME
    std::string reply_topic = "edgespool/{node}/reply";    // answers on reply_topic/ID
    int64_t method_timeout_ms = 5000;  // calls that name no timeout of their own
    int64_t max_pending = 16384;       // requests (and, apart, calls) in the whole agent
    int64_t max_pending_per_connection = 4096;
  } requests;

  std::vector<RouteConfig> routes;
  std::vector<AclConfig> acls;
  std::vector<RateLimitConfig> rate_limits;
  std::vector<SubscriptionConfig> subscriptions;  // [[subscription]]

  std::string source;  // file name, for messages
};

struct ConfigProblem {
  std::string file;
  int line = 0;       // 0 = not from a line (defaults, environment)
  std::string key;    // "uplink.url"
  std::string reason;
  // "config.toml:12: uplink.url: expected mqtt:// or mqtts://"
  std::string ToString() const;
};

struct LoadResult {
  Config config;
  std::vector<ConfigProblem> problems;
  bool ok() const { return problems.empty(); }
};

// Parses `text` (named `file` in messages), applies environment overrides
// from `env` (KEY=VALUE strings; pass environ), fills defaults and checks
// every value. Never throws.
LoadResult ParseConfig(const std::string& text, const std::string& file,
                       const std::vector<std::string>& env);
// Reads the file and calls ParseConfig; an unreadable file is one problem.
// An empty path means "defaults + environment".
LoadResult LoadConfig(const std::string& path, const std::vector<std::string>& env);
// The process environment as a vector, for LoadConfig.
std::vector<std::string> ProcessEnvironment();
// The config file when no command line names one: $EDGESPOOL_CONFIG, else
// /etc/edgespool/config.toml if it exists, else "" (defaults and environment).
std::string DefaultConfigFile();

// The effective configuration as TOML, secrets redacted.
std::string RenderConfig(const Config& config);
// A short digest of the effective configuration (for the status document).
std::string ConfigDigest(const Config& config);

// Every "section.key" the parser knows (arrays of tables as "route.match").
std::vector<std::string> KnownKeys();

// One difference between the running configuration and a new one, as a
// reload sees it (diff.cc). Whether a key is applied live or needs a restart
// is written once, in schema.cc's table (KeyDesc::live).
struct ConfigChange {
  // "uplink.url"; "route[2].priority" for the second [[route]] (1-based, in
  // file order); "route" alone when tables were added or removed.
  std::string key;
  bool live = false;  // false: the agent must restart for it to take effect
};
// Every key whose effective value differs, in schema order. Values are
// compared unredacted (a URL's credentials count), and the line numbers
// of [[tables]] do not.
std::vector<ConfigChange> DiffConfig(const Config& running, const Config& next);
// Whether "section.key" is applied by a reload; false for an unknown key.
bool IsLiveKey(const std::string& key);

// ParseDurationMs, ParseSizeBytes, FormatDurationMs, FormatSizeBytes: see
// agent/config/units.h.

// Replaces {node} in a topic template.
std::string ExpandNode(const std::string& tmpl, const std::string& node);

}  // namespace edgespool::agent
