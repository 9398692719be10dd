#include "agent/config.h"

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <toml++/toml.h>

#include "platform/files.h"

extern char** environ;

namespace edgespool::agent {

namespace {

// ---------------------------------------------------------------------------
// The key table. One row per scalar key; arrays of tables are handled below.

enum class Kind { kString, kInt, kBool, kDuration, kSize, kFloat, kEnum, kMode, kIntList };

struct KeyDesc {
  const char* section;
  const char* key;
  Kind kind;
  void* (*field)(Config&);
  int64_t min = 0;
  int64_t max = INT64_MAX;
  const char* choices = nullptr;  // kEnum: "a|b|c"
  bool secret = false;
};

#define F(sec, member) [](Config& c) -> void* { return &c.sec.member; }
constexpr int64_t kDay = 86400000;

const KeyDesc kKeys[] = {
    {"node", "id", Kind::kString, F(node, id)},
    {"producer", "socket", Kind::kString, F(producer, socket)},
    {"producer", "socket_mode", Kind::kMode, F(producer, socket_mode), 0, 0777},
    {"producer", "max_message_bytes", Kind::kSize, F(producer, max_message_bytes), 1, 256 << 20},
    {"producer", "max_connections", Kind::kInt, F(producer, max_connections), 1, 1000000},
    {"store", "path", Kind::kString, F(store, path)},
    {"store", "max_bytes", Kind::kSize, F(store, max_bytes), 1 << 20, INT64_MAX},
    {"store", "when_full", Kind::kEnum, F(store, when_full), 0, 0, "reject|drop-oldest"},
    {"store", "durability", Kind::kEnum, F(store, durability), 0, 0, "full|normal"},
    {"store", "sent_retention", Kind::kDuration, F(store, sent_retention_ms), 0, 365 * kDay},
    {"store", "cleanup_interval", Kind::kDuration, F(store, cleanup_interval_ms), 100, kDay},
    {"store", "group_max_messages", Kind::kInt, F(store, group_max_messages), 1, 1000000},
    {"store", "group_max_delay", Kind::kDuration, F(store, group_max_delay_ms), 0, 1000},
    {"store", "dedupe_window", Kind::kDuration, F(store, dedupe_window_ms), 0, 7 * kDay},
    {"store", "dedupe_max_ids", Kind::kInt, F(store, dedupe_max_ids), 0, 10000000},
    {"store", "high_water", Kind::kFloat, F(store, high_water)},
    {"uplink", "url", Kind::kString, F(uplink, url), 0, 0, nullptr, /*secret=*/true},
    {"uplink", "protocol", Kind::kInt, F(uplink, protocol), 4, 5},
    {"uplink", "client_id", Kind::kString, F(uplink, client_id)},
    {"uplink", "username", Kind::kString, F(uplink, username)},
    {"uplink", "password_file", Kind::kString, F(uplink, password_file)},
    {"uplink", "ca_file", Kind::kString, F(uplink, ca_file)},
    {"uplink", "ca_dir", Kind::kString, F(uplink, ca_dir)},
    {"uplink", "cert_file", Kind::kString, F(uplink, cert_file)},
    {"uplink", "key_file", Kind::kString, F(uplink, key_file)},
    {"uplink", "server_name", Kind::kString, F(uplink, server_name)},
    {"uplink", "tls_verify", Kind::kBool, F(uplink, tls_verify)},
    {"uplink", "keepalive", Kind::kDuration, F(uplink, keepalive_ms), 0, 65535000},
    {"uplink", "inflight", Kind::kInt, F(uplink, inflight), 1, 65535},
    {"uplink", "ack_timeout", Kind::kDuration, F(uplink, ack_timeout_ms), 100, kDay},
    {"uplink", "shutdown_timeout", Kind::kDuration, F(uplink, shutdown_timeout_ms), 0, 600000},
    {"sync", "mode", Kind::kEnum, F(sync, mode), 0, 0, "message|batch"},
    {"sync", "batch_messages", Kind::kInt, F(sync, batch_messages), 1, 100000},
    {"sync", "batch_bytes", Kind::kSize, F(sync, batch_bytes), 1024, 256 << 20},
    {"sync", "linger", Kind::kDuration, F(sync, linger_ms), 0, 60000},
    {"sync", "compression_level", Kind::kInt, F(sync, compression_level), 1, 22},
    {"sync", "bandwidth_limit", Kind::kSize, F(sync, bandwidth_limit), 0, INT64_MAX},
    {"sync", "backoff_initial", Kind::kDuration, F(sync, backoff_initial_ms), 10, 3600000},
    {"sync", "backoff_max", Kind::kDuration, F(sync, backoff_max_ms), 10, kDay},
    {"sync", "max_attempts", Kind::kInt, F(sync, max_attempts), 0, 1000000},
    {"sync", "batch_topic", Kind::kString, F(sync, batch_topic)},
    {"sync", "priority_weights", Kind::kIntList, F(sync, priority_weights), 1, 1000},
    {"sync", "backlog_share", Kind::kInt, F(sync, backlog_share), 1, 100},
    {"status", "topic", Kind::kString, F(status, topic)},
    {"status", "interval", Kind::kDuration, F(status, interval_ms), 1000, kDay},
    {"metrics", "listen", Kind::kString, F(metrics, listen)},
    {"log", "level", Kind::kEnum, F(log, level), 0, 0, "debug|info|warn|error"},
    {"log", "format", Kind::kEnum, F(log, format), 0, 0, "text|json"},
};
#undef F

const char* const kTableArrays[] = {"route", "acl", "rate_limit"};
const char* const kRouteKeys[] = {"match", "priority", "ttl", "mode", "order", "upstream_topic"};
const char* const kAclKeys[] = {"uid", "user", "gid", "group", "publish"};
const char* const kRateKeys[] = {"uid", "gid", "messages_per_second", "bytes_per_second", "burst"};

bool InChoices(const char* choices, const std::string& v) {
  std::string_view all(choices);
  size_t start = 0;
  while (start <= all.size()) {
    size_t bar = all.find('|', start);
    std::string_view one = all.substr(start, bar == std::string_view::npos ? all.npos : bar - start);
    if (one == v) return true;
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return false;
}

std::string ChoicesText(const char* choices) {
  std::string s = choices;
  std::replace(s.begin(), s.end(), '|', ',');
  return "one of " + s;
}

class Parser {
 public:
  Parser(const std::string& file, LoadResult* out) : file_(file), out_(out) {}

  void Problem(int line, const std::string& key, const std::string& reason) {
    out_->problems.push_back(ConfigProblem{file_, line, key, reason});
  }

  // Sets a scalar from a TOML node.
  void SetFromNode(const KeyDesc& d, const toml::node& n) {
    int line = static_cast<int>(n.source().begin.line);
    std::string name = std::string(d.section) + "." + d.key;
    void* f = d.field(out_->config);
    switch (d.kind) {
      case Kind::kString:
      case Kind::kEnum:
        if (!n.is_string()) return Problem(line, name, "expected a string");
        return SetFromString(d, *n.value<std::string>(), line);
      case Kind::kInt:
        if (!n.is_integer()) return Problem(line, name, "expected an integer");
        return SetInt(d, *n.value<int64_t>(), line);
      case Kind::kMode:
        if (n.is_integer()) return SetInt(d, *n.value<int64_t>(), line);
        if (!n.is_string()) return Problem(line, name, "expected an octal string like \"0660\"");
        return SetFromString(d, *n.value<std::string>(), line);
      case Kind::kBool:
        if (!n.is_boolean()) return Problem(line, name, "expected true or false");
        *static_cast<bool*>(f) = *n.value<bool>();
        return;
      case Kind::kDuration:
        if (!n.is_string()) {
          return Problem(line, name, "expected a duration string with a unit, like \"30s\"");
        }
        return SetFromString(d, *n.value<std::string>(), line);
      case Kind::kSize:
        if (n.is_integer()) return SetInt(d, *n.value<int64_t>(), line);
        if (!n.is_string()) return Problem(line, name, "expected a size like \"256MiB\"");
        return SetFromString(d, *n.value<std::string>(), line);
      case Kind::kFloat:
        if (!n.is_number()) return Problem(line, name, "expected a number");
        return SetFloat(d, *n.value<double>(), line);
      case Kind::kIntList: {
        auto* arr = n.as_array();
        if (!arr) return Problem(line, name, "expected an array of integers");
        std::vector<int64_t> v;
        for (const auto& e : *arr) {
          if (!e.is_integer()) return Problem(line, name, "expected an array of integers");
          v.push_back(*e.value<int64_t>());
        }
        return SetList(d, v, line);
      }
    }
  }

  // Sets a scalar from text (environment variables, and string-typed TOML).
  void SetFromString(const KeyDesc& d, const std::string& s, int line) {
    std::string name = std::string(d.section) + "." + d.key;
    void* f = d.field(out_->config);
    std::string why;
    int64_t v = 0;
    switch (d.kind) {
      case Kind::kString:
        *static_cast<std::string*>(f) = s;
        return;
      case Kind::kEnum:
        if (!InChoices(d.choices, s)) {
          return Problem(line, name, "\"" + s + "\" is not " + ChoicesText(d.choices));
        }
        *static_cast<std::string*>(f) = s;
        return;
      case Kind::kInt: {
        if (!ParseInt(s, &v)) return Problem(line, name, "\"" + s + "\" is not an integer");
        return SetInt(d, v, line);
      }
      case Kind::kMode: {
        char* end = nullptr;
        errno = 0;
        long m = std::strtol(s.c_str(), &end, 8);
        if (s.empty() || *end != '\0' || errno != 0) {
          return Problem(line, name, "\"" + s + "\" is not an octal mode like \"0660\"");
        }
        return SetInt(d, m, line);
      }
      case Kind::kBool:
        if (s == "true" || s == "1") {
          *static_cast<bool*>(f) = true;
        } else if (s == "false" || s == "0") {
          *static_cast<bool*>(f) = false;
        } else {
          Problem(line, name, "\"" + s + "\" is not true or false");
        }
        return;
      case Kind::kDuration:
        if (!ParseDurationMs(s, &v, &why)) return Problem(line, name, why);
        return SetInt(d, v, line);
      case Kind::kSize:
        if (!ParseSizeBytes(s, &v, &why)) return Problem(line, name, why);
        return SetInt(d, v, line);
      case Kind::kFloat: {
        char* end = nullptr;
        double x = std::strtod(s.c_str(), &end);
        if (s.empty() || *end != '\0') return Problem(line, name, "\"" + s + "\" is not a number");
        return SetFloat(d, x, line);
      }
      case Kind::kIntList: {
        std::vector<int64_t> list;
        std::stringstream ss(s);
        std::string item;
        while (std::getline(ss, item, ',')) {
          if (!ParseInt(item, &v)) return Problem(line, name, "\"" + s + "\" is not a list like 70,20,10");
          list.push_back(v);
        }
        return SetList(d, list, line);
      }
    }
  }

  static bool ParseInt(const std::string& s, int64_t* out) {
    if (s.empty()) return false;
    char* end = nullptr;
    errno = 0;
    long long v = std::strtoll(s.c_str(), &end, 10);
    if (*end != '\0' || errno != 0) return false;
    *out = v;
    return true;
  }

  void SetInt(const KeyDesc& d, int64_t v, int line) {
    std::string name = std::string(d.section) + "." + d.key;
    if (v < d.min || v > d.max) {
      return Problem(line, name, "value " + std::to_string(v) + " out of range [" + Bound(d, d.min) +
                                     ", " + Bound(d, d.max) + "]");
    }
    *static_cast<int64_t*>(d.field(out_->config)) = v;
  }

  static std::string Bound(const KeyDesc& d, int64_t b) {
    if (b == INT64_MAX) return "max";
    if (d.kind == Kind::kDuration) return FormatDurationMs(b);
    if (d.kind == Kind::kSize) return FormatSizeBytes(b);
    if (d.kind == Kind::kMode) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "0%" PRIo64, static_cast<uint64_t>(b));
      return buf;
    }
    return std::to_string(b);
  }

