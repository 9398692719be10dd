// NonceSource: 96-bit GCM nonces that are never used twice with a key.
//
// GCM's one rule is that a (key, nonce) pair never repeats: a repeat leaks
// the XOR of two plaintexts and lets the holder of both forge tags. The
// nonce is deterministic where it can be and random where it cannot:
//
//   nonce := epoch u32 | boot_random u32 | counter u32      (big-endian)
//
//  - epoch: a counter persisted in the state file (docs/encryption.md; the
//    agent uses store.path + ".nonce"), incremented and made durable
//    (write, fsync, rename) BEFORE the first nonce of a run is handed out.
//    Two runs of one agent never share an epoch, whatever the crash: a run
//    that died before the file was durable handed out no nonce.
//  - counter: 0, 1, 2, ... within the run. When it would wrap (after 2^32
//    nonces) the source takes a new epoch (one more durable write, on the
//    caller's thread) and starts again at 0.
//  - boot_random: 32 random bits drawn with each epoch. They guard what the
//    epoch cannot see: two gateways cloned from one image with the same key
//    and the same state file, or a state file restored from a backup. Such
//    twins collide only if their 32 random bits match too (2^-32 per pair of
//    runs). A key per gateway avoids the question altogether.
//
// Rejected: a random 96-bit nonce per message. It is safe for about 2^32
// messages per key (NIST SP 800-38D's bound for random nonces) and needs
// no state, but a busy gateway reaches 2^32 in weeks and would then have to
// count uses per key across restarts anyway. Rejected too: epoch | u64
// counter with no random part, which is unsafe for cloned images.
//
// The nonces are unique across keys too, so a rotation needs nothing here.
// Not thread-safe; the agent uses one on its loop thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "platform/status.h"
#include "sync/crypto/sealed.h"

namespace edgespool::crypto {

class NonceSource {
 public:
  // Reads the epoch in `state_path` (0 if the file does not exist), writes
  // epoch + 1 durably, and hands out nonces under it. Corruption if the file
  // exists and is not what this class writes (a guess could reuse nonces).
  static Result<std::unique_ptr<NonceSource>> Open(const std::string& state_path);

  // The next nonce. Fails only if a new epoch cannot be made durable (after
  // 2^32 nonces in one epoch) or the epochs ran out.
  Status Next(Nonce* out);

  uint32_t epoch() const { return epoch_; }

  // Tests: pretend this many nonces of the epoch were used already.
  void SkipForTest(uint32_t counter) { counter_ = counter; }

 private:
  explicit NonceSource(std::string state_path) : path_(std::move(state_path)) {}
  Status NewEpoch();

  std::string path_;
  uint32_t epoch_ = 0;
  uint32_t random_ = 0;
  uint64_t counter_ = 0;  // next counter; 2^32 means "take a new epoch"
};

}  // namespace edgespool::crypto
