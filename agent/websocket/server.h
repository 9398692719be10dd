// The WebSocket listener for local HMIs and dashboards (`[websocket]`,
// docs/websocket.md): RFC 6455 through Debian's libwebsockets 4.1, running
// on the agent's own libuv loop as a foreign loop (its libuv event-lib
// plugin, package libwebsockets-evlib-uv), so every callback is on the loop
// thread like the rest of the agent and nothing is locked.
//
// One listener, two things on it:
//   GET /          the built-in page (page.h): live messages and the status
//   WebSocket      sessions speaking session_message.h: subscribe to the
//                  downlink (the hub's sessions: a session id, resume from the
//                  last acked position, a window), to uplink traffic as it is
//                  stored, and to the status document
//
// Admission, in this order, each refusal a close frame with its code
// (session.h CloseCode) right after the handshake, so that a browser sees
// why (a refused handshake would only show it 1006):
//   4429 max_sessions open; 4403 an Origin that is neither the page's own
//   (same host:port) nor in allowed_origins; 4401 a wrong bearer token in
//   Sec-WebSocket-Protocol. Without a token there, the first message must be
//   {"type":"auth"} (4401 otherwise, or when none came within idle_timeout,
//   at most 10 s).
//
// Limits: a message over max_frame_bytes closes 1009; a binary frame 1003;
// text that is not a session message 4400; invalid UTF-8 1007 and broken
// framing 1002 (libwebsockets). Each closes that session only. A session that
// sent nothing (not even a pong to our ping at half the timeout) for
// idle_timeout is closed 4408. Memory per session: session.h.
//
// Thread-safety: loop-thread-only. Lifetime: destroy before the hub and the
// loop; destruction detaches every session from the hub and hands the
// library's handles back to the loop to close (the Loop's destructor runs
// their close callbacks).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/downlink/hub.h"
#include "platform/loop.h"
#include "platform/status.h"
#include "store/journal.h"

namespace edgespool::agent::websocket {

struct WebSocketOptions {
  std::string host = "127.0.0.1";            // an address; "0.0.0.0" / "::" for every interface
  uint16_t port = 0;                         // 0: any free port (tests)
  std::string token;                         // empty: no authentication
  std::vector<std::string> allowed_origins;  // besides the page's own; "*": any
  size_t max_sessions = 64;
  size_t max_frame_bytes = 64 * 1024;
  int64_t idle_timeout_ms = 60000;
  int64_t status_interval_ms = 2000;
  size_t max_uplink_messages = 256;  // queued per session before dropping
  size_t max_uplink_bytes = 1u << 20;
  uint32_t uplink_window = 100;  // a resumable uplink's window when subscribe gives none
};

struct WebSocketHooks {
  downlink::Hub* hub = nullptr;              // null: downlink filters are refused
  store::Journal* journal = nullptr;         // null: no resumable uplink sessions
  std::function<std::string()> status_json;  // the status document
};

struct WebSocketStats {
  uint64_t sessions = 0;  // open now (admitted)
  uint64_t sessions_total = 0;
  uint64_t refused_unauthorized = 0;
  uint64_t refused_origin = 0;
  uint64_t refused_too_many = 0;
  uint64_t closed_bad_message = 0;  // 1003, 1009, 4400
  uint64_t closed_idle = 0;
  uint64_t downlink_delivered = 0;
  uint64_t uplink_delivered = 0;
  uint64_t uplink_dropped = 0;
  uint64_t pages_served = 0;
};

class WebSocketServer {
 public:
  static Result<std::unique_ptr<WebSocketServer>> Create(platform::Loop& loop,
                                                         WebSocketOptions options,
                                                         WebSocketHooks hooks);
  ~WebSocketServer();
  WebSocketServer(const WebSocketServer&) = delete;
  WebSocketServer& operator=(const WebSocketServer&) = delete;

  uint16_t port() const;

  // The uplink tap (the producer server calls these around each commit):
  // whether any session wants messages on this topic, so that a message
  // nobody watches is not copied; and one that was stored as `seq`.
  bool WantsUplink(std::string_view topic) const;
  void OnUplinkStored(uint64_t seq, const store::Message& message);
  // Every stored message the tap did not copy (its seq and topic): named
  // sessions whose uplink is live read one they want back from the journal.
  void OnUplinkUntapped(uint64_t seq, std::string_view topic);

  // Shutdown: detaches every session from the hub (their positions are then
  // persisted by the hub's flush), sends 1001 and refuses new sessions;
  // `done` once they are closed or after `timeout_ms`.
  void CloseAll(int64_t timeout_ms, std::function<void()> done);

  WebSocketStats stats() const;

  class Impl;

 private:
  explicit WebSocketServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgespool::agent::websocket
