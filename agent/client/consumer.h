// libedgespool-client: the C++ consumer SDK, downlink messages from the
// agent (docs/downlink.md, "Consumer ops on the producer socket").
//
//   ConsumerOptions o;
//   o.socket_path = "/run/edgespool/edgespool.sock";
//   o.session = "hmi";            // durable: keeps its position across restarts
//   o.filters = {"down/#"};
//   auto c = edgespool::client::Consumer::Open(std::move(o));
//   for (;;) {
//     auto m = (*c)->Next(1000);
//     if (!m.ok()) continue;         // Timeout: nothing yet
//     handle(m->topic, m->payload);
//     (*c)->Ack(m->seq);
//   }
//
// Two modes. Without a callback, Next() hands out messages in order,
// blocking up to timeout_ms. With a callback, each message runs it on the
// SDK thread (an IoThread, see io_thread.h), one at a time, in order; it
// must not block, and may call Ack().
//
// Flow control: the agent sends at most `window` messages that are not
// acked; the rest wait in its journal, not in memory. A consumer that does
// not ack holds at most `window` messages here (Next() mode) and receives
// nothing more until it acks.
//
// Delivery is at least once. When the connection drops, the SDK reconnects
// with backoff and subscribes again: a durable session resumes after its
// acked position (the agent resends what was delivered and not acked, so a
// message may arrive twice; seq identifies it); an anonymous one starts
// again after the last position acked here, or at `from` if nothing was.
// Messages received but not yet handed out by Next() are dropped at a
// reconnect (the agent resends them).
//
// Thread-safety: every method may be called from any thread; Ack() and
// AckUpTo() never block. Close() and the destructor must not run on the
// SDK thread (from a callback), as for Producer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agent/client/io_thread.h"
#include "platform/status.h"

namespace edgespool::client {

struct ConsumerOptions {
  std::string socket_path = "/run/edgespool/edgespool.sock";
  std::string session;               // "": anonymous, ends with the connection
  std::vector<std::string> filters;  // 1..64 MQTT filters over local topics
  // kDefault: a durable session resumes after its acked position, a new
  // one starts with new messages. kSeq: deliver inbox seq >= from_seq.
  enum class From { kDefault, kNew, kOldest, kSeq } from = From::kDefault;
  uint64_t from_seq = 0;
  uint32_t window = 100;  // 1..10000 unacked messages in flight
  // The thread that reads this Consumer's socket and runs its callback.
  // Empty: the Consumer starts its own. Shared like ProducerOptions::io.
  std::shared_ptr<IoThread> io;
  int64_t connect_timeout_ms = 5000;  // Open(): connect and subscribe
  int64_t backoff_initial_ms = 50;
  int64_t backoff_max_ms = 2000;
};

struct ReceivedMessage {
  uint64_t seq = 0;  // inbox seq: delivery order, what Ack() takes
  std::string session, topic, broker_topic;
  int64_t ts_ms = 0;  // when the agent received it
  std::vector<std::pair<std::string, std::string>> headers;
  std::string response_topic, correlation, payload;
};

class Consumer {
 public:
  using Callback = std::function<void(const ReceivedMessage&)>;

  // Connects and subscribes, waiting up to connect_timeout_ms for the
  // agent's answer: Unavailable if it cannot be reached, InvalidArgument
  // for a refused subscribe (bad filter...), ResourceExhausted when the
  // session is attached elsewhere (busy).
  static Result<std::unique_ptr<Consumer>> Open(ConsumerOptions options, Callback on_message = {});
  // Closes without unsubscribing (the connection's end detaches the session).
  ~Consumer();
  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;

  // The next message (Next() mode): Timeout when none came in timeout_ms,
  // Cancelled once closed, the agent's refusal if a resubscribe failed,
  // InvalidArgument on a Consumer opened with a callback.
  Result<ReceivedMessage> Next(int64_t timeout_ms);
  // Acknowledges one message, or every message delivered up to seq. Queued
  // for the SDK thread to write; an error the agent answers with is kept
  // in last_error().
  Status Ack(uint64_t seq);
  Status AckUpTo(uint64_t seq);
  // Unsubscribes (detaches: a durable session keeps its position; end=true
  // deletes it), waits up to 2 s for the agent's answer, and closes.
  Status Close(bool end = false);

  // Every message delivered here with seq <= this is acked (or was acked
  // before this Consumer attached, per the agent's subscribe reply).
  uint64_t acked_position() const;
  bool connected() const;
  uint64_t reconnects() const;
  Status last_error() const;

  class Impl;

 private:
  explicit Consumer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgespool::client