  void SetFloat(const KeyDesc& d, double v, int line) {
    std::string name = std::string(d.section) + "." + d.key;
    // high_water is the only float: a fraction of the cap.
    if (!(v > 0.0 && v <= 1.0)) return Problem(line, name, "expected a fraction in (0, 1]");
    *static_cast<double*>(d.field(out_->config)) = v;
  }

  void SetList(const KeyDesc& d, const std::vector<int64_t>& v, int line) {
    std::string name = std::string(d.section) + "." + d.key;
    if (v.size() != 3) return Problem(line, name, "expected 3 weights: high, normal, low");
    for (int64_t x : v) {
      if (x < d.min || x > d.max) {
        return Problem(line, name, "weights must be in [" + std::to_string(d.min) + ", " +
                                       std::to_string(d.max) + "]");
      }
    }
    *static_cast<std::vector<int64_t>*>(d.field(out_->config)) = v;
  }

  void ParseTable(const toml::table& root) {
    for (const auto& [k, node] : root) {
      std::string section(k.str());
      int line = static_cast<int>(node.source().begin.line);
      if (std::find_if(std::begin(kTableArrays), std::end(kTableArrays),
                       [&](const char* a) { return section == a; }) != std::end(kTableArrays)) {
        ParseTableArray(section, node);
        continue;
      }
      bool known_section = std::any_of(std::begin(kKeys), std::end(kKeys),
                                       [&](const KeyDesc& d) { return section == d.section; });
      if (!known_section) {
        Problem(line, section, "unknown section");
        continue;
      }
      const toml::table* tbl = node.as_table();
      if (!tbl) {
        Problem(line, section, "expected a table [" + section + "]");
        continue;
      }
      for (const auto& [kk, value] : *tbl) {
        std::string key(kk.str());
        const KeyDesc* d = Find(section, key);
        if (!d) {
          Problem(static_cast<int>(value.source().begin.line), section + "." + key, "unknown key");
          continue;
        }
        SetFromNode(*d, value);
      }
    }
  }

