// A message as the central side sees it, whichever way it travelled
// (message mode with MQTT 5 user properties, or a record of a batch frame).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sync/crypto/sealed.h"

namespace edgespool::central {

struct Message {
  std::string node;   // es-node / the frame's node; empty if unknown (MQTT 3.1.1)
  uint64_t seq = 0;   // es-seq / the record's seq; 0 if unknown
  int64_t ts_ms = 0;  // the original timestamp (the node's or producer's clock)
  std::string topic;  // the local topic (es-topic, or the MQTT topic; the record's)
  std::string id;     // the producer's idempotency key, empty if none
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload;
  // Message-level encryption (docs/encryption.md). Set while the payload is
  // still sealed (ciphertext || tag): the es-enc user property, or the batch
  // record's seal field. Cleared once the consumer opened it.
  std::optional<crypto::Sealed> sealed;
  // Why a sealed payload was not opened (no key file given, a key id the
  // key file does not have, a tag that does not verify). The message is
  // still handed out, payload as it came: never dropped silently.
  std::string decrypt_error;
  // Released after messages it should have preceded on its topic: its node
  // was offline, stale or lagging past --max-wait (or the producer stamped it
  // older than the node's watermark). Never dropped for it.
  bool late = false;
  // Carried through untouched: the consumer library's handle for the MQTT
  // PUBLISH this came in (acked once all of its messages are released).
  uint64_t tag = 0;
};

}  // namespace edgespool::central
