#include "agent/cli/consume.h"

#include <signal.h>

#include <cstdio>
#include <cstdlib>

#include "agent/cli/exit_codes.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/message.h"
#include "agent/protocol/request.h"
#include "central/consumer.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/loop.h"

namespace edgespool::agent {

namespace {

struct ConsumeArgs {
  central::ConsumerOptions options;
  uint64_t count = 0;
  bool stats = false;
};

// Fills *a from the parsed options. Returns -1 to go on, else the exit code.
int ToConsumeArgs(const cli::Args& args, ConsumeArgs* a) {
  central::ConsumerOptions& o = a->options;
  o.url = args.Str("broker");
  if (o.url.empty()) {
    std::fputs(
        "edgespool consume: --broker is required\n"
        "(run 'edgespool consume --help' for usage)\n",
        stderr);
    return kExitUsage;
  }
  if (args.Has("topic")) o.topics = args.All("topic");
  o.status_topic = args.Str("status-topic", o.status_topic);
  o.ordering.max_wait_ms = args.DurationMs("max-wait", o.ordering.max_wait_ms);
  o.group = args.Str("group");
  o.instance = args.Str("instance");
  o.partitions = static_cast<uint32_t>(args.Int("partitions", 1));
  a->count = static_cast<uint64_t>(args.Int("count", 0));
  a->stats = args.Has("stats");
  o.tls.ca_file = args.Str("cafile");
  o.tls.cert_file = args.Str("cert");
  o.tls.key_file = args.Str("key");
  if (args.Has("keys")) {
    auto ring = crypto::KeyRing::Load(args.Str("keys"));
    if (!ring.ok()) {
      std::fprintf(stderr, "edgespool consume: --keys: %s\n", ring.status().message().c_str());
      return kExitConfig;
    }
    o.keys = std::make_shared<const crypto::KeyRing>(std::move(*ring));
  }
  if (args.Has("username")) o.username = args.Str("username");
  if (args.Has("password-file")) {
    auto pw = platform::ReadWholeFile(args.Str("password-file"));
    if (!pw.ok()) {
      std::fprintf(stderr, "edgespool consume: %s\n", pw.status().message().c_str());
      return kExitConfig;
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
      "forced %llu, bad %llu, undecrypted %llu\n",
      static_cast<unsigned long long>(s.delivered), static_cast<unsigned long long>(s.late),
      static_cast<unsigned long long>(s.duplicates), static_cast<unsigned long long>(s.unordered),
      static_cast<unsigned long long>(s.forced), static_cast<unsigned long long>(s.bad),
      static_cast<unsigned long long>(s.undecrypted));
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
  // Still sealed (docs/encryption.md): which key, and why it stayed shut.
  if (m.sealed) {
    w.Str("encrypted", crypto::FormatSealed(*m.sealed));
    w.Str("error", m.decrypt_error);
  }
  if (!m.sealed && protocol::IsValidUtf8(m.payload)) {  // ciphertext never passes for text
    w.Str("payload", m.payload);
  } else {
    w.Str("payload_hex", protocol::HexEncode(m.payload));
  }
  w.Bool("late", m.late);
  return std::move(w).Finish();
}

namespace {

int Consume(const cli::Args& args) {
  ConsumeArgs a;
  int rc = ToConsumeArgs(args, &a);
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

constexpr cli::OptionSpec kConsumeOptions[] = {
    cli::Opt("broker", 'b', cli::ValueKind::kString, "URL",
             "The central broker: mqtt://host[:1883] or mqtts://host[:8883]. Required."),
    cli::Opt("topic", 't', cli::ValueKind::kString, "FILTER",
             "An uplink topic filter (default edgespool/+/batch). Message-mode "
             "topics need MQTT 5 (the es-* user properties). With --partitions N each filter "
             "names the partition as {part}, e.g. fleet/{part}/#.")
        .Repeatable(),
    cli::Opt("status-topic", 0, cli::ValueKind::kString, "FILTER",
             "Where the nodes' statuses are (default edgespool/+/status)."),
    cli::Opt("max-wait", 0, cli::ValueKind::kDuration, "DURATION",
             "The longest a message waits for the other nodes' watermarks; a node offline, "
             "silent or behind for longer stops holding the others back, and what it sends "
             "later is marked late (default 30s).")
        .Range(1, 86400000),
    cli::Opt("group", 'g', cli::ValueKind::kString, "NAME",
             "Share the partitions with the other instances of this group (persistent broker "
             "sessions GROUP-pK; a dead instance's partitions move to the others)."),
    cli::Opt("instance", 0, cli::ValueKind::kString, "NAME",
             "This instance's name in the group (default host-pid)."),
    cli::Opt("partitions", 'p', cli::ValueKind::kInt, "N",
             "Partitions of the topics, as the agents' upstream_topic {part:N} (default 1).")
        .Range(1, 100000),
    cli::Opt("count", 'C', cli::ValueKind::kInt, "N",
             "End after N messages (at least: the rest of the last batch is printed too).")
        .Range(1, INT64_MAX),
    cli::Flag("stats", 0, "At the end, print counts (delivered, late, duplicates...) to stderr."),
    cli::Opt("cafile", 0, cli::ValueKind::kFile, "FILE",
             "CA certificates to verify the broker (default: the system's)."),
    cli::Opt("cert", 0, cli::ValueKind::kFile, "FILE", "Client certificate for mutual TLS."),
    cli::Opt("key", 0, cli::ValueKind::kFile, "FILE", "Its private key."),
    cli::Opt("keys", 0, cli::ValueKind::kFile, "FILE",
             "Decrypt sealed payloads (message-level encryption) with the keys in FILE, the "
             "agent's key file format, mode 0600 (docs/encryption.md). A message it cannot "
             "open is printed all the same, with \"encrypted\" and \"error\", and warned "
             "about on stderr."),
    cli::Opt("username", 'u', cli::ValueKind::kString, "USER", "MQTT user name."),
    cli::Opt("password-file", 0, cli::ValueKind::kFile, "FILE",
             "A file whose first line is the MQTT password."),
};

constexpr cli::ExitCodeDoc kConsumeExits[] = {
    {0, "stopped by SIGINT/SIGTERM, or --count reached"},
    {64, "usage error: a bad option, URL, topic filter, group or partition count"},
    {70, "internal error"},
    {78,
     "the password file cannot be read; or the --keys file cannot be read, is readable "
     "by others, or is not a key file"},
};

}  // namespace

const cli::CommandSpec kConsumeCommand = cli::Command(
    "consume", "--broker URL [options]",
    "the fleet's messages once, in timestamp order per topic, as JSON lines",
    "Subscribes to the fleet's uplink topics (batch frames, and message mode with MQTT 5 user "
    "properties), drops duplicates by (node, seq) and prints each message as one JSON line "
    "(node, seq, id, topic, ts, headers, payload or payload_hex, late; encrypted and error "
    "for a sealed payload it could not open) in original-timestamp "
    "order per topic across all nodes: a message goes out once every live node has reported, "
    "in its status document's watermark_ms, that it holds nothing older.\n\n"
    "A node offline, silent or behind by more than --max-wait stops holding the others back; "
    "what it sends later is printed with \"late\":true, never dropped. Several instances with "
    "the same --group share the topic partitions (docs/central.md).",
    kConsumeOptions, kConsumeExits, Consume, 0, 0);

int ConsumeCommand(int argc, char** argv) { return cli::RunCommand(kConsumeCommand, argc, argv); }

}  // namespace edgespool::agent