  static const KeyDesc* Find(const std::string& section, const std::string& key) {
    for (const auto& d : kKeys) {
      if (section == d.section && key == d.key) return &d;
    }
    return nullptr;
  }

  template <size_t N>
  bool CheckKeys(const std::string& section, const toml::table& t, const char* const (&keys)[N]) {
    bool ok = true;
    for (const auto& [kk, value] : t) {
      std::string key(kk.str());
      if (std::find_if(std::begin(keys), std::end(keys), [&](const char* x) { return key == x; }) ==
          std::end(keys)) {
        Problem(static_cast<int>(value.source().begin.line), section + "." + key, "unknown key");
        ok = false;
      }
    }
    return ok;
  }

  bool GetString(const std::string& name, const toml::table& t, const char* key, std::string* out) {
    const toml::node* n = t.get(key);
    if (!n) return false;
    if (!n->is_string()) {
      Problem(static_cast<int>(n->source().begin.line), name + "." + key, "expected a string");
      return false;
    }
    *out = *n->value<std::string>();
    return true;
  }

  bool GetNumber(const std::string& name, const toml::table& t, const char* key, double* out,
                 bool integer) {
    const toml::node* n = t.get(key);
    if (!n) return false;
    if (integer ? !n->is_integer() : !n->is_number()) {
      Problem(static_cast<int>(n->source().begin.line), name + "." + key,
              integer ? "expected an integer" : "expected a number");
      return false;
    }
    *out = *n->value<double>();
    if (*out < 0) {
      Problem(static_cast<int>(n->source().begin.line), name + "." + key, "must not be negative");
      return false;
    }
    return true;
  }

