#include "agent/cli_decode.h"

#include <unistd.h>

#include <cstdio>
#include <string_view>

#include "agent/cli.h"
#include "agent/protocol/json_writer.h"
#include "platform/files.h"

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

}  // namespace

std::string RecordJson(const std::string& node, const batch::Record& r) {
  protocol::JsonObjectWriter headers;
  for (const auto& [k, v] : r.headers) headers.Str(k, v);
  protocol::JsonObjectWriter w;
  w.Str("node", node).Uint("seq", r.seq).Int("ts", r.ts_ms).Str("topic", r.topic);
  if (!r.id.empty()) w.Str("id", r.id);
  w.Raw("headers", std::move(headers).Finish());
  if (ValidUtf8(r.payload)) {
    w.Str("payload", r.payload);
  } else {
    w.Str("payload_b64", Base64(r.payload));
  }
  return std::move(w).Finish();
}

int DecodeCommand(int argc, char** argv) {
  std::string path = "-";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::puts(
          "usage: edgespool decode [FILE|-]\n"
          "Prints each message of the batch frames in FILE (or stdin) as one JSON line.\n"
          "Frames may be concatenated (mosquitto_sub -N -t 'edgespool/+/batch' > file).");
      return kExitOk;
    }
    if (!a.empty() && a[0] == '-' && a != "-") {
      std::fprintf(stderr, "edgespool decode: unknown option %s\n", a.c_str());
      return kExitUsage;
    }
    path = a;
  }
  std::string bytes;
  if (path == "-") {
    bytes = ReadAllStdin();
  } else {
    auto r = platform::ReadWholeFile(path);
    if (!r.ok()) {
      std::fprintf(stderr, "edgespool decode: %s\n", r.status().message().c_str());
      return kExitDataErr;
    }
    bytes = std::move(*r);
  }
  std::string_view rest = bytes;
  size_t frames = 0;
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
    for (const auto& r : frame->records) std::puts(RecordJson(frame->node, r).c_str());
    rest.remove_prefix(*len);
    ++frames;
  }
  if (frames == 0) {
    std::fputs("edgespool decode: no frame in input\n", stderr);
    return kExitDataErr;
  }
  return kExitOk;
}

}  // namespace edgespool::agent
