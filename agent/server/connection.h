// One client connection of a server speaking the frames of agent/protocol/
// (frame.h, reply.h), and the set of them a server owns. Written for the
// producer server (producer_server.h) and meant to be reused as it is by any
// other server on the same protocol, so that none copies it.
//
// What a Connection holds, per connection:
//  - Frame assembly: a FrameDecoder; each whole frame goes to the owner.
//  - Reply order: every request that will be answered takes a slot
//    (PushSlot) with a serial, in request order; its reply (CompleteSlot)
//    goes out once every earlier slot's reply has gone, so a slow reply (a
//    publish waiting for its commit) holds back the later ones, even a ping.
//    ReplyNow is a slot completed at once.
//  - Pushed frames (Push): a frame that answers no request (a message pushed
//    to a consumer). It goes out after every reply that was complete when it
//    was pushed, never before, and waits for nothing else: not for the slots
//    still incomplete, whose replies may then follow it. (A frame that must
//    also wait for the replies still to come is a ReplyNow.)
//  - Write coalescing: ready frames gather in one output buffer and are
//    written once per loop turn (Connections runs the flush), straight to the
//    socket when it takes them all.
//  - Bounds: a connection holding more than Bounds allows (slots, payload
//    bytes of requests awaiting replies, unwritten bytes) is not read until
//    it drains below half; nor is any while the owner says reading is
//    blocked (ConnectionOwner::ReadingBlocked, a server-wide gate).
//  - Closing: after a half-close (EOF) or close_after, once every slot is
//    answered and written; at once on a read or write error.
//
// Thread-safety: loop-thread-only. Lifetime: Connections owns its
// Connections; a closed one is deleted on a later loop turn (it may be inside
// one of its stream's callbacks). Destroy Connections before the Loop; write
// callbacks that arrive after that are ignored.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "agent/protocol/frame.h"
#include "agent/protocol/reply.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "platform/stream.h"

namespace edgespool::agent::server {

class Connection;

// What a Connection asks of the server that owns it (loop thread).
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // One whole frame; false stops decoding the rest of this read.
  virtual bool OnFrame(Connection& c, const protocol::Frame& f) = 0;
  // The byte stream is not frames (the decoder's protocol error): why.
  virtual void OnBadStream(Connection& c, const std::string& why) = 0;
  // Whether no connection may be read now (a server-wide gate).
  virtual bool ReadingBlocked() const = 0;
  // c is closing (its slots will never be answered): drop what refers to it.
  virtual void OnClosing(Connection& c) = 0;
};

class Connections;

class Connection {
 public:
  struct Bounds {
    size_t max_pending = 4096;            // slots awaiting their reply
    size_t max_pending_bytes = 8u << 20;  // their payload bytes
    size_t max_write_bytes = 1u << 20;    // unwritten bytes
  };

  Connection(Connections& set, uint64_t id, std::unique_ptr<platform::Stream> stream);
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  uint64_t id() const { return id_; }
  // The peer's credentials (SO_PEERCRED); UINT32_MAX (nobody) if unknown.
  uint32_t uid() const { return uid_; }
  uint32_t gid() const { return gid_; }
  // Closing after its replies (no more requests are read).
  bool close_requested() const { return close_requested_; }

  // A slot for a request whose reply comes later; payload_bytes count
  // against the connection's bound until then. Returns its serial.
  uint64_t PushSlot(size_t payload_bytes);
  // The reply for slot `serial` (encoded straight into the output when every
  // earlier reply has gone, else kept in the slot until they have).
  // close_after: close the connection once this reply is written.
  void CompleteSlot(uint64_t serial, const protocol::Reply& reply, std::string_view body = {},
                    bool close_after = false);
  void ReplyNow(const protocol::Reply& reply, std::string_view body = {}, bool close_after = false);
  // An unsolicited frame (whole, encoded): after every reply complete now.
  void Push(std::string_view frame_bytes);
  // No more reading; closes once every slot is answered and written.
  void CloseAfterReplies();

  // Decoder buffer + payloads awaiting replies + unwritten and held frames.
  uint64_t buffered_bytes() const;

 private:
  friend class Connections;

  // One request awaiting its reply, in request order.
  struct Slot {
    bool ready = false;
    bool close_after = false;
    size_t payload_bytes = 0;
    std::string frame;  // the reply (and frames pushed after it), once ready
  };

  uint64_t next_serial() const { return front_serial_ + slots_.size(); }
  size_t unwritten() const { return out_.size() + stream_->write_queue_bytes(); }
  void ReleaseReady();
  void MarkDirty();
  void OnData(const char* data, size_t len);
  void OnEnd(const Status& why);
  void OnWritten(const Status& s);
  void UpdateReading();
  void UpdateThrottle();
  void Flush();
  void MaybeClose();

  Connections& set_;
  uint64_t id_;
  std::unique_ptr<platform::Stream> stream_;
  protocol::FrameDecoder decoder_;
  uint32_t uid_ = UINT32_MAX;
  uint32_t gid_ = UINT32_MAX;
  std::deque<Slot> slots_;
  uint64_t front_serial_ = 0;  // serial of slots_.front()
  // 1 + the highest serial completed: while that slot is still in slots_
  // (ready, behind one that is not), a pushed frame waits behind it.
  uint64_t ready_end_ = 0;
  size_t pending_bytes_ = 0;  // payload bytes of requests awaiting replies
  std::string out_;           // ready frames not yet handed to the stream
  size_t writes_in_flight_ = 0;
  bool read_eof_ = false;
  bool close_requested_ = false;  // after the queued replies
  bool throttled_ = false;        // past its own bounds
  bool dirty_ = false;            // in Connections' flush list
  bool closed_ = false;           // out of Connections, deletion deferred
};

// The connections of one server: ids, the flush once per loop turn, closing.
class Connections {
 public:
  // max_frame_body: the decoder's bound on one frame's body.
  Connections(platform::Loop& loop, ConnectionOwner& owner, Connection::Bounds bounds,
              uint64_t max_frame_body);
  ~Connections();
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  // Starts the per-turn flush; before_flush (may be empty) runs first in
  // every turn, before any connection is written.
  void Start(std::function<void()> before_flush);

  // Adopts an accepted stream (reads its peer credentials, starts reading).
  Connection& Add(std::unique_ptr<platform::Stream> stream);
  Connection* Find(uint64_t id);
  void Close(uint64_t id);
  // After the owner's ReadingBlocked() changed.
  void UpdateReadingAll();
  // An id from the same sequence as the connections' (for streams kept
  // elsewhere, such as refused ones).
  uint64_t NextId() { return next_id_++; }

  size_t size() const { return connections_.size(); }
  uint64_t buffered_bytes() const;
  uint64_t pauses() const { return pauses_; }  // times one connection was stopped

 private:
  friend class Connection;
  using Weak = std::weak_ptr<Connections*>;
  static Connections* Lock(const Weak& w) {
    auto p = w.lock();
    return p ? *p : nullptr;
  }
  void FlushAll();

  platform::Loop& loop_;
  ConnectionOwner& owner_;
  Connection::Bounds bounds_;
  uint64_t max_frame_body_;
  platform::CheckHandle flush_;
  std::function<void()> before_flush_;
  std::shared_ptr<Connections*> self_;  // write callbacks hold a weak_ptr
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections_;
  std::vector<uint64_t> dirty_;
  uint64_t next_id_ = 1;
  uint64_t pauses_ = 0;
};

}  // namespace edgespool::agent::server
