// Session: one WebSocket connection as the rest of the agent sees it: a
// downlink ConsumerSink (the hub delivers to it exactly as to a Unix-socket
// consumer: same sessions, windows, acks and persisted positions), a
// subscriber to uplink traffic as it is stored, and a queue of encoded text
// frames waiting for the socket to take them.
//
// No I/O here: the server (server.h) moves the queue to libwebsockets when
// the socket is writable, and feeds the session what the client sent.
//
// Memory bounds, per session (the reason there is no unbounded buffering):
//   downlink  at most `window` messages, the hub's flow control (a client
//             that does not read does not ack, and its window stops the flow;
//             the rest waits in the journal);
//   uplink    at most max_uplink_messages / max_uplink_bytes queued; past
//             that an uplink message is dropped for this session and counted
//             (a "dropped" frame tells the client before its next one);
//   status    at most one status frame queued (a newer one is skipped);
//   replies   at most kMaxControlFrames replies and errors queued; a client
//             that keeps sending without reading is closed (1008).
//
// Loop-thread-only. Owned by the server; detached from the hub before it dies.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/downlink/hub.h"
#include "agent/websocket/uplink_cursor.h"
#include "store/journal.h"

namespace edgespool::agent::websocket {

// Close codes (docs/websocket.md). 1xxx are RFC 6455's; 4xxx are ours.
enum CloseCode : uint16_t {
  kCloseNormal = 1000,
  kCloseGoingAway = 1001,      // the agent is stopping
  kCloseUnsupported = 1003,    // a binary frame
  kClosePolicy = 1008,         // the client sends and never reads its replies
  kCloseTooBig = 1009,         // a message over max_frame_bytes
  kCloseBadMessage = 4400,     // not a session message (session_message.h)
  kCloseUnauthorized = 4401,   // no or wrong token, or none in time
  kCloseOriginRefused = 4403,  // Origin not allowed
  kCloseIdle = 4408,           // nothing received within idle_timeout
  kCloseTooMany = 4429,        // max_sessions connections already open
};

struct SessionLimits {
  size_t max_uplink_messages = 256;
  size_t max_uplink_bytes = 1u << 20;
};

class Session : public downlink::ConsumerSink {
 public:
  static constexpr size_t kMaxControlFrames = 64;

  Session(uint64_t id, SessionLimits limits) : id_(id), limits_(limits) {}

  uint64_t id() const { return id_; }

  // --- the subscription -------------------------------------------------------
  // The hub's name of the downlink session ("" none); whether it is
  // anonymous (the client calls it "").
  std::string hub_name;
  bool anonymous = false;
  std::vector<std::string> uplink_filters;
  bool wants_status = false;
  bool MatchesUplink(std::string_view topic) const;
  // A named session's resumable uplink (docs/websocket.md): acks, a window,
  // a persisted position. Null: uplink_filters are live only (anonymous).
  std::unique_ptr<UplinkCursor> uplink_cursor;

  // --- connection state -------------------------------------------------------
  bool admitted = false;  // counted against max_sessions (not refused at once)
  bool authenticated = false;
  bool established = false;
  uint16_t close_code = 0;  // nonzero: close with it once the queue before it is written
  std::string close_reason;
  int64_t opened_ms = 0;
  int64_t last_rx_ms = 0;
  bool ping_due = false;   // a ping to write
  bool ping_sent = false;  // since the last frame received
  std::string partial;     // a text message being assembled from fragments
  bool partial_binary = false;

  // --- output -----------------------------------------------------------------
  // The hub's delivery (ConsumerSink).
  void Deliver(const std::string& session, const store::StoredInbound& row) override;
  // A reply or error; false when kMaxControlFrames are already queued.
  bool QueueControl(std::string frame);
  // False when a status frame is already queued (skipped, not an error).
  bool QueueStatus(std::shared_ptr<const std::string> frame);
  // An uplink message, encoded once for every session that wants it. False:
  // dropped for this session (counted).
  bool QueueUplink(const std::shared_ptr<const std::string>& frame);
  // An uplink message of a resumable session: bounded by its cursor's
  // window, never dropped here.
  void QueueUplinkInFlight(std::shared_ptr<const std::string> frame);
  // Uplink messages a resumable session will never get (gone from the
  // journal): counted as dropped and told at once, in order.
  void QueueMissed(uint64_t count);

  // Called when the queue goes from empty to not (the server asks the
  // socket for a writable callback).
  std::function<void()> wake;

  bool HasOutput() const { return !queue_.empty(); }
  // The next frame to write; PopFront once libwebsockets took it.
  const std::string& Front() const { return *queue_.front().frame; }
  void PopFront();
  // Queued bytes (frames not yet handed to the socket).
  size_t queued_bytes() const { return queued_bytes_; }

  uint64_t uplink_delivered = 0;
  uint64_t uplink_dropped = 0;
  uint64_t downlink_delivered = 0;

 private:
  enum class Kind : uint8_t { kControl, kDownlink, kUplink, kStatus, kDropped };
  struct Out {
    std::shared_ptr<const std::string> frame;
    Kind kind;
  };
  void Push(std::shared_ptr<const std::string> frame, Kind kind);

  uint64_t id_;
  SessionLimits limits_;
  std::deque<Out> queue_;
  size_t queued_bytes_ = 0;
  size_t control_queued_ = 0;
  size_t uplink_queued_ = 0;
  size_t uplink_queued_bytes_ = 0;
  bool status_queued_ = false;
  uint64_t unreported_drops_ = 0;
  std::string frame_;  // Deliver's scratch
};

}  // namespace edgespool::agent::websocket
