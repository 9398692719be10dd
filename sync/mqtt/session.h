// The MQTT client session as a plain state machine: no I/O, no timers, no
// clock of its own. The owner feeds it events (connect, bytes received,
// connection lost, a periodic Tick with the current time) and gets back bytes
// to write (appended to a caller's buffer, so packets coalesce into one
// write), a Status that says "close the connection, because...", and
// callbacks on a SessionListener for what the owner must act on.
//
// States: Disconnected -> StartConnect -> Connecting (CONNECT written)
//   -> CONNACK success -> Connected -> (error/close) -> Disconnected.
//
// Delivery (QoS 1): Publish() queues a message and returns a local token.
// Pump() moves queued messages into the in-flight window (min of our
// `inflight` option and the broker's Receive Maximum), giving each a packet
// id that is never 0 and never reused while in flight. PUBACKs may arrive in
// any order. When the connection is lost, every in-flight message goes back
// to the front of the queue, in the order it was first sent, and is sent
// again first on the next connection with DUP set. A message is reported
// exactly once: acked, or rejected (MQTT 5 reason >= 0x80, or too large for
// the broker's Maximum Packet Size, or invalid) — never silently dropped.
//
// Receiving (QoS 1): by default an inbound PUBLISH is PUBACKed as soon as
// OnMessage returns. With `manual_acks` the owner acknowledges it later
// (once the message is durable) through AckIncoming(ack_token), where
//   ack_token = connection epoch << 16 | packet id
// and the epoch counts connections (StartConnect), starting at 1; QoS 0
// messages carry token 0. PUBACKs go out in the order the PUBLISHes arrived
// [MQTT-4.6.0-2]: an ack for a later message waits until every earlier one
// of that connection is acked too. A token from an earlier connection is
// ignored and counted (stale_acks): the broker resends what it did not get a
// PUBACK for on the next connection, and the packet id may by then name a
// different message. A DUP PUBLISH whose id is still unacknowledged on this
// connection is not handed up again. MQTT 5: a Receive Maximum in CONNECT
// bounds the unacknowledged inbound messages; one more is a protocol error
// (DISCONNECT 0x93), as the spec requires of the client — unless
// strict_receive_maximum is off: mosquitto 2.0.11 sends past the client's
// Receive Maximum once PUBACKs flow (measured: 3 allowed, 6 outstanding after
// the first PUBACK), and it resends them all on the next connection, so
// strictness against it is a reconnect loop. Then the excess is counted
// (receive_maximum_exceeded) and handed up like any other message.
//
// Error policy: anything the broker does wrong (malformed bytes, a PUBACK or
// SUBACK for an id we never used, a second CONNACK, a PUBLISH with packet id
// 0...) is a kProtocolError naming the problem; the session then writes a
// DISCONNECT with a reason code (MQTT 5), drops to Disconnected and the owner
// closes the transport. Liveness: no CONNACK within connect_timeout_ms, a
// PUBACK overdue by ack_timeout_ms, or nothing at all from the broker within
// 1.5 x keepalive makes Tick() return kTimeout.
//
// Not thread-safe; loop-thread-only in practice. Listener callbacks run
// synchronously inside OnBytes(); they may call Publish() and AckIncoming()
// (into the buffer OnBytes writes to) but not OnBytes().
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "platform/status.h"
#include "sync/mqtt/codec.h"

