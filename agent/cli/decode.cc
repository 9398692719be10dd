#include "agent/cli/decode.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "agent/cli/exit_codes.h"
#include "agent/cli/options.h"
#include "agent/protocol/json_writer.h"
#include "agent/protocol/request.h"
#include "platform/files.h"
#include "platform/log.h"
#include "platform/loop.h"
#include "platform/process_info.h"
#include "sync/crypto/sealed.h"
#include "sync/mqtt/client.h"

namespace edgespool::agent {

namespace {

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

std::string Base64(std::string_view in) {
  static const char* kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                 static_cast<uint8_t>(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<uint8_t>(in[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string ReadAllStdin() {
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(0, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// --keys FILE: the key ring, or null without the option; *exit_code set
// (78) when the file is given and unusable.
std::unique_ptr<crypto::Cipher> LoadCipher(const cli::Args& args, int* exit_code) {
  if (!args.Has("keys")) return nullptr;
  auto ring = crypto::KeyRing::Load(args.Str("keys"));
  if (!ring.ok()) {
    std::fprintf(stderr, "edgespool decode: --keys: %s\n", ring.status().message().c_str());
    *exit_code = kExitConfig;
    return nullptr;
  }
  return std::make_unique<crypto::Cipher>(
      std::make_shared<const crypto::KeyRing>(std::move(*ring)));
}

// Prints a frame's records, opening sealed payloads when cipher is set.
// Returns how many sealed records could not be opened with the keys given.
size_t PrintFrame(batch::Frame& frame, crypto::Cipher* cipher) {
  size_t failed = 0;
  for (batch::Record& r : frame.records) {
    std::string error;
    if (r.seal && cipher) {
      crypto::Sealed sealed{r.seal->key_id, r.seal->nonce};
      Status st = cipher->Open(sealed, crypto::AssociatedData(frame.node, r.topic, r.id, r.ts_ms),
                               &r.payload);
      if (st.ok()) {
        r.seal.reset();
      } else {
        error = st.message();
        ++failed;
        std::fprintf(stderr, "edgespool decode: node %s seq %llu: %s\n", frame.node.c_str(),
                     static_cast<unsigned long long>(r.seq), error.c_str());
      }
    }
    std::puts(RecordJson(frame.node, r, error).c_str());
  }
  return failed;
}

// Prints every frame arriving on topic until interrupted (or --count frames).
class FramePrinter : public sync::mqtt::ClientListener {
 public:
  size_t frames = 0, limit = 0, bad = 0;
  platform::Loop* loop = nullptr;
  crypto::Cipher* cipher = nullptr;
  void OnPublishAcked(uint64_t, const Status&, uint8_t) override {}
  void OnDisconnected(const Status& why) override {
    std::fprintf(stderr, "edgespool decode: %s\n", why.ToString().c_str());
  }
  void OnMessage(const sync::mqtt::IncomingMessage& m) override {
    auto frame = batch::DecodeFrame(m.payload);
    if (!frame.ok()) {
      ++bad;
      std::fprintf(stderr, "edgespool decode: %.*s: %s\n", static_cast<int>(m.topic.size()),
                   m.topic.data(), frame.status().message().c_str());
      return;
    }
    if (PrintFrame(*frame, cipher) > 0) ++bad;
    std::fflush(stdout);
    if (++frames == limit) loop->Stop();
  }
};

int DecodeSubscribe(const std::string& url, const std::string& topic, size_t limit,
                    crypto::Cipher* cipher) {
  platform::Logger::SetLevel(platform::LogLevel::kError);
  auto loop = platform::Loop::Create();
  if (!loop.ok()) return kExitSoftware;
  FramePrinter printer;
  printer.limit = limit;
  printer.loop = loop->get();
  printer.cipher = cipher;
  sync::mqtt::ClientOptions o;
  o.url = url;
  o.session.client_id = "edgespool-decode-" + std::to_string(::getpid());
  o.subscriptions.emplace_back(topic, 1);
  auto client = sync::mqtt::Client::Create(**loop, std::move(o), &printer);
  if (!client.ok()) {
    std::fprintf(stderr, "edgespool decode: %s\n", client.status().ToString().c_str());
    return kExitUsage;
  }
  platform::SignalHandle sigint(**loop), sigterm(**loop);
  auto stop = [&](int) { (*loop)->Stop(); };
  (void)sigint.Start(SIGINT, stop);
  (void)sigterm.Start(SIGTERM, stop);
  (*client)->Start();
  (*loop)->Run();
  client->reset();
  return printer.bad ? kExitDataErr : kExitOk;
}

}  // namespace

std::string RecordJson(const std::string& node, const batch::Record& r,
                       const std::string& decrypt_error) {
  protocol::JsonObjectWriter headers;
  for (const auto& [k, v] : r.headers) headers.Str(k, v);
  protocol::JsonObjectWriter w;
  w.Str("node", node).Uint("seq", r.seq).Int("ts", r.ts_ms).Str("topic", r.topic);
  if (!r.id.empty()) w.Str("id", r.id);
  // The producer's W3C trace context, first-class for the central side's
  // tracing (it is also in headers, where the producer put it).
  for (const auto& [k, v] : r.headers) {
    if (protocol::IsTraceparentKey(k)) {
      w.Str("traceparent", v);
      break;
    }
  }
  w.Raw("headers", std::move(headers).Finish());
  if (r.seal) {
    static const char* kHex = "0123456789abcdef";
    std::string nonce;
    for (uint8_t b : r.seal->nonce) {
      nonce += kHex[b >> 4];
      nonce += kHex[b & 15];
    }
    protocol::JsonObjectWriter e;
    e.Str("alg", crypto::kAlgorithm).Str("key_id", r.seal->key_id).Str("nonce", nonce);
    w.Raw("encrypted", std::move(e).Finish());
    if (!decrypt_error.empty()) w.Str("error", decrypt_error);
  }
  if (!r.seal && ValidUtf8(r.payload)) {  // ciphertext never passes for text
    w.Str("payload", r.payload);
  } else {
    w.Str("payload_b64", Base64(r.payload));
  }
  return std::move(w).Finish();
}

namespace {

// Prints every record of the concatenated frames in bytes; stops at the
// first frame that does not decode.
int DecodeFrames(std::string_view rest, crypto::Cipher* cipher) {
  size_t frames = 0, failed = 0;
  while (!rest.empty()) {
    auto len = batch::FrameLength(rest);
    if (!len.ok()) {
      std::fprintf(stderr, "edgespool decode: frame %zu: %s\n", frames + 1,
                   len.status().message().c_str());
      return kExitDataErr;
    }
    auto frame = batch::DecodeFrame(rest.substr(0, *len));
    if (!frame.ok()) {
      std::fprintf(stderr, "edgespool decode: frame %zu: %s\n", frames + 1,
                   frame.status().message().c_str());
      return kExitDataErr;
    }
    failed += PrintFrame(*frame, cipher);
    rest.remove_prefix(*len);
    ++frames;
  }
  if (frames == 0) {
    std::fputs("edgespool decode: no frame in input\n", stderr);
    return kExitDataErr;
  }
  return failed ? kExitDataErr : kExitOk;
}

int DecodeFile(const std::string& path, crypto::Cipher* cipher) {
  if (path == "-") return DecodeFrames(ReadAllStdin(), cipher);
  auto r = platform::ReadWholeFile(path);
  if (!r.ok()) {
    std::fprintf(stderr, "edgespool decode: %s\n", r.status().message().c_str());
    return kExitDataErr;
  }
  return DecodeFrames(*r, cipher);
}

int Decode(const cli::Args& args) {
  const auto& pos = args.positionals();
  int key_error = -1;
  std::unique_ptr<crypto::Cipher> cipher = LoadCipher(args, &key_error);
  if (key_error >= 0) return key_error;
  if (args.Has("subscribe")) {
    std::string topic = pos.empty() ? "edgespool/+/batch" : pos[0];
    return DecodeSubscribe(args.Str("subscribe"), topic, static_cast<size_t>(args.Int("count")),
                           cipher.get());
  }
  if (args.Has("count")) {
    std::fputs("edgespool decode: --count goes with --subscribe\n", stderr);
    return kExitUsage;
  }
  std::string path = pos.empty() ? "-" : pos[0];
  if (path == "-" && platform::IsTerminal(0)) {
    // Never a silent wait on a terminal (frames are binary anyway).
    if (pos.empty()) {
      std::fputs("edgespool decode: no input: give FILE, or pipe frames in ('-' reads a "
                 "terminal)\n(run 'edgespool decode --help' for usage)\n",
                 stderr);
      return kExitUsage;
    }
    std::fputs("edgespool decode: reading frames from the terminal; end with Ctrl-D\n", stderr);
  }
  return DecodeFile(path, cipher.get());
}

constexpr cli::OptionSpec kDecodeOptions[] = {
    cli::Opt("subscribe", 0, cli::ValueKind::kString, "URL",
             "Read frames from a broker (mqtt://host:1883) instead: the argument is then the "
             "TOPIC (default edgespool/+/batch). Runs until SIGINT."),
    cli::Opt("count", 'C', cli::ValueKind::kInt, "N", "With --subscribe: exit after N frames.")
        .Range(1, INT64_MAX),
    cli::Opt("keys", 0, cli::ValueKind::kFile, "FILE",
             "Decrypt sealed payloads with the keys in FILE (the agent's [encryption] key "
             "file format, mode 0600; docs/encryption.md). Without it sealed records are "
             "printed with \"encrypted\" and their ciphertext."),
};

constexpr cli::ExitCodeDoc kDecodeExits[] = {
    {0, "every frame decoded"},
    {64, "usage error, or a bad --subscribe URL"},
    {65,
     "a frame did not decode, or the input holds none; or FILE cannot be read; or, with "
     "--keys, a sealed record did not decrypt (unknown key id, or altered)"},
    {70, "internal error"},
    {78, "the --keys file cannot be read, is readable by others, or is not a key file"},
};

}  // namespace

const cli::CommandSpec kDecodeCommand =
    cli::Command("decode", "[FILE|-] | --subscribe URL [TOPIC]",
                 "print batch frames as JSON lines",
                 "Prints each message of the batch frames in FILE (or stdin, -) as one JSON "
                 "line: node, seq, ts, topic, id, headers, and payload (payload_b64 when not "
                 "UTF-8). Frames in a file may be concatenated (mosquitto_sub -N -t "
                 "'edgespool/+/batch' > file).",
                 kDecodeOptions, kDecodeExits, Decode, 0, 1)
        .FilePositionals();

int DecodeCommand(int argc, char** argv) { return cli::RunCommand(kDecodeCommand, argc, argv); }

}  // namespace edgespool::agent
