#include "agent/cli/fleet.h"

#include <cJSON.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "agent/cli/exit_codes.h"
#include "agent/cli/options.h"
#include "agent/config/config.h"
#include "agent/protocol/json_writer.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "sync/mqtt/client.h"

namespace edgespool::agent {

namespace {

std::string Age(int64_t now_ms, int64_t then_ms) {
  if (then_ms <= 0) return "never";
  int64_t s = std::max<int64_t>(0, (now_ms - then_ms) / 1000);
  char buf[32];
  if (s < 120) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 7200) {
    std::snprintf(buf, sizeof buf, "%lldm", static_cast<long long>(s / 60));
  } else if (s < 172800) {
    std::snprintf(buf, sizeof buf, "%lldh", static_cast<long long>(s / 3600));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd", static_cast<long long>(s / 86400));
  }
  return buf;
}

double Num(const cJSON* obj, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

std::string Str(const cJSON* obj, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

// Subscribes and collects status documents: the retained ones arrive right
// after the SUBACK; `wait_ms` later the table is printed (--watch: refreshed).
class Collector : public sync::mqtt::ClientListener {
 public:
  std::map<std::string, std::string> docs;  // topic -> payload
  std::string error;
  bool subscribed = false;
  int64_t subscribed_ms = 0;
  std::function<void()> on_update;

  void OnPublishAcked(uint64_t, const Status&, uint8_t) override {}
  void OnDisconnected(const Status& why) override { error = why.ToString(); }
  void OnSubscribed(const std::vector<uint8_t>& codes) override {
    subscribed = true;
    subscribed_ms = platform::SystemClock::Get().MonotonicMs();
    if (!codes.empty() && codes[0] >= 0x80) error = "subscription refused by the broker";
  }
  void OnMessage(const sync::mqtt::IncomingMessage& m) override {
    std::string topic(m.topic);
    if (m.payload.empty()) {
      docs.erase(topic);  // a cleared retained status: node removed
    } else {
      docs[topic] = std::string(m.payload);
    }
    if (on_update) on_update();
  }
};

}  // namespace

bool ParseFleetRow(const std::string& json, FleetRow* row) {
  cJSON* doc = cJSON_ParseWithLength(json.data(), json.size());
  if (!doc) return false;
  bool ok = cJSON_IsObject(doc) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(doc, "node"));
  if (ok) {
    row->node = Str(doc, "node");
    row->online = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "online"));
    row->last_sync_ms = static_cast<int64_t>(Num(doc, "last_sync_ms"));
    row->report_ts_ms = static_cast<int64_t>(Num(doc, "ts_ms"));
    row->rate = Num(doc, "rate_msgs_per_s");
    const cJSON* pending = cJSON_GetObjectItemCaseSensitive(doc, "pending");
    row->pending = static_cast<uint64_t>(Num(pending, "messages"));
    row->oldest_pending_ts_ms = static_cast<int64_t>(Num(pending, "oldest_ts_ms"));
    const cJSON* uplink = cJSON_GetObjectItemCaseSensitive(doc, "uplink");
    row->uplink_state = Str(uplink, "state");
    row->last_error = Str(uplink, "last_error");
  }
  cJSON_Delete(doc);
  return ok;
}

void RankFleet(std::vector<FleetRow>* rows, int64_t now_ms, int64_t stale_ms) {
  for (auto& r : *rows) {
    // Stale: offline; or messages waiting and no successful sync within the
    // threshold (an idle node with nothing pending is healthy).
    bool behind = r.pending > 0 && (r.last_sync_ms == 0 || now_ms - r.last_sync_ms > stale_ms);
    bool silent = r.report_ts_ms > 0 && now_ms - r.report_ts_ms > stale_ms;
    r.stale = !r.online || behind || silent;
  }
  std::sort(rows->begin(), rows->end(), [](const FleetRow& a, const FleetRow& b) {
    if (a.online != b.online) return !a.online;
    if (a.stale != b.stale) return a.stale;
    if (a.last_sync_ms != b.last_sync_ms) return a.last_sync_ms < b.last_sync_ms;
    return a.node < b.node;
  });
}