namespace edgespool::sync::mqtt {

// A message to publish; owned, because it may be sent again after a
// reconnect long after the caller's buffers are gone.
struct OutgoingMessage {
  std::string topic;
  std::string payload;
  uint8_t qos = 1;  // 0 or 1
  bool retain = false;
  // MQTT 5 only (ignored on 3.1.1):
  std::optional<uint32_t> message_expiry_s;
  std::string content_type;      // empty: none
  std::string response_topic;    // empty: none
  std::string correlation_data;  // empty: none
  std::vector<std::pair<std::string, std::string>> user_properties;
};

struct WillMessage {
  std::string topic;
  std::string payload;
  uint8_t qos = 1;
  bool retain = true;
  std::optional<uint32_t> delay_s;  // MQTT 5
};

struct SessionOptions {
  uint8_t protocol = kProtocol5;  // 5 falls back to 4 once if the broker refuses it
  std::string client_id;
  std::optional<std::string> username;
  std::optional<std::string> password;
  uint16_t keepalive_s = 30;  // 0: off
  uint16_t inflight = 100;    // QoS 1 window; capped by the broker's Receive Maximum
  uint32_t ack_timeout_ms = 30000;
  uint32_t connect_timeout_ms = 10000;
  bool clean_start = true;
  uint32_t session_expiry_s = 0;  // MQTT 5
  std::optional<WillMessage> will;
  // The largest packet we accept (told to an MQTT 5 broker, enforced anyway).
  uint32_t max_incoming_packet_bytes = 16 * 1024 * 1024;
  // Use topic aliases when the broker offers them (MQTT 5).
  bool topic_aliases = true;
  // Inbound QoS 1 messages are PUBACKed by AckIncoming(), not on receipt.
  bool manual_acks = false;
  // MQTT 5 Receive Maximum sent in CONNECT (0: omitted, the broker assumes
  // 65535). Enforced on inbound QoS 1 messages only with manual_acks (without
  // it every message is PUBACKed at once and never counts against it).
  uint16_t receive_maximum = 0;
  // Exceeding receive_maximum ends the connection (the spec); false: counted.
  bool strict_receive_maximum = true;
};

// What the CONNACK negotiated.
struct ConnectInfo {
  uint8_t protocol = kProtocol5;
  bool session_present = false;
  uint16_t receive_maximum = 65535;
  uint32_t maximum_packet_size = kMaxPacketSize;
  uint16_t topic_alias_maximum = 0;
  uint16_t keepalive_s = 0;
  uint8_t maximum_qos = 1;
  bool retain_available = true;
  std::string assigned_client_id;
  uint16_t window = 0;  // effective in-flight window
};

// A PUBLISH from the broker; views valid only during OnMessage.
struct IncomingMessage {
  std::string_view topic;
  std::string_view payload;
  uint8_t qos = 0;
  bool retain = false;
  bool dup = false;
  // manual_acks, QoS 1: pass to Session::AckIncoming. 0 for QoS 0 (and for
  // QoS 1 without manual_acks: the session has PUBACKed it already).
  uint64_t ack_token = 0;
  const Properties* properties = nullptr;
};

class SessionListener {
 public:
  virtual ~SessionListener() = default;
  virtual void OnConnected(const ConnectInfo& info) = 0;
  // PUBACK with a success code (0x00, or 0x10 "no matching subscribers"); for
  // QoS 0, once the packet has been queued for writing.
  virtual void OnPublishAcked(uint64_t token, uint8_t reason_code) = 0;
  // The broker refused this one message (reason >= 0x80), or it can never be
  // sent (larger than the broker's Maximum Packet Size, QoS/retain the broker
  // does not offer). reason_code is 0 when the refusal is local.
  virtual void OnPublishRejected(uint64_t token, const Status& why, uint8_t reason_code) = 0;
  virtual void OnMessage(const IncomingMessage& msg) = 0;
  virtual void OnSubscribed(uint16_t packet_id, const std::vector<uint8_t>& reason_codes) {}
};

class Session {
 public:
  Session(SessionOptions options, SessionListener* listener);

  // Writes CONNECT (at the current protocol level) and enters Connecting.
  // Call on every new transport connection.
  void StartConnect(uint64_t now_ms, std::string* out);
  // Bytes from the broker. A non-OK Status means: write *out (it may hold a
  // DISCONNECT), then close the connection; the session is Disconnected.
  Status OnBytes(std::string_view data, uint64_t now_ms, std::string* out);
  // The transport closed or failed. In-flight messages return to the queue.
  void OnConnectionLost(const Status& why);
  // Timers: connect timeout, PUBACK overdue, keepalive. Call every few
  // hundred ms. Non-OK: close the connection (the session is Disconnected).
  Status Tick(uint64_t now_ms, std::string* out);
  // Moves queued messages into the window and encodes them (connected only).
  void Pump(uint64_t now_ms, std::string* out);
  // Graceful close: writes DISCONNECT; the session is Disconnected.
  void Disconnect(std::string* out);
  // Disconnected only: the next CONNECT goes to another broker, or as
  // another user. Credentials are replaced and the protocol level is
  // negotiated afresh (back to options.protocol, with one fallback allowed);
  // queued and returned in-flight messages stay, to be sent there.
  void NewPeer(std::optional<std::string> username, std::optional<std::string> password);

  // Queues a message; returns its token (> 0), or InvalidArgument for a
  // message that can never be sent (bad topic, QoS > 1, field over 65535).
  Result<uint64_t> Publish(OutgoingMessage msg);
  // manual_acks: PUBACKs the inbound message with this token (reason_code
  // is MQTT 5's; 3.1.1 has none), now or, if an earlier message of the
  // connection is still unacked, as soon as that one is. A token of an earlier
  // connection (or any token while disconnected) is ignored: OK, counted in
  // stale_acks(). InvalidArgument for token 0, an id not outstanding on this
  // connection, or a second ack of one message.
  Status AckIncoming(uint64_t ack_token, uint8_t reason_code, std::string* out);
  // Connected only. Returns the SUBSCRIBE's packet id; QoS capped at 1.
  Result<uint16_t> Subscribe(const std::vector<std::pair<std::string, uint8_t>>& filters,
                             std::string* out);

