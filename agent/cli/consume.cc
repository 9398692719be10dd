#include "agent/cli/consume.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "agent/cli/exit_codes.h"
#include "agent/config/units.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/message.h"
#include "agent/protocol/request.h"
#include "central/consumer.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/loop.h"

namespace edgespool::agent {

namespace {

const char* kConsumeUsage =
    "usage: edgespool consume --broker URL [--topic FILTER]... [--max-wait 30s]\n"
    "                         [--group NAME [--instance NAME]] [--partitions N]\n"
    "                         [--status-topic 'edgespool/+/status'] [--count N] [--stats]\n"
    "                         [--cafile F] [--cert F --key F] [--username U --password-file F]\n"
    "Prints the fleet's uplink messages as JSON lines, deduplicated by (node, seq), in\n"
    "original-timestamp order per topic across nodes (a node offline or behind by more\n"
    "than --max-wait stops holding the others back; what it sends later is marked\n"
    "\"late\":true). --topic defaults to edgespool/+/batch; message-mode topics need\n"
    "MQTT 5. --partitions N: topics carry {part} ({part:N} in the agents' upstream_topic);\n"
    "--group: instances with the same group share the partitions (docs/central.md).\n"
    "Ends on SIGINT/SIGTERM or after --count messages (at least: the rest of the last\n"
    "batch too); --stats prints counts to stderr.\n";

struct ConsumeArgs {
  central::ConsumerOptions options;
  std::string cafile, cert, key, username, password_file;
  uint64_t count = 0;
  bool stats = false;
  bool topics_given = false;
};

int ParseConsumeArgs(int argc, char** argv, ConsumeArgs* a) {
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v, why;
    central::ConsumerOptions& o = a->options;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kConsumeUsage, stdout);
      return kExitOk;
    } else if (arg == "--broker" && value(&o.url)) {
    } else if (arg == "--topic" && value(&v)) {
      if (!a->topics_given) o.topics.clear();
      a->topics_given = true;
      o.topics.push_back(v);
    } else if (arg == "--status-topic" && value(&o.status_topic)) {
    } else if (arg == "--max-wait" && value(&v) &&
               ParseDurationMs(v, &o.ordering.max_wait_ms, &why)) {
    } else if (arg == "--group" && value(&o.group)) {
    } else if (arg == "--instance" && value(&o.instance)) {
    } else if (arg == "--partitions" && value(&v)) {
      o.partitions = static_cast<uint32_t>(std::strtoul(v.c_str(), nullptr, 10));
    } else if (arg == "--count" && value(&v)) {
      a->count = std::strtoull(v.c_str(), nullptr, 10);
    } else if (arg == "--stats") {
      a->stats = true;
    } else if (arg == "--cafile" && value(&a->cafile)) {
    } else if (arg == "--cert" && value(&a->cert)) {
    } else if (arg == "--key" && value(&a->key)) {
    } else if (arg == "--username" && value(&a->username)) {
    } else if (arg == "--password-file" && value(&a->password_file)) {
    } else {
      std::fprintf(stderr, "edgespool consume: bad argument '%s'%s\n%s", arg.c_str(),
                   why.empty() ? "" : (": " + why).c_str(), kConsumeUsage);
      return kExitUsage;
    }
  }
  if (a->options.url.empty()) {
    std::fprintf(stderr, "edgespool consume: --broker is required\n%s", kConsumeUsage);
    return kExitUsage;
  }
  central::ConsumerOptions& o = a->options;
  o.tls.ca_file = a->cafile;
  o.tls.cert_file = a->cert;
  o.tls.key_file = a->key;
  if (!a->username.empty()) o.username = a->username;
  if (!a->password_file.empty()) {
    auto pw = platform::ReadWholeFile(a->password_file);
    if (!pw.ok()) {
      std::fprintf(stderr, "edgespool consume: %s\n", pw.status().message().c_str());
      return kExitUsage;
    }
    std::string p = *pw;
    p.resize(std::min(p.size(), p.find_first_of("\r\n")));
    o.password = p;
  }
  return -1;
}

void PrintStats(const central::ConsumerStats& s) {
  std::fprintf(
      stderr,
      "edgespool consume: delivered %llu, late %llu, duplicates %llu, unordered %llu, "
      "forced %llu, bad %llu\n",
      static_cast<unsigned long long>(s.delivered), static_cast<unsigned long long>(s.late),
      static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.unordered),
      static_cast<unsigned long long>(s.forced), static_cast<unsigned long long>(s.bad));
}

}  // namespace

std::string ConsumedJson(const central::Message& m) {
  // Header values are bytes (batch frames): those that are not UTF-8 go
  // hex-encoded under headers_hex.
  protocol::JsonObjectWriter headers, headers_hex;
  bool any_hex = false;
  for (const auto& [k, v] : m.headers) {
    if (protocol::IsValidUtf8(v)) {
      headers.Str(k, v);
    } else {
      headers_hex.Str(k, protocol::HexEncode(v));
      any_hex = true;
    }
  }
  protocol::JsonObjectWriter w;
  w.Str("node", m.node).Uint("seq", m.seq).Str("id", m.id).Str("topic", m.topic).Int("ts", m.ts_ms);
  w.Raw("headers", std::move(headers).Finish());
  if (any_hex) w.Raw("headers_hex", std::move(headers_hex).Finish());
  if (protocol::IsValidUtf8(m.payload)) {
    w.Str("payload", m.payload);
  } else {
    w.Str("payload_hex", protocol::HexEncode(m.payload));
  }
  w.Bool("late", m.late);
  return std::move(w).Finish();
}

int ConsumeCommand(int argc, char** argv) {
  ConsumeArgs a;
  int rc = ParseConsumeArgs(argc, argv, &a);
  if (rc >= 0) return rc;
  platform::Logger::SetLevel(platform::LogLevel::kWarn);
  auto loop = platform::Loop::Create();
  if (!loop.ok()) return kExitSoftware;
  uint64_t printed = 0;
  bool stopping = false;
  std::unique_ptr<central::Consumer> consumer;
  // Posted: the callback that reaches --count runs inside the consumer.
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    (*loop)->Post([&] { consumer->Stop([&] { (*loop)->Stop(); }); });
  };
  std::string line;
  auto created = central::Consumer::Create(**loop, a.options, [&](const central::Message& m) {
    // Past --count the rest of the batch is printed too: it is acked with
    // it, and a group's session would not send it again.
    line = ConsumedJson(m);
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
    if (++printed >= a.count && a.count) stop();
  });
  if (!created.ok()) {
    std::fprintf(stderr, "edgespool consume: %s\n", created.status().ToString().c_str());
    return kExitUsage;
  }
  consumer = std::move(*created);
  // Flushed per batch, not per line, and before the batch is acked.
  consumer->SetFlush([] { std::fflush(stdout); });
  platform::SignalHandle sigint(**loop), sigterm(**loop);
  (void)sigint.Start(SIGINT, [&](int) { stop(); });
  (void)sigterm.Start(SIGTERM, [&](int) { stop(); });
  consumer->Start();
  (*loop)->Run();
  std::fflush(stdout);
  if (a.stats) PrintStats(consumer->stats());
  consumer.reset();
  sigint.Stop();
  sigterm.Stop();
  (*loop)->RunNoWait();
  return kExitOk;
}

}  // namespace edgespool::agent