std::string RenderFleetTable(const std::vector<FleetRow>& rows, int64_t now_ms) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-24s %-8s %-6s %-10s %10s %-12s %10s  %s\n", "NODE", "ONLINE",
                "HEALTH", "LAST SYNC", "PENDING", "OLDEST", "RATE/s", "LAST ERROR");
  out += line;
  size_t stale = 0, offline = 0;
  for (const auto& r : rows) {
    stale += r.stale ? 1 : 0;
    offline += r.online ? 0 : 1;
    std::snprintf(line, sizeof line, "%-24s %-8s %-6s %-10s %10llu %-12s %10.1f  %s\n",
                  r.node.c_str(), r.online ? "yes" : "NO", r.stale ? "STALE" : "ok",
                  Age(now_ms, r.last_sync_ms).c_str(), static_cast<unsigned long long>(r.pending),
                  r.pending ? Age(now_ms, r.oldest_pending_ts_ms).c_str() : "-", r.rate,
                  r.last_error.c_str());
    out += line;
  }
  std::snprintf(line, sizeof line, "%zu nodes: %zu ok, %zu stale, %zu offline\n", rows.size(),
                rows.size() - stale, stale - offline, offline);
  out += line;
  return out;
}

std::string RenderFleetJson(const std::vector<FleetRow>& rows) {
  std::string out = "[";
  for (size_t i = 0; i < rows.size(); ++i) {
    const FleetRow& r = rows[i];
    protocol::JsonObjectWriter w;
    w.Str("node", r.node).Bool("online", r.online).Bool("stale", r.stale)
        .Int("last_sync_ms", r.last_sync_ms).Uint("pending", r.pending)
        .Int("oldest_pending_ts_ms", r.oldest_pending_ts_ms).Str("uplink", r.uplink_state)
        .Str("last_error", r.last_error);
    out += (i ? "," : "") + std::move(w).Finish();
  }
  return out + "]\n";
}