  void ParseTableArray(const std::string& section, const toml::node& node) {
    int line = static_cast<int>(node.source().begin.line);
    const toml::array* arr = node.as_array();
    if (!arr || !arr->is_array_of_tables()) {
      return Problem(line, section, "expected [[" + section + "]] tables");
    }
    for (const auto& elem : *arr) {
      const toml::table& t = *elem.as_table();
      int tline = static_cast<int>(t.source().begin.line);
      if (section == "route") {
        CheckKeys(section, t, kRouteKeys);
        RouteConfig r;
        r.line = tline;
        GetString(section, t, "match", &r.match);
        if (GetString(section, t, "priority", &r.priority) &&
            !InChoices("high|normal|low", r.priority)) {
          Problem(tline, "route.priority", "\"" + r.priority + "\" is not one of high,normal,low");
        }
        std::string s;
        if (GetString(section, t, "ttl", &s)) {
          std::string why;
          if (!ParseDurationMs(s, &r.ttl_ms, &why)) Problem(tline, "route.ttl", why);
        }
        if (GetString(section, t, "mode", &r.mode) && !InChoices("message|batch", r.mode)) {
          Problem(tline, "route.mode", "\"" + r.mode + "\" is not one of message,batch");
        }
        if (GetString(section, t, "order", &r.order) && !InChoices("strict|live-first", r.order)) {
          Problem(tline, "route.order", "\"" + r.order + "\" is not one of strict,live-first");
        }
        GetString(section, t, "upstream_topic", &r.upstream_topic);
        if (r.match.empty()) Problem(tline, "route.match", "must not be empty");
        if (r.upstream_topic.empty()) Problem(tline, "route.upstream_topic", "must not be empty");
        out_->config.routes.push_back(r);
      } else if (section == "acl") {
        CheckKeys(section, t, kAclKeys);
        AclConfig a;
        a.line = tline;
        double v;
        if (GetNumber(section, t, "uid", &v, true)) a.uid = static_cast<int64_t>(v);
        if (GetNumber(section, t, "gid", &v, true)) a.gid = static_cast<int64_t>(v);
        if (GetString(section, t, "user", &a.user)) {
          auto uid = platform::LookupUid(a.user);
          if (uid.ok()) {
            a.uid = *uid;
          } else {
            Problem(tline, "acl.user", uid.status().message());
          }
        }
        if (GetString(section, t, "group", &a.group)) {
          auto gid = platform::LookupGid(a.group);
          if (gid.ok()) {
            a.gid = *gid;
          } else {
            Problem(tline, "acl.group", gid.status().message());
          }
        }
        if (const toml::node* p = t.get("publish")) {
          const toml::array* pa = p->as_array();
          bool good = pa != nullptr;
          if (pa) {
            for (const auto& e : *pa) {
              if (!e.is_string()) {
                good = false;
                break;
              }
              a.publish.push_back(*e.value<std::string>());
            }
          }
          if (!good) Problem(tline, "acl.publish", "expected an array of topic filters");
        }
        if (a.uid < 0 && a.gid < 0) Problem(tline, "acl", "needs uid, user, gid or group");
        out_->config.acls.push_back(a);
      } else {
        CheckKeys(section, t, kRateKeys);
        RateLimitConfig r;
        r.line = tline;
        double v;
        if (GetNumber(section, t, "uid", &v, true)) r.uid = static_cast<int64_t>(v);
        if (GetNumber(section, t, "gid", &v, true)) r.gid = static_cast<int64_t>(v);
        GetNumber(section, t, "messages_per_second", &r.messages_per_second, false);
        GetNumber(section, t, "bytes_per_second", &r.bytes_per_second, false);
        GetNumber(section, t, "burst", &r.burst, false);
        if (r.messages_per_second == 0 && r.bytes_per_second == 0) {
          Problem(tline, "rate_limit", "needs messages_per_second or bytes_per_second");
        }
        out_->config.rate_limits.push_back(r);
      }
    }
  }

