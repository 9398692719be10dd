// AgentConnection: one SDK connection to the agent's socket that reconnects
// by itself, the part a Producer and a Consumer share. It connects (retrying
// with jittered exponential backoff), decodes the agent's frames
// (protocol/frame.h) and hands them to its owner, writes what the owner
// gives it through libuv, and reports each drop once.
//
// Thread-safety: loop thread only (an IoThread's), made and destroyed there.
// Every handler runs on that thread. A stream's late callbacks (after a
// drop) are recognised by generation() and ignored.
//
// Lifetime: Stop() ends the connection for good (no reconnect); the object
// may then be destroyed on a later loop turn, after the stream's deferred
// close has run.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>

#include "agent/protocol/frame.h"
#include "agent/protocol/reply.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "platform/stream.h"

namespace edgespool::client {

// The Status a caller sees for an agent's error reply (OK for ok:true).
Status ReplyStatus(const protocol::Reply& reply);

class AgentConnection {
 public:
  struct Options {
    std::string socket_path;
    int64_t backoff_initial_ms = 50;
    int64_t backoff_max_ms = 2000;
    uint64_t max_body_bytes = 16u << 20;  // larger frames are a protocol error
  };
  struct Handlers {
    // Connected; fd() is the new socket.
    std::function<void()> on_connected;
    // A connect attempt failed: true to retry after the backoff, false to
    // give up (the owner then decides, e.g. its first connect timed out).
    std::function<bool(const Status&)> on_connect_failed;
    // One frame (views valid during the call). False stops this read.
    std::function<bool(const protocol::Frame&)> on_frame;
    // After the frames of one read (a batch: write and wake callers once).
    std::function<void()> after_read;
    // The connection dropped (the owner's Disconnect, a read or write
    // error, the agent closed). Runs before the reconnect is scheduled.
    std::function<void(const Status&)> on_disconnected;
  };

  AgentConnection(platform::Loop& loop, Options options, Handlers handlers);
  ~AgentConnection();
  AgentConnection(const AgentConnection&) = delete;
  AgentConnection& operator=(const AgentConnection&) = delete;

  void Connect();
  // Drops the stream (no-op when not connected) and reconnects after the
  // backoff, at least min_delay_ms (the agent's retry_after_ms).
  void Disconnect(const Status& why, int64_t min_delay_ms = 0);
  // Queues bytes on the stream; `done` runs once libuv wrote them, unless
  // the connection dropped meanwhile. A failed write disconnects.
  void Write(std::string bytes, std::function<void()> done = {});
  // No more reconnects; the stream and a pending connect are dropped (on a
  // later loop turn: callable from their callbacks).
  void Stop();

  bool connected() const { return stream_ != nullptr; }
  int fd() const { return stream_ ? stream_->fd() : -1; }
  uint64_t generation() const { return generation_; }

 private:
  void OnConnected(Result<std::unique_ptr<platform::Stream>> result);
  void OnRead(uint64_t gen, const char* data, size_t len);
  void ScheduleReconnect(int64_t min_delay_ms);

  platform::Loop& loop_;
  Options options_;
  Handlers handlers_;
  bool stopped_ = false;
  std::unique_ptr<platform::TimerHandle> retry_timer_;
  std::unique_ptr<platform::PipeConnectRequest> connecting_;
  std::unique_ptr<platform::Stream> stream_;
  uint64_t generation_ = 0;  // of stream_: callbacks of an old stream are ignored
  std::unique_ptr<protocol::FrameDecoder> decoder_;
  int64_t backoff_ms_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace edgespool::client