namespace {

struct FleetArgs {
  std::string broker, cafile, cert, key, username, password_file;
  std::string topic = "edgespool/+/status";
  int64_t stale_ms = 15 * 60000, wait_ms = 2000;
  bool watch = false, json = false;
};

FleetArgs ToFleetArgs(const cli::Args& args) {
  FleetArgs a;
  a.broker = args.Str("broker");
  a.cafile = args.Str("cafile");
  a.cert = args.Str("cert");
  a.key = args.Str("key");
  a.username = args.Str("username");
  a.password_file = args.Str("password-file");
  a.topic = args.Str("topic", a.topic);
  a.stale_ms = args.DurationMs("stale", a.stale_ms);
  a.wait_ms = args.DurationMs("wait", a.wait_ms);
  a.watch = args.Has("watch");
  a.json = args.Has("json");
  return a;
}

// The MQTT client's options for a fleet read; false (reported) if the
// password file cannot be read.
bool FleetClientOptions(const FleetArgs& a, sync::mqtt::ClientOptions* o) {
  o->url = a.broker;
  o->session.client_id = "edgespool-fleet-" + std::to_string(::getpid());
  o->tls.ca_file = a.cafile;
  o->tls.cert_file = a.cert;
  o->tls.key_file = a.key;
  if (!a.username.empty()) o->session.username = a.username;
  if (!a.password_file.empty()) {
    auto pw = platform::ReadWholeFile(a.password_file);
    if (!pw.ok()) {
      std::fprintf(stderr, "edgespool fleet: %s\n", pw.status().message().c_str());
      return false;
    }
    std::string p = *pw;
    p.resize(p.find_first_of("\r\n") == std::string::npos ? p.size() : p.find_first_of("\r\n"));
    o->session.password = p;
  }
  o->subscriptions.emplace_back(a.topic, 1);
  o->backoff_initial_ms = 200;
  o->backoff_max_ms = 2000;
  return true;
}

// Prints the table (or JSON) of the documents collected so far and returns
// the exit code it implies: 2 if any node is stale, else 0.
int RenderCollected(const FleetArgs& a, const Collector& collector, int64_t now_ms) {
  std::vector<FleetRow> rows;
  for (const auto& [t, doc] : collector.docs) {
    FleetRow r;
    if (ParseFleetRow(doc, &r)) rows.push_back(r);
  }
  RankFleet(&rows, now_ms, a.stale_ms);
  int exit_code = kExitOk;
  for (const auto& r : rows) {
    if (r.stale) exit_code = 2;
  }
  std::string text = a.json ? RenderFleetJson(rows) : RenderFleetTable(rows, now_ms);
  if (a.watch && isatty(1)) std::fputs("\033[H\033[2J", stdout);
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  return exit_code;
}

// Runs the loop until the table is printed (once, or forever with --watch)
// or the broker stays out of reach for 10 s. Returns the exit code.
int RunFleetLoop(const FleetArgs& a, platform::Loop& loop, const Collector& collector) {
  const platform::Clock& clock = platform::SystemClock::Get();
  int exit_code = kExitOk;
  platform::TimerHandle timer(loop);
  int64_t start = clock.MonotonicMs();
  bool rendered = false;
  timer.Start(50, 50, [&] {
    int64_t now = clock.MonotonicMs();
    if (!collector.subscribed) {
      if (now - start > 10000) {
        std::fprintf(stderr, "edgespool fleet: cannot reach %s: %s\n", a.broker.c_str(),
                     collector.error.empty() ? "timed out" : collector.error.c_str());
        exit_code = kExitUnavailable;
        loop.Stop();
      }
      return;
    }
    // Retained documents arrive right after the SUBACK; live ones keep
    // coming (every node republishes), so wait a fixed time, not for quiet.
    if (now - collector.subscribed_ms < a.wait_ms && !rendered) return;
    if (!a.watch) {
      exit_code = RenderCollected(a, collector, clock.WallMs());
      loop.Stop();
    } else if (!rendered || now % 2000 < 50) {
      exit_code = RenderCollected(a, collector, clock.WallMs());
    }
    rendered = true;
  });
  loop.Run();
  timer.Stop();
  return exit_code;
}


int Fleet(const cli::Args& parsed) {
  FleetArgs args = ToFleetArgs(parsed);
  if (args.broker.empty()) {
    std::fprintf(stderr, "edgespool fleet: --broker is required\n"
                         "(run 'edgespool fleet --help' for usage)\n");
    return kExitUsage;
  }
  platform::Logger::SetLevel(platform::LogLevel::kError);
  auto loop_or = platform::Loop::Create();
  if (!loop_or.ok()) return kExitSoftware;
  platform::Loop& loop = **loop_or;
  Collector collector;
  sync::mqtt::ClientOptions o;
  if (!FleetClientOptions(args, &o)) return kExitConfig;
  auto client = sync::mqtt::Client::Create(loop, std::move(o), &collector);
  if (!client.ok()) {
    std::fprintf(stderr, "edgespool fleet: %s\n", client.status().ToString().c_str());
    return kExitUsage;
  }
  (*client)->Start();
  int exit_code = RunFleetLoop(args, loop, collector);
  client->reset();
  return exit_code;
}

constexpr cli::OptionSpec kFleetOptions[] = {
    cli::Opt("broker", 'b', cli::ValueKind::kString, "URL",
             "The central broker: mqtt://host[:1883] or mqtts://host[:8883]. Required."),
    cli::Opt("stale", 0, cli::ValueKind::kDuration, "DURATION",
             "A node with messages pending and no sync for this long, or no status report for "
             "this long, is stale (default 15m).")
        .Range(1, INT64_MAX),
    cli::Flag("watch", 'w', "Keep running and refresh the table every 2 s."),
    cli::Flag("json", 0, "Print a JSON array instead of the table."),
    cli::Opt("topic", 't', cli::ValueKind::kString, "FILTER",
             "Where the nodes' statuses are retained (default edgespool/+/status)."),
    cli::Opt("wait", 0, cli::ValueKind::kDuration, "DURATION",
             "How long to collect statuses after subscribing (default 2s).")
        .Range(0, 3600000),
    cli::Opt("cafile", 0, cli::ValueKind::kFile, "FILE",
             "CA certificates to verify the broker (default: the system's)."),
    cli::Opt("cert", 0, cli::ValueKind::kFile, "FILE", "Client certificate for mutual TLS."),
    cli::Opt("key", 0, cli::ValueKind::kFile, "FILE", "Its private key."),
    cli::Opt("username", 'u', cli::ValueKind::kString, "USER", "MQTT user name."),
    cli::Opt("password-file", 0, cli::ValueKind::kFile, "FILE",
             "A file whose first line is the MQTT password."),
};

constexpr cli::ExitCodeDoc kFleetExits[] = {
    {0, "every node is online and fresh"},
    {2, "a node is offline or stale"},
    {64, "usage error, or a bad --broker URL"},
    {69, "the broker cannot be reached within 10 s"},
    {70, "internal error"},
    {78, "the password file cannot be read"},
};

}  // namespace

const cli::CommandSpec kFleetCommand = cli::Command(
    "fleet", "--broker URL [options]", "every node's status from the broker, worst first",
    "Reads every node's retained status document from the central broker and prints one row "
    "per node, worst first: offline, then stale, then the oldest sync. For cron and "
    "monitoring checks: the exit status is 2 when a node is offline or stale.",
    kFleetOptions, kFleetExits, Fleet, 0, 0);

int FleetCommand(int argc, char** argv) { return cli::RunCommand(kFleetCommand, argc, argv); }

}  // namespace edgespool::agent