  void ApplyEnvironment(const std::vector<std::string>& env) {
    for (const auto& d : kKeys) {
      std::string var = std::string("EDGESPOOL_") + d.section + "_" + d.key;
      for (auto& c : var) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      for (const auto& kv : env) {
        if (kv.size() > var.size() && kv.compare(0, var.size(), var) == 0 && kv[var.size()] == '=') {
          size_t before = out_->problems.size();
          SetFromString(d, kv.substr(var.size() + 1), 0);
          for (size_t i = before; i < out_->problems.size(); ++i) {
            out_->problems[i].reason += " (from " + var + ")";
          }
        }
      }
    }
  }

  void Finish() {
    Config& c = out_->config;
    if (c.node.id.empty()) c.node.id = platform::HostName();
    for (char ch : c.node.id) {
      if (ch == '/' || ch == '+' || ch == '#' || ch == '\0') {
        Problem(0, "node.id", "must not contain /, + or #: it is a topic level");
        break;
      }
    }
    if (c.uplink.client_id.empty()) c.uplink.client_id = "edgespool-" + c.node.id;
    if (c.uplink.url.rfind("mqtt://", 0) != 0 && c.uplink.url.rfind("mqtts://", 0) != 0) {
      Problem(0, "uplink.url", "expected mqtt://host[:port] or mqtts://host[:port]");
    }
    if (c.sync.backoff_initial_ms > c.sync.backoff_max_ms) {
      Problem(0, "sync.backoff_initial", "must not exceed sync.backoff_max (" +
                                             FormatDurationMs(c.sync.backoff_max_ms) + ")");
    }
    if (!c.uplink.password_file.empty()) {
      auto pw = platform::CheckReadable(c.uplink.password_file);
      if (!pw.ok()) Problem(0, "uplink.password_file", pw.message());
      if (c.uplink.username.empty()) {
        Problem(0, "uplink.password_file", "a password needs uplink.username");
      }
    }
    for (auto [key, path] : {std::pair{"uplink.ca_file", &c.uplink.ca_file},
                             std::pair{"uplink.cert_file", &c.uplink.cert_file},
                             std::pair{"uplink.key_file", &c.uplink.key_file}}) {
      if (path->empty()) continue;
      auto st = platform::CheckReadable(*path);
      if (!st.ok()) Problem(0, key, st.message());
    }
    if (c.uplink.cert_file.empty() != c.uplink.key_file.empty()) {
      Problem(0, "uplink.cert_file", "cert_file and key_file go together (mutual TLS)");
    }
    if (c.producer.socket.empty()) Problem(0, "producer.socket", "must not be empty");
    if (c.store.path.empty()) Problem(0, "store.path", "must not be empty");
    if (c.routes.empty() || c.routes.back().match != "#") {
      // The default route: everything not matched earlier.
      RouteConfig def;
      c.routes.push_back(def);
    }
  }

