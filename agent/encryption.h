// MessageSealer: message-level encryption on the agent's side
// (docs/encryption.md). A message on a route with encrypt = "aes-256-gcm"
// has its payload sealed here, in the producer server's route step, before
// it is appended: the journal, the uplink and the broker only ever hold the
// ciphertext. The descriptor (key id and nonce) goes into the row's header
// es-enc, which the sync worker sends as an MQTT 5 user property (message
// mode) or as the batch record's seal field.
//
// Keys come from encryption.key_file (sync/crypto/key_ring.h); the current
// (first) key seals. A reload reads the file again: rotation is adding a new
// first line. Rows already stored stay sealed under the key they were
// sealed with and are uploaded as they are; consumers keep the old ids.
//
// Nonces: sync/crypto/nonce_source.h, with its state in store.path +
// ".nonce" (an epoch taken durably at every start).
//
// Loop-thread-only.
#pragma once

#include <memory>
#include <string>

#include "platform/status.h"
#include "store/journal.h"
#include "sync/crypto/key_ring.h"
#include "sync/crypto/nonce_source.h"
#include "sync/crypto/sealed.h"

namespace edgespool::agent {

class MessageSealer {
 public:
  // Reads and checks the key file, takes a nonce epoch in state_path.
  // InvalidArgument (a configuration error) for a bad key file; the nonce
  // state's own errors as they are.
  static Result<std::unique_ptr<MessageSealer>> Open(const std::string& key_file,
                                                     const std::string& state_path,
                                                     std::string node);
  // The key file, read and checked: what a reload hands to SetKeys.
  static Result<std::shared_ptr<const crypto::KeyRing>> LoadKeys(const std::string& key_file);

  void SetKeys(std::shared_ptr<const crypto::KeyRing> keys) { cipher_.Reset(std::move(keys)); }
  const crypto::KeyRing& keys() const { return cipher_.keys(); }

  // Seals m.payload with the current key; the es-enc header says how.
  // Fails only when a new nonce epoch cannot be made durable.
  Status Seal(store::Message& m);

 private:
  MessageSealer(std::shared_ptr<const crypto::KeyRing> keys,
                std::unique_ptr<crypto::NonceSource> nonces, std::string node)
      : cipher_(std::move(keys)), nonces_(std::move(nonces)), node_(std::move(node)) {}

  crypto::Cipher cipher_;
  std::unique_ptr<crypto::NonceSource> nonces_;
  std::string node_;
};

// Removes every es-enc header a producer gave: downstream it would pass for
// the agent's own descriptor.
void StripSealHeader(store::Headers* headers);

}  // namespace edgespool::agent
