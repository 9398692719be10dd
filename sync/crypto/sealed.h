// Message-level encryption (docs/encryption.md): AES-256-GCM over a
// message's payload with mbedTLS, and the descriptor that travels with it.
//
// A sealed payload is ciphertext || 16-byte GCM tag (the plaintext's length
// plus 16). The descriptor says how to open it:
//
//   es-enc := "aes-256-gcm:" KEYID ":" NONCE   (NONCE: 24 lowercase hex digits)
//
// It is the journal row's header `es-enc`, the MQTT 5 user property `es-enc`
// in message mode, and the record's encryption field in a batch frame
// (sync/batch/batch_frame.h). The associated data (authenticated, not
// encrypted) binds the ciphertext to where it belongs, so that a broker
// cannot move a payload to another node, topic, id or time undetected:
//
//   aad := "ESE1" | node str16 | local topic str16 | id str16 | ts_ms i64
//
// (big-endian; str16 a u16 length then the bytes). The seq is not in it: it
// is assigned by the journal after the payload was sealed.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "platform/status.h"
#include "sync/crypto/key_ring.h"

namespace edgespool::crypto {

inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr char kEncHeader[] = "es-enc";
inline constexpr char kAlgorithm[] = "aes-256-gcm";

using Nonce = std::array<uint8_t, kNonceBytes>;

struct Sealed {
  std::string key_id;
  Nonce nonce{};
};

// "aes-256-gcm:k1:00000001a3b2c1d000000000"
std::string FormatSealed(const Sealed& s);
// The inverse; InvalidArgument naming what is wrong (another algorithm, a
// bad key id, a nonce that is not 24 hex digits).
Result<Sealed> ParseSealed(std::string_view text);

std::string AssociatedData(std::string_view node, std::string_view topic, std::string_view id,
                           int64_t ts_ms);

// AES-256-GCM with the keys of a ring. Keeps one mbedTLS context per key it
// used (the key schedule and GHASH table cost more than a short message).
// Not thread-safe: one per thread (the agent's loop, a consumer's loop).
class Cipher {
 public:
  explicit Cipher(std::shared_ptr<const KeyRing> keys);
  ~Cipher();
  Cipher(const Cipher&) = delete;
  Cipher& operator=(const Cipher&) = delete;

  // Seals *payload in place with `key` (which must be in the ring) and
  // nonce. The caller guarantees the nonce was never used with this key
  // (NonceSource).
  Status Seal(const Key& key, const Nonce& nonce, std::string_view aad, std::string* payload);
  // Opens *payload in place. NotFound when the ring has no such key id;
  // Corruption when the tag does not verify (a wrong key under that id, or
  // the ciphertext, descriptor or associated data were altered).
  Status Open(const Sealed& sealed, std::string_view aad, std::string* payload);

  const KeyRing& keys() const { return *keys_; }
  // Replaces the ring (a reload rotated the key file): contexts are redone.
  void Reset(std::shared_ptr<const KeyRing> keys);

 private:
  struct Context;
  Context* ContextFor(const Key& key);

  std::shared_ptr<const KeyRing> keys_;
  std::vector<std::unique_ptr<Context>> contexts_;  // parallel to keys_->keys()
  std::string scratch_;
};

}  // namespace edgespool::crypto