 private:
  std::string file_;
  LoadResult* out_;
};

}  // namespace

std::string ConfigProblem::ToString() const {
  std::string s = file.empty() ? "config" : file;
  if (line > 0) s += ":" + std::to_string(line);
  s += ": " + key + ": " + reason;
  return s;
}

LoadResult ParseConfig(const std::string& text, const std::string& file,
                       const std::vector<std::string>& env) {
  LoadResult out;
  out.config.source = file;
  Parser p(file, &out);
  try {
    toml::table root = toml::parse(text, file);
    p.ParseTable(root);
  } catch (const toml::parse_error& e) {
    out.problems.push_back(ConfigProblem{file, static_cast<int>(e.source().begin.line), "syntax",
                                         std::string(e.description())});
    return out;
  }
  p.ApplyEnvironment(env);
  p.Finish();
  return out;
}

LoadResult LoadConfig(const std::string& path, const std::vector<std::string>& env) {
  if (path.empty()) return ParseConfig("", "", env);
  auto text = platform::ReadWholeFile(path);
  if (!text.ok()) {
    LoadResult out;
    out.problems.push_back(ConfigProblem{path, 0, "file", text.status().message()});
    return out;
  }
  return ParseConfig(*text, path, env);
}

std::vector<std::string> ProcessEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  return env;
}