  bool connected() const { return state_ == State::kConnected; }
  bool connecting() const { return state_ == State::kConnecting; }
  uint8_t protocol() const { return protocol_; }
  size_t inflight_count() const { return inflight_.size(); }
  size_t queued_count() const { return queue_.size(); }
  // Effective window (0 while not connected).
  uint16_t window() const { return connected() ? info_.window : 0; }
  // Window slots not yet claimed by queued or in-flight messages.
  size_t capacity() const;
  uint32_t max_packet_size() const { return info_.maximum_packet_size; }
  const ConnectInfo& info() const { return info_; }
  uint64_t publish_bytes_sent() const { return publish_bytes_sent_; }
  // The connection count behind ack tokens (0 before the first StartConnect).
  uint64_t epoch() const { return epoch_; }
  // Inbound QoS 1 messages of this connection whose PUBACK is not written.
  size_t inbound_unacked() const { return inbound_.size(); }
  uint64_t stale_acks() const { return stale_acks_; }
  // DUP PUBLISHes not handed up because their id was still unacknowledged.
  uint64_t duplicates_dropped() const { return duplicates_dropped_; }
  // Inbound QoS 1 messages beyond our Receive Maximum (strict off).
  uint64_t receive_maximum_exceeded() const { return receive_maximum_exceeded_; }

 private:
  enum class State { kDisconnected, kConnecting, kConnected };
  struct Entry {
    uint64_t token = 0;
    OutgoingMessage msg;
    uint16_t packet_id = 0;  // kept across reconnects to be resent with the same id
    bool dup = false;
    uint64_t sent_ms = 0;
  };
  static constexpr uint64_t kSubscribeOwner = UINT64_MAX;
  // An inbound QoS 1 message awaiting its PUBACK (manual_acks).
  struct Inbound {
    uint16_t packet_id = 0;
    bool acked = false;  // AckIncoming called; written once all before it are
    uint8_t reason_code = 0;
  };

  Status HandleFrame(const Frame& frame, uint64_t now_ms, std::string* out);
  Status HandleConnack(const Frame& frame, uint64_t now_ms);
  Status HandlePublish(const mqtt::Publish& p, std::string* out);
  // manual_acks bookkeeping for one QoS 1 PUBLISH: sets *token, or *hand_up
  // false for a DUP already outstanding; non-OK ends the connection.
  Status TrackInbound(const mqtt::Publish& p, std::string* out, uint64_t* token, bool* hand_up);
  // Writes the PUBACKs at the front of inbound_ that are acked.
  void ReleaseAcks(std::string* out);
  Status HandlePuback(const Puback& a);
  Status HandleSuback(const Suback& s);
  // Ends the connection on a broker fault: DISCONNECT with a reason (5).
  Status Fail(Status why, uint8_t reason_code, std::string* out);
  void Drop();
  uint16_t AllocPacketId();
  // Encodes one entry; returns false (nothing written) if it is too large.
  bool EncodeEntry(Entry& e, std::string* out);

  SessionOptions options_;
  SessionListener* listener_;
  uint8_t protocol_;
  bool fell_back_ = false;
  bool ever_connected_ = false;
  State state_ = State::kDisconnected;
  ConnectInfo info_;
  FrameSplitter splitter_;

  uint64_t next_token_ = 1;
  std::deque<Entry> queue_;           // not yet sent on this connection, in token order
  std::map<uint64_t, Entry> inflight_;  // by token: begin() is the oldest
  // Packet id -> owning token (kSubscribeOwner for a SUBSCRIBE); absent: free.
  // A hash map rather than a 65536-slot table: the window is usually far
  // smaller than the id space.
  std::unordered_map<uint16_t, uint64_t> id_owner_;
  uint64_t OwnerOf(uint16_t id) const;
  uint16_t next_packet_id_ = 1;
  std::map<uint16_t, size_t> subscribes_;  // packet id -> number of filters

  std::unordered_map<std::string, uint16_t> topic_aliases_;

  // Inbound, this connection, in arrival order: inbound_[i] arrived as
  // number inbound_base_ + i; inbound_seq_ maps a packet id to that number.
  uint64_t epoch_ = 0;
  std::deque<Inbound> inbound_;
  uint64_t inbound_base_ = 0;
  std::unordered_map<uint16_t, uint64_t> inbound_seq_;
  uint64_t stale_acks_ = 0;
  uint64_t duplicates_dropped_ = 0;
  uint64_t receive_maximum_exceeded_ = 0;

  uint64_t connect_started_ms_ = 0;
  uint64_t last_sent_ms_ = 0;
  uint64_t last_received_ms_ = 0;
  bool ping_outstanding_ = false;
  uint64_t publish_bytes_sent_ = 0;
};

// Maps a refused CONNACK to a Status with a clear message (bad credentials
// and not authorized are kPermissionDenied, server unavailable/busy is
// kUnavailable...).
Status ConnackRefusal(uint8_t protocol, uint8_t code);

}  // namespace edgespool::sync::mqtt
