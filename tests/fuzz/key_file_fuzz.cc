// libFuzzer: message-level encryption's parsers of outside bytes (sync/crypto/):
// the key file, the es-enc descriptor (a user property or journal header
// from anywhere), and opening a sealed payload under a fixed key. None may
// crash; a parsed key file or descriptor formats back to what parses the
// same; a forged payload never opens.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "sync/crypto/key_ring.h"
#include "sync/crypto/sealed.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgespool::crypto;
  std::string_view in(reinterpret_cast<const char*>(data), size);

  auto ring = KeyRing::Parse(in, "fuzz");
  if (ring.ok()) {
    if (ring->keys().empty()) abort();
    for (const Key& k : ring->keys()) {
      if (!ValidKeyId(k.id) || ring->Find(k.id) != &k) abort();
    }
  }

  auto sealed = ParseSealed(in);
  if (sealed.ok()) {
    auto again = ParseSealed(FormatSealed(*sealed));
    if (!again.ok() || again->key_id != sealed->key_id || again->nonce != sealed->nonce) abort();
  }

  // The input as a sealed payload (first 12 bytes the nonce) under key "k":
  // a tag that verifies by chance would be a 2^-128 event.
  static Cipher* cipher = [] {
    auto r = KeyRing::Parse("k 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
                            "fuzz");
    return new Cipher(std::make_shared<const KeyRing>(std::move(*r)));
  }();
  if (size >= kNonceBytes) {
    Sealed s;
    s.key_id = "k";
    std::copy(data, data + kNonceBytes, s.nonce.begin());
    std::string payload(in.substr(kNonceBytes));
    if (cipher->Open(s, AssociatedData("n", "t", "", 0), &payload).ok()) abort();
  }
  return 0;
}