namespace {

// A TOML basic string: quotes, backslashes and control characters escaped.
std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out + "\"";
}

std::string RedactUrl(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto at = url.find('@', scheme + 3);
  auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return url;
  return url.substr(0, scheme + 3) + "<redacted>@" + url.substr(at + 1);
}

}  // namespace

std::string RenderConfig(const Config& config) {
  Config& c = const_cast<Config&>(config);  // the accessors are non-const; nothing is written
  std::ostringstream out;
  const char* section = "";
  for (const auto& d : kKeys) {
    if (std::strcmp(section, d.section) != 0) {
      section = d.section;
      out << (out.tellp() > 0 ? "\n" : "") << "[" << section << "]\n";
    }
    out << d.key << " = ";
    void* f = d.field(c);
    switch (d.kind) {
      case Kind::kString:
      case Kind::kEnum: {
        std::string v = *static_cast<std::string*>(f);
        if (d.secret) v = RedactUrl(v);
        out << Quote(v);
        break;
      }
      case Kind::kInt: out << *static_cast<int64_t*>(f); break;
      case Kind::kBool: out << (*static_cast<bool*>(f) ? "true" : "false"); break;
      case Kind::kDuration: out << Quote(FormatDurationMs(*static_cast<int64_t*>(f))); break;
      case Kind::kSize: out << Quote(FormatSizeBytes(*static_cast<int64_t*>(f))); break;
      case Kind::kFloat: out << *static_cast<double*>(f); break;
      case Kind::kMode: {
        char buf[16];
        std::snprintf(buf, sizeof buf, "\"0%03" PRIo64 "\"",
                      static_cast<uint64_t>(*static_cast<int64_t*>(f)));
        out << buf;
        break;
      }
      case Kind::kIntList: {
        const auto& v = *static_cast<std::vector<int64_t>*>(f);
        out << "[";
        for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "") << v[i];
        out << "]";
        break;
      }
    }
    out << "\n";
  }
  for (const auto& r : config.routes) {
    out << "\n[[route]]\nmatch = " << Quote(r.match) << "\n";
    if (!r.priority.empty()) out << "priority = " << Quote(r.priority) << "\n";
    if (r.ttl_ms) out << "ttl = " << Quote(FormatDurationMs(r.ttl_ms)) << "\n";
    if (!r.mode.empty()) out << "mode = " << Quote(r.mode) << "\n";
    out << "order = " << Quote(r.order) << "\nupstream_topic = " << Quote(r.upstream_topic) << "\n";
  }
  for (const auto& a : config.acls) {
    out << "\n[[acl]]\n";
    if (a.uid >= 0) out << "uid = " << a.uid << "\n";
    if (a.gid >= 0) out << "gid = " << a.gid << "\n";
    out << "publish = [";
    for (size_t i = 0; i < a.publish.size(); ++i) out << (i ? ", " : "") << Quote(a.publish[i]);
    out << "]\n";
  }
  for (const auto& r : config.rate_limits) {
    out << "\n[[rate_limit]]\n";
    if (r.uid >= 0) out << "uid = " << r.uid << "\n";
    if (r.gid >= 0) out << "gid = " << r.gid << "\n";
    out << "messages_per_second = " << r.messages_per_second
        << "\nbytes_per_second = " << r.bytes_per_second << "\nburst = " << r.burst << "\n";
  }
  return out.str();
}

