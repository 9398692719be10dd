// The producer front door: a Unix stream socket speaking the protocol of
// agent/protocol/ (frames in frame.h, requests in request.h, replies in
// reply.h), feeding store::Journal.
//
// Per request: frame -> parse/validate -> ACL -> rate limit -> Journal::Append
// -> (after COMMIT) reply. Replies on a connection go out in request order: a
// publish's reply waits for its commit, and later replies (even a ping) wait
// behind it. Replies ready in the same loop turn are coalesced into one write.
//
// Backpressure and memory (the bounds, checked by the tests):
//  - Globally, while more than max_awaiting_commit appends wait for the store
//    thread (or more than the journal's own bound on queued groups), no
//    producer socket is read, until they drop below half of it.
//    While the journal's file is above its high-water mark, sockets are read in
//    short pulses (read for kPulseReadMs every kPulsePauseMs) instead of not at
//    all, so that requests still get an answer (journal_full, or stored when
//    when_full = drop-oldest makes room) rather than hanging.
//  - Per connection, memory is bounded by
//      one frame being assembled   8 + 64 KiB + max_message_bytes
//    + requests awaiting replies   <= kMaxConnPending requests and
//                                   kMaxConnPendingBytes payload bytes, plus
//                                   what one 64 KiB read can hold
//    + unwritten replies           <= kMaxConnWriteBytes before reading stops.
//    A connection past either limit is not read until it drains below half.
//  - The delivery-waiter map (ack:"delivered") holds <= max_delivery_waiters
//    entries; a publish that would exceed it gets `busy`.
//
// Thread-safety: loop-thread-only. Lifetime: destroy before the Journal and
// the Loop; journal callbacks that arrive after destruction are ignored.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/acl.h"
#include "agent/rate_limiter.h"
#include "agent/reload.h"
#include "platform/clock.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "store/journal.h"

namespace edgespool::protocol {
struct Request;
}

