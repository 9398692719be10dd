#include "agent/cli/fleet.h"

#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>

#include "agent/cli/exit_codes.h"
#include "agent/cli/options.h"
#include "agent/fleet/dashboard.h"
#include "agent/fleet/fleet_metrics.h"
#include "agent/fleet/fleet_watcher.h"
#include "agent/fleet/render.h"
#include "agent/http/server.h"
#include "platform/clock.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "sync/transport.h"

namespace edgespool::agent {

namespace {

struct FleetArgs {
  std::string broker, cafile, cert, key, username, password_file;
  std::string topic = "edgespool/+/status";
  std::string http, metrics;
  int64_t stale_ms = 15 * 60000, wait_ms = 2000;
  int64_t max_nodes = 10000;
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
  a.http = args.Str("http");
  a.metrics = args.Str("metrics");
  a.stale_ms = args.DurationMs("stale", a.stale_ms);
  a.wait_ms = args.DurationMs("wait", a.wait_ms);
  a.max_nodes = args.Int("max-nodes", a.max_nodes);
  a.watch = args.Has("watch");
  a.json = args.Has("json");
  return a;
}

// Checks what the option table cannot: --broker is there, the listen
// addresses parse. Returns -1 to go on, else the exit code.
int CheckFleetArgs(const FleetArgs& a) {
  if (a.broker.empty()) {
    std::fprintf(stderr,
                 "edgespool fleet: --broker is required\n"
                 "(run 'edgespool fleet --help' for usage)\n");
    return kExitUsage;
  }
  for (const std::string* addr : {&a.http, &a.metrics}) {
    if (addr->empty()) continue;
    auto parsed = ParseListenAddress(*addr);
    if (!parsed.ok()) {
      std::fprintf(stderr, "edgespool fleet: %s\n", parsed.status().message().c_str());
      return kExitUsage;
    }
  }
  return -1;
}

// The watcher's MQTT options; false (reported) if the password file cannot
// be read.
bool WatcherOptions(const FleetArgs& a, fleet::FleetWatcherOptions* w) {
  sync::mqtt::ClientOptions& o = w->client;
  o.url = a.broker;
  o.session.client_id = "edgespool-fleet-" + std::to_string(::getpid());
  o.tls.ca_file = a.cafile;
  o.tls.cert_file = a.cert;
  o.tls.key_file = a.key;
  if (!a.username.empty()) o.session.username = a.username;
  if (!a.password_file.empty()) {
    auto pw = platform::ReadWholeFile(a.password_file);
    if (!pw.ok()) {
      std::fprintf(stderr, "edgespool fleet: %s\n", pw.status().message().c_str());
      return false;
    }
    std::string p = *pw;
    p.resize(p.find_first_of("\r\n") == std::string::npos ? p.size() : p.find_first_of("\r\n"));
    o.session.password = p;
  }
  o.backoff_initial_ms = 200;
  o.backoff_max_ms = 2000;
  w->topic = a.topic;
  return true;
}

// Prints the table (or JSON) of the fleet as it stands and returns the exit
// code it implies: 2 if any node is stale, else 0.
int PrintFleet(const FleetArgs& a, const fleet::FleetModel& model, int64_t now_ms) {
  auto ranked = model.Ranked();
  int exit_code = kExitOk;
  for (const auto* v : ranked) {
    if (v->stale()) exit_code = 2;
  }
  std::string text = a.json ? fleet::FleetJson(ranked) : fleet::FleetTable(ranked, now_ms);
  if (a.watch && isatty(1)) std::fputs("\033[H\033[2J", stdout);
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  return exit_code;
}

// The servers of --http and --metrics, and the signals that end them.
struct Services {
  MetricsRegistry registry;
  std::unique_ptr<fleet::Dashboard> dashboard;
  std::unique_ptr<HttpServer> metrics;
  std::unique_ptr<platform::SignalHandle> sigint, sigterm;
};

// Starts what --http and --metrics ask for; false (reported) if one cannot
// listen. Prints each URL on stdout (port 0 gets its real port).
bool StartServices(const FleetArgs& a, platform::Loop& loop, fleet::FleetWatcher* watcher,
                   Services* s) {
  const platform::Clock& clock = platform::SystemClock::Get();
  fleet::RegisterFleetMetrics(&s->registry, watcher, &clock);
  std::string broker = a.broker;
  if (auto url = sync::ParseBrokerUrl(a.broker); url.ok()) broker = url->Redacted();
  if (!a.http.empty()) {
    // A new client's first write is the whole fleet (a row is at most ~1 KiB),
    // so the bound on what a client may leave unread grows with --max-nodes:
    // a slow reader is still dropped, a big snapshot alone never is.
    HttpServerOptions http;
    http.max_stream_buffer_bytes = 4 * 1024 * 1024 + static_cast<size_t>(a.max_nodes) * 1024;
    auto d = fleet::Dashboard::Create(loop, *ParseListenAddress(a.http), watcher, clock, broker,
                                      &s->registry, http);
    if (!d.ok()) {
      std::fprintf(stderr, "edgespool fleet: --http: %s\n", d.status().ToString().c_str());
      return false;
    }
    s->dashboard = std::move(*d);
    watcher->AddObserver(s->dashboard.get());
    ListenAddress shown = *ParseListenAddress(a.http);
    shown.port = s->dashboard->port();
    std::printf("dashboard: http://%s/\n", shown.ToString().c_str());
  }
  if (!a.metrics.empty()) {
    HttpServerHandlers h;
    h.metrics = &s->registry;
    h.readiness = [watcher] {
      return watcher->connected() ? Readiness{true, "broker connected"}
                                  : Readiness{false, "broker not connected"};
    };
    auto m = HttpServer::Create(loop, *ParseListenAddress(a.metrics), std::move(h));
    if (!m.ok()) {
      std::fprintf(stderr, "edgespool fleet: --metrics: %s\n", m.status().ToString().c_str());
      return false;
    }
    s->metrics = std::move(*m);
    ListenAddress shown = *ParseListenAddress(a.metrics);
    shown.port = s->metrics->port();
    std::printf("metrics: http://%s/metrics\n", shown.ToString().c_str());
  }
  std::fflush(stdout);
  s->sigint = std::make_unique<platform::SignalHandle>(loop);
  s->sigterm = std::make_unique<platform::SignalHandle>(loop);
  (void)s->sigint->Start(SIGINT, [&loop](int) { loop.Stop(); });
  (void)s->sigterm->Start(SIGTERM, [&loop](int) { loop.Stop(); });
  return true;
}

// Runs the loop until the table is printed (once; forever with --watch or
// while serving), a signal stops a service, or the broker stays out of
// reach for 10 s without a service to keep up. Returns the exit code.
int RunFleetLoop(const FleetArgs& a, platform::Loop& loop, const fleet::FleetWatcher& watcher,
                 bool serving) {
  const platform::Clock& clock = platform::SystemClock::Get();
  int exit_code = kExitOk;
  platform::TimerHandle timer(loop);
  int64_t start = clock.MonotonicMs();
  int64_t last_print = 0;
  bool printed = false;
  timer.Start(50, 50, [&] {
    int64_t now = clock.MonotonicMs();
    if (!watcher.subscribed()) {
      if (!serving && now - start > 10000) {
        std::fprintf(stderr, "edgespool fleet: cannot reach %s: %s\n", a.broker.c_str(),
                     watcher.last_error().empty() ? "timed out" : watcher.last_error().c_str());
        exit_code = kExitUnavailable;
        loop.Stop();
      }
      return;
    }
    // Retained documents arrive right after the SUBACK; live ones keep
    // coming (every node republishes), so wait a fixed time, not for quiet.
    if (now - watcher.subscribed_mono_ms() < a.wait_ms && !printed) return;
    if (!a.watch && !serving) {
      exit_code = PrintFleet(a, watcher.model(), clock.WallMs());
      loop.Stop();
    } else if (a.watch && (!printed || now - last_print >= 2000)) {
      exit_code = PrintFleet(a, watcher.model(), clock.WallMs());
      last_print = now;
    }
    printed = true;
  });
  loop.Run();
  timer.Stop();
  return serving ? kExitOk : exit_code;
}

int Fleet(const cli::Args& parsed) {
  FleetArgs args = ToFleetArgs(parsed);
  if (int done = CheckFleetArgs(args); done >= 0) return done;
  bool serving = !args.http.empty() || !args.metrics.empty();
  platform::Logger::SetLevel(serving ? platform::LogLevel::kWarn : platform::LogLevel::kError);
  auto loop_or = platform::Loop::Create();
  if (!loop_or.ok()) return kExitSoftware;
  platform::Loop& loop = **loop_or;
  fleet::FleetOptions model_options;
  model_options.stale_ms = args.stale_ms;
  model_options.max_nodes = static_cast<size_t>(args.max_nodes);
  fleet::FleetModel model(model_options);
  fleet::FleetWatcherOptions o;
  if (!WatcherOptions(args, &o)) return kExitConfig;
  auto watcher =
      fleet::FleetWatcher::Create(loop, std::move(o), &model, platform::SystemClock::Get());
  if (!watcher.ok()) {
    std::fprintf(stderr, "edgespool fleet: %s\n", watcher.status().ToString().c_str());
    return kExitUsage;
  }
  auto services = std::make_unique<Services>();
  if (serving && !StartServices(args, loop, watcher->get(), services.get())) {
    return kExitUnavailable;
  }
  (*watcher)->Start();
  int exit_code = RunFleetLoop(args, loop, **watcher, serving);
  // Servers first (they read the watcher), then the watcher.
  services.reset();
  watcher->reset();
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
    cli::Opt("http", 0, cli::ValueKind::kString, "ADDR",
             "Serve the live dashboard (page, /events, /api/fleet) on ADDR, e.g. "
             "127.0.0.1:8080, until SIGINT or SIGTERM (docs/fleet.md)."),
    cli::Opt("metrics", 0, cli::ValueKind::kString, "ADDR",
             "Serve the fleet's Prometheus gauges on ADDR/metrics, e.g. 127.0.0.1:9101, "
             "until SIGINT or SIGTERM."),
    cli::Opt("max-nodes", 0, cli::ValueKind::kInt, "N",
             "Track at most N nodes; documents of more are counted and ignored (default "
             "10000).")
        .Range(1, 10000000),
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
    {0, "every node is online and fresh; with --http or --metrics: stopped by a signal"},
    {2, "a node is offline or stale"},
    {64, "usage error, a bad --broker URL or listen address"},
    {69, "the broker cannot be reached within 10 s, or --http/--metrics cannot listen"},
    {70, "internal error"},
    {78, "the password file cannot be read"},
};

}  // namespace

const cli::CommandSpec kFleetCommand = cli::Command(
    "fleet", "--broker URL [options]", "every node's status from the broker, worst first",
    "Reads every node's retained status document from the central broker and prints one row "
    "per node, worst first: offline, then silent (no status within --stale), then behind "
    "(pending, no sync within --stale), then the oldest sync. For cron and monitoring checks: "
    "the exit status is 2 when a node is offline or stale.\n\n"
    "With --http it serves a live dashboard (one page, updated over Server-Sent Events) and "
    "with --metrics per-node Prometheus gauges for alerting "
    "(platform/prometheus/edgespool-alerts.yml); it then runs until SIGINT or SIGTERM.",
    kFleetOptions, kFleetExits, Fleet, 0, 0);

int FleetCommand(int argc, char** argv) { return cli::RunCommand(kFleetCommand, argc, argv); }

}  // namespace edgespool::agent