std::string ConfigDigest(const Config& config) {
  // FNV-1a 64 over the rendered (redacted) config: stable across restarts,
  // changes whenever an effective value does.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : RenderConfig(config)) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  return buf;
}

std::vector<std::string> KnownKeys() {
  std::vector<std::string> keys;
  for (const auto& d : kKeys) keys.push_back(std::string(d.section) + "." + d.key);
  for (const char* k : kRouteKeys) keys.push_back(std::string("route.") + k);
  for (const char* k : kAclKeys) keys.push_back(std::string("acl.") + k);
  for (const char* k : kRateKeys) keys.push_back(std::string("rate_limit.") + k);
  return keys;
}

bool ParseDurationMs(const std::string& text, int64_t* out, std::string* why) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string digits = text.substr(0, i), unit = text.substr(i);
  if (digits.empty() || digits.size() > 12) {
    *why = "\"" + text + "\" is not a duration (expected e.g. 250ms, 30s, 5m, 1h, 1d)";
    return false;
  }
  int64_t n = std::stoll(digits);
  int64_t mult;
  if (unit == "ms") {
    mult = 1;
  } else if (unit == "s") {
    mult = 1000;
  } else if (unit == "m") {
    mult = 60000;
  } else if (unit == "h") {
    mult = 3600000;
  } else if (unit == "d") {
    mult = 86400000;
  } else {
    *why = "\"" + text + "\" has " + (unit.empty() ? "no unit" : "unknown unit \"" + unit + "\"") +
           " (use ms, s, m, h or d)";
    return false;
  }
  *out = n * mult;
  return true;
}

bool ParseSizeBytes(const std::string& text, int64_t* out, std::string* why) {
  size_t i = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
  std::string digits = text.substr(0, i), unit = text.substr(i);
  if (digits.empty() || digits.size() > 15) {
    *why = "\"" + text + "\" is not a size (expected e.g. 512KiB, 256MiB, 1GiB or bytes)";
    return false;
  }
  int64_t n = std::stoll(digits);
  int64_t mult;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "KiB") {
    mult = int64_t{1} << 10;
  } else if (unit == "MiB") {
    mult = int64_t{1} << 20;
  } else if (unit == "GiB") {
    mult = int64_t{1} << 30;
  } else {
    *why = "\"" + text + "\" has unknown unit \"" + unit + "\" (use B, KiB, MiB or GiB)";
    return false;
  }
  if (n > INT64_MAX / mult) {
    *why = "\"" + text + "\" is too large";
    return false;
  }
  *out = n * mult;
  return true;
}

std::string FormatDurationMs(int64_t ms) {
  if (ms != 0 && ms % 86400000 == 0) return std::to_string(ms / 86400000) + "d";
  if (ms != 0 && ms % 3600000 == 0) return std::to_string(ms / 3600000) + "h";
  if (ms != 0 && ms % 60000 == 0) return std::to_string(ms / 60000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

std::string FormatSizeBytes(int64_t b) {
  if (b != 0 && b % (int64_t{1} << 30) == 0) return std::to_string(b >> 30) + "GiB";
  if (b != 0 && b % (int64_t{1} << 20) == 0) return std::to_string(b >> 20) + "MiB";
  if (b != 0 && b % (int64_t{1} << 10) == 0) return std::to_string(b >> 10) + "KiB";
  return std::to_string(b);
}

std::string ExpandNode(const std::string& tmpl, const std::string& node) {
  std::string out = tmpl;
  for (size_t pos; (pos = out.find("{node}")) != std::string::npos;) out.replace(pos, 6, node);
  return out;
}

}  // namespace edgespool::agent
