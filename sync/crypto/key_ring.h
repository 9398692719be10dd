// KeyRing: the keys of message-level encryption (docs/encryption.md), read
// from a key file, by key id.
//
// Key file format (text, UTF-8, one key per line):
//
//   # comment lines and blank lines are ignored
//   KEYID HEX64
//
// KEYID is 1..64 characters of [A-Za-z0-9._-]; HEX64 is the 32-byte
// AES-256 key as 64 hex digits; separated by spaces or tabs; nothing else on
// the line. The FIRST key line is the current key: the agent encrypts with
// it. Every other line is an older (or newer, not yet current) key kept so
// that what was encrypted with it still decrypts: rotating is adding a new
// first line and keeping the old ones. Ids are unique within a file.
//
// The file must not be readable by group or others (mode 0600 or 0400):
// Load() refuses it otherwise, as ssh does with a private key.
//
// Thread-safety: immutable once made; share it as a shared_ptr<const>.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"

namespace edgespool::crypto {

inline constexpr size_t kKeyBytes = 32;
inline constexpr size_t kMaxKeyIdBytes = 64;

struct Key {
  std::string id;
  std::array<uint8_t, kKeyBytes> bytes{};
};

class KeyRing {
 public:
  // Parses the text of a key file; `name` is the file name for messages
  // ("keys:3: bad key: expected 64 hex digits"). At least one key.
  static Result<KeyRing> Parse(std::string_view text, std::string_view name);
  // Reads, checks the mode, parses.
  static Result<KeyRing> Load(const std::string& path);

  const Key& current() const { return keys_.front(); }
  // nullptr when the id is not in the ring.
  const Key* Find(std::string_view id) const;
  const std::vector<Key>& keys() const { return keys_; }
  // "k2, k1": the ids, current first (for messages; never the keys).
  std::string Ids() const;

 private:
  std::vector<Key> keys_;
};

// Whether s is a valid key id (1..64 of [A-Za-z0-9._-]).
bool ValidKeyId(std::string_view s);

}  // namespace edgespool::crypto
