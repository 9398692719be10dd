// Parsing what arrives from the broker on the uplink topics, all of it
// outside input: a node's status document (JSON, agent/status_document.h),
// a message-mode PUBLISH's MQTT 5 user properties (es-ts, es-seq, es-node,
// es-id, es-topic, es-enc; every other property is a producer header), and batch
// frames (decoded by sync/batch/batch_frame.h, the same decoder as
// `edgespool decode`). Malformed input is an error, never a crash
// (tests/fuzz/central_parse_fuzz.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "central/message.h"
#include "platform/status.h"
#include "sync/mqtt/properties.h"

namespace edgespool::central {

struct NodeStatus {
  std::string node;
  bool online = false;
  // Below it the node has nothing left to upload; -1 when the document
  // says nothing usable (an offline document, an agent predating the field
  // with a backlog whose oldest ts it did not report).
  int64_t watermark_ms = -1;
  // watermark_follow (an idle node, agent/status_document.h): the watermark
  // follows the node's clock, lag_ms behind, for for_ms. for_ms 0: absent.
  int64_t follow_lag_ms = 0;
  int64_t follow_for_ms = 0;
  int64_t follow_expiry_s = 0;  // the MQTT message expiry it was sent with
};

// A status document. Agents before watermark_ms: the oldest pending ts, or
// ts_ms - 500 ms when nothing was pending (the same rule, one heartbeat late).
Result<NodeStatus> ParseNodeStatus(std::string_view json);

// A message-mode PUBLISH. Without es-node and es-seq (MQTT 3.1.1, or a
// publisher that is not edgespool) node stays empty and seq 0: the message
// cannot be ordered or deduplicated. A malformed es-ts or es-seq is an error.
Result<Message> MessageFromPublish(std::string_view topic, std::string_view payload,
                                   const sync::mqtt::Properties* properties);

// Every record of a batch frame, in frame order.
Status MessagesFromFrame(std::string_view frame, std::vector<Message>* out);

// Opens m's payload in place when it is sealed (docs/encryption.md), with
// the associated data rebuilt from its node, topic, id and ts. True when the
// payload is plaintext now. False with m->decrypt_error set (and the payload
// left as it came) when cipher is null, the key id is unknown to it or the
// tag does not verify.
bool OpenSealed(crypto::Cipher* cipher, Message* m);

// "123" -> 123; false for anything else (sign, space, overflow, empty).
bool ParseUint64(std::string_view s, uint64_t* out);
bool ParseInt64(std::string_view s, int64_t* out);

}  // namespace edgespool::central