namespace edgespool::agent {

namespace server {
class Connection;
}

struct ProducerServerOptions {
  std::string socket_path = "/run/edgespool/edgespool.sock";
  unsigned socket_mode = 0660;
  // A listening socket inherited from systemd (LISTEN_FDS); -1: bind socket_path.
  int inherited_fd = -1;
  uint64_t max_message_bytes = 2u << 20;
  size_t max_connections = 10000;
  std::vector<AclEntry> acl;
  std::vector<RateLimitRule> rate_limits;
  // Appends waiting for their commit beyond which sockets stop being read.
  size_t max_awaiting_commit = 20000;
  // While the journal is idle, a publish waits up to this long for others
  // to share its commit (see commit_gate.cc, "handing appends"); 0:
  // every publish is handed over at once.
  int64_t append_linger_ms = 1;
  size_t max_delivery_waiters = 100000;
  // retry_after_ms suggested with busy / journal_full.
  int64_t busy_retry_after_ms = 100;
  int64_t full_retry_after_ms = 1000;
  const platform::Clock* clock = nullptr;  // nullptr: SystemClock
  // Besides root, the uid that may ask for a `reload` (the agent's own).
  std::optional<uint32_t> reload_uid;
};

// What the rest of the agent tells the server.
struct ProducerServerHooks {
  // Whether the uplink is connected now (the `uplink` field of a stored reply).
  std::function<bool()> uplink_connected;
  // The status document (JSON), as published on the status topic.
  std::function<std::string()> status_json;
  // Applies the route's rules (priority override, default ttl, encryption)
  // to a message before it is stored; now_ms is the time of receipt. An
  // error (the payload could not be sealed) refuses the publish: internal.
  std::function<Status(store::Message& message, int64_t now_ms)> route;
  // Seconds from a publish's arrival to its durable commit (the ack latency).
  std::function<void(double seconds)> on_ack_latency;
  // The consumer ops (subscribe, ack, unsubscribe), served by the downlink
  // (agent/downlink/consumer_endpoint.h), which answers on c. Empty: they
  // are refused with bad_request ("the downlink is off").
  std::function<void(server::Connection& c, const protocol::Request& r)> consumer_op;
  // The request/response ops (request, respond, answer), served by
  // agent/methods/methods.h, which answers on c; body is the frame's body.
  // A request's topic has passed the ACL's publish check. Empty: they are
  // refused with bad_request ("request/response is off").
  std::function<void(server::Connection& c, const protocol::Request& r, std::string_view body)>
      method_op;
  // c is closing: the downlink detaches its sessions, methods forget it.
  std::function<void(server::Connection& c)> on_closing;
  // The `reload` op (agent/reload.h), asked by root or options.reload_uid
  // (others get forbidden); the outcome's json is the reply's body. Empty:
  // refused with bad_request.
  std::function<ReloadOutcome()> reload;
  // The uplink tap (the WebSocket listener, agent/websocket/server.h):
  // whether anyone wants a message on this topic once it is stored (only
  // then is it copied), and the message once its commit is durable, in
  // commit order. Duplicates (a msg_id seen before) are not passed on.
  std::function<bool(std::string_view topic)> wants_stored;
  std::function<void(uint64_t seq, const store::Message& message)> on_stored;
  // Every other message stored (wants_stored said no when it arrived): only
  // its seq and topic, so that the tap sees every seq in commit order (the
  // resumable WebSocket uplink reads the ones it turns out to want back from
  // the journal: agent/websocket/uplink_cursor.h).
  std::function<void(uint64_t seq, std::string_view topic)> on_stored_untapped;
  // Every stored publish (not a duplicate) with its topic: the audit log's
  // "accepted". Unset, the server keeps no copy of the topic for it.
  std::function<void(uint64_t seq, const std::string& topic)> on_accepted;
};

struct ProducerServerStats {
  uint64_t connections = 0;           // open now
  uint64_t connections_total = 0;
  uint64_t connections_refused = 0;   // past max_connections
  uint64_t published = 0;             // stored replies (incl. duplicates)
  uint64_t duplicates = 0;
  uint64_t errors = 0;                // error replies of any code
  uint64_t bad_frames = 0;
  uint64_t awaiting_commit = 0;
  uint64_t peak_awaiting_commit = 0;
  uint64_t read_pauses = 0;           // times reading was stopped globally
  uint64_t conn_pauses = 0;           // times one connection was stopped
  uint64_t buffered_bytes = 0;        // decoder buffers + pending payloads + unwritten replies
  uint64_t peak_buffered_bytes = 0;
  uint64_t delivery_waiters = 0;
};

class ProducerServer {
 public:
  // Per-connection bounds (see the top of this file).
  // 4096: above the SDK's window (up to 1024 in the benchmarks), so that a
  // pipelining client is bounded by its window and not stopped and resumed
  // by us every few hundred replies.
  static constexpr size_t kMaxConnPending = 4096;
  static constexpr size_t kMaxConnPendingBytes = 8u << 20;
  static constexpr size_t kMaxConnWriteBytes = 1u << 20;
  static constexpr int64_t kPulsePauseMs = 200;
  static constexpr int64_t kPulseReadMs = 20;

  // Listens at once (stale socket replaced, directory created, mode applied).
  static Result<std::unique_ptr<ProducerServer>> Start(platform::Loop& loop,
                                                       store::Journal& journal,
                                                       ProducerServerOptions options,
                                                       ProducerServerHooks hooks = {});
  ~ProducerServer();
  ProducerServer(const ProducerServer&) = delete;
  ProducerServer& operator=(const ProducerServer&) = delete;

  // The sync worker reports the fate of message seq: delivered (sent), dead
  // or expired (with the reason). Producers that asked for ack:"delivered"
  // get their second reply; unknown seqs are ignored.
  void NotifyDelivery(uint64_t seq, store::MessageState state, const std::string& reason);

  // A reload: new [[acl]] entries and [[rate_limit]] rules for every
  // publish from now on, on connections old and new. Rate-limit buckets
  // restart full. InvalidArgument (nothing changed) if the ACL's names do
  // not resolve.
  Status Reconfigure(std::vector<AclEntry> acl, std::vector<RateLimitRule> rate_limits);

  ProducerServerStats stats() const;
  const ProducerServerOptions& options() const;

  class Impl;

 private:
  explicit ProducerServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgespool::agent
