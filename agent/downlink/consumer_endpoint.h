// ConsumerEndpoint: the consumer ops of the producer socket (subscribe, ack,
// unsubscribe; agent/protocol/request.h) on top of the hub. The producer
// server hands it every consumer op and tells it when a connection closes;
// it answers on that connection and pushes the hub's messages to it as
// "message" frames (agent/protocol/message.h), queued behind the replies
// already complete (server::Connection::Push), so a subscribe's reply always
// precedes the session's first message.
//
// Anonymous sessions: the protocol names them "" (the connection's one
// anonymous session; a second anonymous subscribe replaces the first). The
// hub knows them by a made-up name that never leaves the agent.
//
// Memory per connection: what the hub allows in flight (the sessions'
// windows) plus the connection's own write bound; a consumer that stops
// reading stops acking, so its window stops the flow.
//
// Loop-thread-only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "agent/downlink/hub.h"
#include "agent/protocol/request.h"
#include "agent/server/connection.h"

namespace edgespool::agent::downlink {

class ConsumerEndpoint {
 public:
  explicit ConsumerEndpoint(Hub& hub);
  ~ConsumerEndpoint();
  ConsumerEndpoint(const ConsumerEndpoint&) = delete;
  ConsumerEndpoint& operator=(const ConsumerEndpoint&) = delete;

  static bool IsConsumerOp(protocol::Op op) {
    return op == protocol::Op::kSubscribe || op == protocol::Op::kAck ||
           op == protocol::Op::kUnsubscribe;
  }
  // A consumer op on c; replies (or not, for a good ack) on c.
  void Handle(server::Connection& c, const protocol::Request& r);
  // c is closing: its sessions detach (anonymous ones end).
  void OnClosing(server::Connection& c);

 private:
  class Sink;
  Sink& SinkFor(server::Connection& c);
  void Subscribe(server::Connection& c, const protocol::Request& r);
  void Ack(server::Connection& c, const protocol::Request& r);
  void Unsubscribe(server::Connection& c, const protocol::Request& r);

  Hub& hub_;
  std::unordered_map<uint64_t, std::unique_ptr<Sink>> sinks_;  // by connection id
};

}  // namespace edgespool::agent::downlink
