#include "sync/crypto/sealed.h"

#include <mbedtls/gcm.h>

#include <cassert>
#include <cstdio>
#include <cstring>

namespace edgespool::crypto {

namespace {

constexpr char kHex[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void PutStr16(std::string* out, std::string_view s) {
  // Topics, ids and node ids are bounded well below 64 KiB by their own
  // checks; a longer one is cut to its length's low 16 bits' worth of bytes
  // on both sides alike, so the AAD still matches.
  size_t n = s.size() > 0xffff ? 0xffff : s.size();
  out->push_back(static_cast<char>(n >> 8));
  out->push_back(static_cast<char>(n & 0xff));
  out->append(s.data(), n);
}

std::string MbedError(const char* what, int rc) {
  char buf[32];
  std::snprintf(buf, sizeof buf, " (mbedtls -0x%04x)", static_cast<unsigned>(-rc));
  return std::string(what) + buf;
}

}  // namespace

std::string FormatSealed(const Sealed& s) {
  std::string out = kAlgorithm;
  out += ':';
  out += s.key_id;
  out += ':';
  for (uint8_t b : s.nonce) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

Result<Sealed> ParseSealed(std::string_view text) {
  constexpr std::string_view kPrefix = "aes-256-gcm:";
  if (text.substr(0, kPrefix.size()) != kPrefix) {
    return Status::InvalidArgument("es-enc: unknown algorithm (only aes-256-gcm)");
  }
  text.remove_prefix(kPrefix.size());
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return Status::InvalidArgument("es-enc: no nonce");
  Sealed s;
  s.key_id = std::string(text.substr(0, colon));
  if (!ValidKeyId(s.key_id)) return Status::InvalidArgument("es-enc: bad key id");
  std::string_view hex = text.substr(colon + 1);
  if (hex.size() != 2 * kNonceBytes) {
    return Status::InvalidArgument("es-enc: the nonce is not 24 hex digits");
  }
  for (size_t i = 0; i < kNonceBytes; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("es-enc: the nonce is not hex");
    s.nonce[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return s;
}

std::string AssociatedData(std::string_view node, std::string_view topic, std::string_view id,
                           int64_t ts_ms) {
  std::string out = "ESE1";
  out.reserve(4 + 6 + node.size() + topic.size() + id.size() + 8);
  PutStr16(&out, node);
  PutStr16(&out, topic);
  PutStr16(&out, id);
  uint64_t ts = static_cast<uint64_t>(ts_ms);
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(ts >> shift));
  return out;
}

struct Cipher::Context {
  mbedtls_gcm_context gcm;
  bool ready = false;
  Context() { mbedtls_gcm_init(&gcm); }
  ~Context() { mbedtls_gcm_free(&gcm); }
};

Cipher::Cipher(std::shared_ptr<const KeyRing> keys) { Reset(std::move(keys)); }
Cipher::~Cipher() = default;

void Cipher::Reset(std::shared_ptr<const KeyRing> keys) {
  assert(keys);
  keys_ = std::move(keys);
  contexts_.clear();
  contexts_.resize(keys_->keys().size());
}

Cipher::Context* Cipher::ContextFor(const Key& key) {
  const std::vector<Key>& all = keys_->keys();
  size_t i = static_cast<size_t>(&key - all.data());
  assert(i < all.size() && "the key is not from this ring");
  auto& c = contexts_[i];
  if (!c) c = std::make_unique<Context>();
  if (!c->ready) {
    // Only fails for a bad key length, which the ring rules out.
    int rc = mbedtls_gcm_setkey(&c->gcm, MBEDTLS_CIPHER_ID_AES, key.bytes.data(), 256);
    if (rc != 0) return nullptr;
    c->ready = true;
  }
  return c.get();
}

Status Cipher::Seal(const Key& key, const Nonce& nonce, std::string_view aad,
                    std::string* payload) {
  Context* c = ContextFor(key);
  if (!c) return Status::Internal("aes-256-gcm: cannot set the key");
  size_t n = payload->size();
  payload->resize(n + kTagBytes);
  auto* p = reinterpret_cast<unsigned char*>(payload->data());
  // In place: mbedTLS allows output == input for encryption (gcm.h).
  int rc = mbedtls_gcm_crypt_and_tag(&c->gcm, MBEDTLS_GCM_ENCRYPT, n, nonce.data(), nonce.size(),
                                     reinterpret_cast<const unsigned char*>(aad.data()), aad.size(),
                                     p, p, kTagBytes, p + n);
  if (rc != 0) {
    payload->resize(n);
    return Status::Internal(MbedError("aes-256-gcm: encryption failed", rc));
  }
  return Status::Ok();
}

Status Cipher::Open(const Sealed& sealed, std::string_view aad, std::string* payload) {
  const Key* key = keys_->Find(sealed.key_id);
  if (!key) {
    return Status::NotFound("unknown key id \"" + sealed.key_id + "\" (the key file has " +
                            keys_->Ids() + ")");
  }
  if (payload->size() < kTagBytes) {
    return Status::Corruption("encrypted payload shorter than its 16-byte tag");
  }
  Context* c = ContextFor(*key);
  if (!c) return Status::Internal("aes-256-gcm: cannot set the key");
  size_t n = payload->size() - kTagBytes;
  // Decryption may not run in place (gcm.h): through a scratch buffer.
  scratch_.resize(n);
  const auto* in = reinterpret_cast<const unsigned char*>(payload->data());
  int rc = mbedtls_gcm_auth_decrypt(&c->gcm, n, sealed.nonce.data(), sealed.nonce.size(),
                                    reinterpret_cast<const unsigned char*>(aad.data()), aad.size(),
                                    in + n, kTagBytes, in,
                                    reinterpret_cast<unsigned char*>(scratch_.data()));
  if (rc == MBEDTLS_ERR_GCM_AUTH_FAILED) {
    return Status::Corruption("authentication failed under key id \"" + sealed.key_id +
                              "\": a different key with that id, or the message was altered");
  }
  if (rc != 0) return Status::Internal(MbedError("aes-256-gcm: decryption failed", rc));
  payload->swap(scratch_);
  return Status::Ok();
}

}  // namespace edgespool::crypto
