#include "platform/json_escape.h"

namespace edgespool::platform {

namespace {

bool NeedsEscape(unsigned char c) { return c < 0x20 || c == '"' || c == '\\' || c == 0x7f; }

void AppendEscape(std::string* out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"':
      *out += "\\\"";
      break;
    case '\\':
      *out += "\\\\";
      break;
    case '\n':
      *out += "\\n";
      break;
    case '\r':
      *out += "\\r";
      break;
    case '\t':
      *out += "\\t";
      break;
    default: {
      char buf[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xf]};
      out->append(buf, sizeof buf);
    }
  }
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  // Runs of bytes that need no escape (topics, ids, most messages) are
  // copied at once: replies are built on the hot path, one per publish.
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (!NeedsEscape(c)) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    AppendEscape(out, c);
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

}  // namespace edgespool::platform
