#include "sync/crypto/key_ring.h"

#include <cstdio>

#include "platform/files.h"

namespace edgespool::crypto {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// The next field of line (runs of spaces/tabs separate them).
std::string_view NextField(std::string_view* line) {
  size_t i = 0;
  while (i < line->size() && IsSpace((*line)[i])) ++i;
  size_t j = i;
  while (j < line->size() && !IsSpace((*line)[j])) ++j;
  std::string_view field = line->substr(i, j - i);
  line->remove_prefix(j);
  return field;
}

}  // namespace

bool ValidKeyId(std::string_view s) {
  if (s.empty() || s.size() > kMaxKeyIdBytes) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<KeyRing> KeyRing::Parse(std::string_view text, std::string_view name) {
  KeyRing ring;
  int line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    auto fail = [&](const std::string& why) {
      return Status::InvalidArgument(std::string(name) + ":" + std::to_string(line_no) + ": " +
                                     why);
    };
    std::string_view rest = line;
    std::string_view id = NextField(&rest);
    if (id.empty() || id[0] == '#') continue;
    std::string_view hex = NextField(&rest);
    if (!NextField(&rest).empty()) return fail("expected KEYID HEX64 and nothing after it");
    if (!ValidKeyId(id)) return fail("bad key id: 1..64 of A-Z a-z 0-9 . _ -");
    if (hex.size() != 2 * kKeyBytes) {
      return fail("bad key " + std::string(id) + ": expected 64 hex digits (32 bytes)");
    }
    Key k;
    k.id = std::string(id);
    for (size_t i = 0; i < kKeyBytes; ++i) {
      int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) return fail("bad key " + k.id + ": not hex");
      k.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (ring.Find(k.id)) return fail("key id " + k.id + " appears twice");
    ring.keys_.push_back(std::move(k));
  }
  if (ring.keys_.empty()) return Status::InvalidArgument(std::string(name) + ": no key in it");
  return ring;
}

Result<KeyRing> KeyRing::Load(const std::string& path) {
  auto mode = platform::FileMode(path);
  if (!mode.ok()) return mode.status();
  if ((*mode & 077) != 0) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04o", *mode & 07777u);
    return Status::PermissionDenied(path + ": mode " + buf +
                                    " lets group or others read the keys; chmod 600 it");
  }
  auto text = platform::ReadWholeFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

const Key* KeyRing::Find(std::string_view id) const {
  for (const Key& k : keys_) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

std::string KeyRing::Ids() const {
  std::string out;
  for (const Key& k : keys_) {
    if (!out.empty()) out += ", ";
    out += k.id;
  }
  return out;
}

}  // namespace edgespool::crypto
