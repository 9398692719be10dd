#include "sync/mqtt/session.h"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <string>

#include "sync/mqtt/wire.h"

namespace edgespool::sync::mqtt {

namespace {

std::string Hex8(uint8_t code) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02X", code);
  return buf;
}

bool FitsString(const std::string& s) { return s.size() <= 65535; }

}  // namespace

Status ConnackRefusal(uint8_t protocol, uint8_t code) {
  // 3.1.1 return codes 1..5 map onto the MQTT 5 reason codes.
  uint8_t rc = code;
  if (protocol < kProtocol5) {
    static const uint8_t kMap[] = {0x00, 0x84, 0x85, 0x88, 0x86, 0x87};
    rc = code < sizeof kMap ? kMap[code] : 0x80;
  }
  std::string m = std::string("connection refused by broker: ") + ReasonName(rc) + " (" +
                  Hex8(code) + ")";
  switch (rc) {
    case reason::kBadUserNameOrPassword:
    case reason::kNotAuthorized:
    case reason::kBanned:
      return Status::PermissionDenied(m);
    case reason::kClientIdNotValid:
      return Status::InvalidArgument(m);
    case reason::kUnsupportedProtocolVersion:
      return Status::ProtocolError(m);
    default:
      return Status::Unavailable(m);
  }
}

Session::Session(SessionOptions options, SessionListener* listener)
    : options_(std::move(options)),
      listener_(listener),
      protocol_(options_.protocol == kProtocol311 ? kProtocol311 : kProtocol5),
      splitter_(options_.max_incoming_packet_bytes) {
  if (options_.inflight == 0) options_.inflight = 1;
}

size_t Session::capacity() const {
  if (!connected()) return 0;
  size_t used = inflight_.size() + queue_.size();
  return used >= info_.window ? 0 : info_.window - used;
}

// ------------------------------------------------------------ connecting

void Session::StartConnect(uint64_t now_ms, std::string* out) {
  if (state_ != State::kDisconnected) Drop();
  ++epoch_;
  splitter_.Reset();
  splitter_.set_max_packet_size(options_.max_incoming_packet_bytes);
  info_ = ConnectInfo();
  info_.protocol = protocol_;

  Connect c;
  c.protocol_level = protocol_;
  c.client_id = options_.client_id;
  c.clean_start = options_.clean_start;
  c.keepalive_s = options_.keepalive_s;
  if (options_.username) c.username = *options_.username;
  if (options_.password) {
    // 3.1.1 forbids a password without a user name [MQTT-3.1.2-22].
    if (protocol_ >= kProtocol5 || options_.username) c.password = *options_.password;
  }
  if (options_.will) {
    Will w;
    w.topic = options_.will->topic;
    w.payload = options_.will->payload;
    w.qos = std::min<uint8_t>(options_.will->qos, 1);
    w.retain = options_.will->retain;
    if (protocol_ >= kProtocol5 && options_.will->delay_s) {
      w.properties.will_delay_s = options_.will->delay_s;
    }
    c.will = w;
  }
  if (protocol_ >= kProtocol5) {
    if (options_.session_expiry_s) c.properties.session_expiry_s = options_.session_expiry_s;
    c.properties.maximum_packet_size = options_.max_incoming_packet_bytes;
    if (options_.receive_maximum) c.properties.receive_maximum = options_.receive_maximum;
  }
  Encode(c, out);
  state_ = State::kConnecting;
  connect_started_ms_ = now_ms;
  last_sent_ms_ = now_ms;
  last_received_ms_ = now_ms;
  ping_outstanding_ = false;
}

void Session::OnConnectionLost(const Status& why) {
  // Some brokers (RabbitMQ's MQTT plugin) answer an MQTT 5 CONNECT by
  // closing the connection without any CONNACK; fall back to 3.1.1 once, but
  // not if 5 has worked here before (then the close is a real outage).
  if (state_ == State::kConnecting && protocol_ == kProtocol5 && !fell_back_ && !ever_connected_) {
    protocol_ = kProtocol311;
    fell_back_ = true;
  }
  if (state_ != State::kDisconnected) Drop();
}

void Session::Drop() {
  state_ = State::kDisconnected;
  // In-flight messages go back in front of the queue, oldest first; both are
  // in token order and every in-flight token precedes every queued one.
  for (auto it = inflight_.rbegin(); it != inflight_.rend(); ++it) {
    Entry& e = it->second;
    e.dup = true;
    queue_.push_front(std::move(e));
  }
  inflight_.clear();
  id_owner_.clear();
  subscribes_.clear();
  topic_aliases_.clear();
  // The broker resends unacknowledged inbound messages on the next
  // connection, under packet ids of that connection.
  inbound_.clear();
  inbound_seq_.clear();
  inbound_base_ = 0;
  ping_outstanding_ = false;
}

Status Session::Fail(Status why, uint8_t reason_code, std::string* out) {
  if (protocol_ >= kProtocol5 && state_ == State::kConnected) {
    mqtt::Disconnect d;
    d.reason_code = reason_code;
    Encode(d, protocol_, out);
  }
  Drop();
  return why;
}

void Session::NewPeer(std::optional<std::string> username, std::optional<std::string> password) {
  assert(state_ == State::kDisconnected);
  options_.username = std::move(username);
  options_.password = std::move(password);
  protocol_ = options_.protocol == kProtocol311 ? kProtocol311 : kProtocol5;
  fell_back_ = false;
  ever_connected_ = false;
}

void Session::Disconnect(std::string* out) {
  if (state_ == State::kConnected) {
    mqtt::Disconnect d;
    Encode(d, protocol_, out);
  }
  Drop();
}

// ------------------------------------------------------------ receiving

Status Session::OnBytes(std::string_view data, uint64_t now_ms, std::string* out) {
  if (state_ == State::kDisconnected) {
    return Status::ProtocolError("bytes received while disconnected");
  }
  Status st = splitter_.Feed(data, [&](const Frame& f) { return HandleFrame(f, now_ms, out); });
  if (!st.ok()) {
    if (state_ != State::kDisconnected) {
      uint8_t rc = st.message().find("malformed") != std::string::npos
                       ? reason::kMalformedPacket
                       : st.message().find("exceeds the maximum packet size") != std::string::npos
                             ? reason::kPacketTooLarge
                             : reason::kProtocolError;
      return Fail(st, rc, out);
    }
    return st;
  }
  Pump(now_ms, out);
  return Status::Ok();
}

Status Session::HandleFrame(const Frame& frame, uint64_t now_ms, std::string* out) {
  last_received_ms_ = now_ms;
  if (frame.type() == PacketType::kConnack) return HandleConnack(frame, now_ms);
  if (state_ != State::kConnected) {
    return Status::ProtocolError(std::string(PacketTypeName(frame.type())) + " before CONNACK");
  }
  auto decoded = Decode(frame, protocol_);
  if (!decoded.ok()) return decoded.status();
  Packet& p = decoded.value();
  switch (TypeOf(p)) {
    case PacketType::kPublish: return HandlePublish(std::get<mqtt::Publish>(p), out);
    case PacketType::kPuback: return HandlePuback(std::get<Puback>(p));
    case PacketType::kSuback: return HandleSuback(std::get<Suback>(p));
    case PacketType::kPingresp:
      ping_outstanding_ = false;
      return Status::Ok();
    case PacketType::kDisconnect: {
      const auto& d = std::get<mqtt::Disconnect>(p);
      std::string m = std::string("broker disconnected: ") + ReasonName(d.reason_code) + " (" +
                      Hex8(d.reason_code) + ")";
      if (d.properties.reason_string) m += ": " + std::string(*d.properties.reason_string);
      Drop();
      return Status::Unavailable(m);
    }
    case PacketType::kUnsuback:
      return Status::ProtocolError("UNSUBACK for packet id " +
                                   std::to_string(std::get<Unsuback>(p).packet_id) +
                                   " that was never used for UNSUBSCRIBE");
    default:
      return Status::ProtocolError(std::string("the broker sent ") + PacketTypeName(TypeOf(p)) +
                                   ", which only a client may send");
  }
}

Status Session::HandleConnack(const Frame& frame, uint64_t now_ms) {
  if (state_ == State::kConnected) return Status::ProtocolError("second CONNACK on one connection");
  // A 3.1.1-only broker answers an MQTT 5 CONNECT with a 3.1.1 CONNACK whose
  // return code is 1 (unacceptable protocol version) and no property block.
  bool v311_refusal = protocol_ == kProtocol5 && frame.body.size() == 2 && frame.body[1] == 0x01;
  uint8_t code = 0;
  Connack c;
  if (v311_refusal) {
    code = reason::kUnsupportedProtocolVersion;
  } else {
    auto decoded = Decode(frame, protocol_);
    if (!decoded.ok()) return decoded.status();
    c = std::get<Connack>(decoded.value());
    code = c.reason_code;
  }
  if (code != 0) {
    Status why = ConnackRefusal(protocol_, code);
    bool unsupported = protocol_ == kProtocol5 && code == reason::kUnsupportedProtocolVersion;
    if (unsupported && !fell_back_) {
      protocol_ = kProtocol311;
      fell_back_ = true;
      why = why.Annotate("falling back to MQTT 3.1.1");
    }
    Drop();
    return why;
  }
  const Properties& p = c.properties;
  info_.protocol = protocol_;
  info_.session_present = c.session_present;
  info_.receive_maximum = p.receive_maximum.value_or(65535);
  info_.maximum_packet_size = p.maximum_packet_size.value_or(kMaxPacketSize);
  info_.topic_alias_maximum = options_.topic_aliases ? p.topic_alias_maximum.value_or(0) : 0;
  info_.keepalive_s = p.server_keepalive_s.value_or(options_.keepalive_s);
  info_.maximum_qos = p.maximum_qos.value_or(1);
  info_.retain_available = p.retain_available.value_or(1) != 0;
  info_.assigned_client_id = std::string(p.assigned_client_id.value_or(""));
  info_.window = std::min(options_.inflight, info_.receive_maximum);
  state_ = State::kConnected;
  ever_connected_ = true;
  last_received_ms_ = now_ms;
  listener_->OnConnected(info_);
  return Status::Ok();
}

Status Session::HandlePublish(const mqtt::Publish& p, std::string* out) {
  if (p.qos > 1) {
    return Status::ProtocolError("PUBLISH with QoS 2, but every subscription asked for at most 1");
  }
  if (p.properties.topic_alias) {
    // We advertise no Topic Alias Maximum, which means 0 [MQTT-3.3.2-9].
    return Status::ProtocolError("PUBLISH with topic alias " +
                                 std::to_string(*p.properties.topic_alias) +
                                 " although the client allows none");
  }
  if (!IsValidTopicName(p.topic)) return Status::ProtocolError("PUBLISH with an invalid topic");
  bool manual = p.qos == 1 && options_.manual_acks;
  IncomingMessage m;
  if (manual) {
    bool hand_up = true;
    Status st = TrackInbound(p, out, &m.ack_token, &hand_up);
    if (!st.ok() || !hand_up) return st;
  }
  m.topic = p.topic;
  m.payload = p.payload;
  m.qos = p.qos;
  m.retain = p.retain;
  m.dup = p.dup;
  m.properties = &p.properties;
  listener_->OnMessage(m);
  if (p.qos == 1 && !manual) {
    Puback a;
    a.packet_id = p.packet_id;
    Encode(a, protocol_, out);
  }
  return Status::Ok();
}

Status Session::TrackInbound(const mqtt::Publish& p, std::string* out, uint64_t* token,
                             bool* hand_up) {
  if (inbound_seq_.count(p.packet_id)) {
    // A broker may resend within a connection (3.1.1 allowed it); without
    // DUP the broker believes the first one acknowledged, and we do not.
    if (!p.dup) {
      return Status::ProtocolError("PUBLISH reuses packet id " + std::to_string(p.packet_id) +
                                   " without DUP before we sent its PUBACK");
    }
    ++duplicates_dropped_;
    *hand_up = false;
    return Status::Ok();
  }
  bool over = protocol_ >= kProtocol5 && options_.receive_maximum > 0 &&
              inbound_.size() >= options_.receive_maximum;
  if (over && !options_.strict_receive_maximum) ++receive_maximum_exceeded_;
  if (over && options_.strict_receive_maximum) {
    return Fail(Status::ProtocolError("the broker sent more than our Receive Maximum of " +
                                      std::to_string(options_.receive_maximum) +
                                      " unacknowledged QoS 1 messages"),
                reason::kReceiveMaximumExceeded, out);
  }
  inbound_seq_[p.packet_id] = inbound_base_ + inbound_.size();
  Inbound in;
  in.packet_id = p.packet_id;
  inbound_.push_back(in);
  *token = epoch_ << 16 | p.packet_id;
  return Status::Ok();
}

Status Session::AckIncoming(uint64_t ack_token, uint8_t reason_code, std::string* out) {
  if (ack_token == 0) return Status::InvalidArgument("ack token 0: a QoS 0 message takes no PUBACK");
  if (!connected() || ack_token >> 16 != epoch_) {
    ++stale_acks_;
    return Status::Ok();
  }
  uint16_t id = static_cast<uint16_t>(ack_token & 0xFFFF);
  auto it = inbound_seq_.find(id);
  if (it == inbound_seq_.end()) {
    return Status::InvalidArgument("ack for packet id " + std::to_string(id) +
                                   ", which is not awaiting a PUBACK");
  }
  Inbound& in = inbound_[it->second - inbound_base_];
  if (in.acked) {
    return Status::InvalidArgument("packet id " + std::to_string(id) + " acknowledged twice");
  }
  in.acked = true;
  in.reason_code = reason_code;
  ReleaseAcks(out);
  return Status::Ok();
}

void Session::ReleaseAcks(std::string* out) {
  while (!inbound_.empty() && inbound_.front().acked) {
    const Inbound& in = inbound_.front();
    Puback a;
    a.packet_id = in.packet_id;
    a.reason_code = in.reason_code;
    Encode(a, protocol_, out);
    inbound_seq_.erase(in.packet_id);
    inbound_.pop_front();
    ++inbound_base_;
  }
}

Status Session::HandlePuback(const Puback& a) {
  uint64_t token = OwnerOf(a.packet_id);
  if (token == 0 || token == kSubscribeOwner) {
    return Status::ProtocolError("PUBACK for packet id " + std::to_string(a.packet_id) +
                                 " that is not in flight");
  }
  auto it = inflight_.find(token);
  assert(it != inflight_.end() && "id_owner_ and inflight_ disagree");
  id_owner_.erase(a.packet_id);
  inflight_.erase(it);
  if (a.reason_code >= 0x80) {
    std::string m = std::string("broker refused the message: ") + ReasonName(a.reason_code) +
                    " (" + Hex8(a.reason_code) + ")";
    if (a.properties.reason_string) m += ": " + std::string(*a.properties.reason_string);
    Code code = a.reason_code == reason::kNotAuthorized ? Code::kPermissionDenied
                : a.reason_code == reason::kQuotaExceeded ? Code::kResourceExhausted
                                                          : Code::kInvalidArgument;
    listener_->OnPublishRejected(token, Status(code, m), a.reason_code);
  } else {
    listener_->OnPublishAcked(token, a.reason_code);
  }
  return Status::Ok();
}

Status Session::HandleSuback(const Suback& s) {
  auto it = subscribes_.find(s.packet_id);
  if (it == subscribes_.end()) {
    return Status::ProtocolError("SUBACK for packet id " + std::to_string(s.packet_id) +
                                 " that was never used for SUBSCRIBE");
  }
  if (s.reason_codes.size() != it->second) {
    return Status::ProtocolError("SUBACK with " + std::to_string(s.reason_codes.size()) +
                                 " reason codes for a SUBSCRIBE of " +
                                 std::to_string(it->second) + " filters");
  }
  id_owner_.erase(s.packet_id);
  subscribes_.erase(it);
  listener_->OnSubscribed(s.packet_id, s.reason_codes);
  return Status::Ok();
}

// ------------------------------------------------------------ timers

Status Session::Tick(uint64_t now_ms, std::string* out) {
  if (state_ == State::kConnecting) {
    if (now_ms - connect_started_ms_ >= options_.connect_timeout_ms) {
      // A silent broker is not evidence that it refuses MQTT 5 (a stopped
      // or overloaded one is silent too): no fallback here.
      Drop();
      return Status::Timeout("no CONNACK within " + std::to_string(options_.connect_timeout_ms) +
                             " ms");
    }
    return Status::Ok();
  }
  if (state_ != State::kConnected) return Status::Ok();
  if (!inflight_.empty()) {
    const Entry& oldest = inflight_.begin()->second;
    if (now_ms - oldest.sent_ms >= options_.ack_timeout_ms) {
      std::string m = "PUBACK for packet id " + std::to_string(oldest.packet_id) +
                      " overdue by " + std::to_string(now_ms - oldest.sent_ms) +
                      " ms: treating the link as dead";
      return Fail(Status::Timeout(m), reason::kUnspecifiedError, out);
    }
  }
  uint64_t ka_ms = static_cast<uint64_t>(info_.keepalive_s) * 1000;
  if (ka_ms == 0) return Status::Ok();
  if (now_ms - last_received_ms_ >= ka_ms + ka_ms / 2) {
    return Fail(Status::Timeout("nothing from the broker for " +
                                std::to_string(now_ms - last_received_ms_) +
                                " ms (1.5 x keepalive): treating the link as dead"),
                reason::kKeepAliveTimeout, out);
  }
  if (!ping_outstanding_ &&
      (now_ms - last_sent_ms_ >= ka_ms || now_ms - last_received_ms_ >= ka_ms)) {
    Encode(Pingreq{}, protocol_, out);
    ping_outstanding_ = true;
    last_sent_ms_ = now_ms;
  }
  return Status::Ok();
}

// ------------------------------------------------------------ sending

Result<uint64_t> Session::Publish(OutgoingMessage msg) {
  if (!IsValidTopicName(msg.topic)) {
    return Status::InvalidArgument("invalid topic name \"" + msg.topic + "\"");
  }
  if (msg.qos > 1) return Status::InvalidArgument("QoS 2 is not supported");
  if (!FitsString(msg.content_type) || !IsValidMqttUtf8(msg.content_type) ||
      !FitsString(msg.correlation_data) || !FitsString(msg.response_topic) ||
      (!msg.response_topic.empty() && !IsValidTopicName(msg.response_topic))) {
    return Status::InvalidArgument("invalid content type, response topic or correlation data");
  }
  for (const auto& [k, v] : msg.user_properties) {
    if (!FitsString(k) || !FitsString(v) || !IsValidMqttUtf8(k) || !IsValidMqttUtf8(v)) {
      return Status::InvalidArgument("user property is not valid UTF-8 or too long");
    }
  }
  if (msg.payload.size() > kMaxVarInt) return Status::InvalidArgument("payload over 256 MiB");
  Entry e;
  e.token = next_token_++;
  e.msg = std::move(msg);
  queue_.push_back(std::move(e));
  return queue_.back().token;
}

uint64_t Session::OwnerOf(uint16_t id) const {
  auto it = id_owner_.find(id);
  return it == id_owner_.end() ? 0 : it->second;
}

uint16_t Session::AllocPacketId() {
  for (int tries = 0; tries < 65535; ++tries) {
    uint16_t id = next_packet_id_;
    next_packet_id_ = next_packet_id_ == 65535 ? 1 : next_packet_id_ + 1;
    if (OwnerOf(id) == 0) return id;
  }
  return 0;
}

bool Session::EncodeEntry(Entry& e, std::string* out) {
  const OutgoingMessage& m = e.msg;
  mqtt::Publish p;
  p.topic = m.topic;
  p.payload = m.payload;
  p.qos = m.qos;
  p.retain = m.retain;
  p.dup = e.dup && m.qos > 0;
  p.packet_id = e.packet_id;
  uint16_t new_alias = 0;
  if (protocol_ >= kProtocol5) {
    Properties& pr = p.properties;
    pr.message_expiry_s = m.message_expiry_s;
    if (!m.content_type.empty()) pr.content_type = m.content_type;
    if (!m.response_topic.empty()) pr.response_topic = m.response_topic;
    if (!m.correlation_data.empty()) pr.correlation_data = m.correlation_data;
    pr.user_properties.reserve(m.user_properties.size());
    for (const auto& [k, v] : m.user_properties) pr.user_properties.push_back({k, v});
    if (info_.topic_alias_maximum > 0) {
      auto it = topic_aliases_.find(m.topic);
      if (it != topic_aliases_.end()) {
        // The broker maps the alias back to the topic it was first sent with.
        pr.topic_alias = it->second;
        p.topic = {};
      } else if (topic_aliases_.size() < info_.topic_alias_maximum) {
        new_alias = static_cast<uint16_t>(topic_aliases_.size() + 1);
        pr.topic_alias = new_alias;
      }
    }
  }
  size_t before = out->size();
  Encode(p, protocol_, out);
  size_t size = out->size() - before;
  if (size > info_.maximum_packet_size) {
    out->resize(before);
    return false;
  }
  if (new_alias) topic_aliases_.emplace(m.topic, new_alias);
  publish_bytes_sent_ += size;
  return true;
}

void Session::Pump(uint64_t now_ms, std::string* out) {
  if (state_ != State::kConnected) return;
  size_t before = out->size();
  while (!queue_.empty()) {
    Entry& e = queue_.front();
    if (e.msg.qos > 0 && inflight_.size() >= info_.window) break;
    Status refusal;
    if (e.msg.qos > info_.maximum_qos) {
      refusal = Status::InvalidArgument("the broker allows only QoS 0");
    } else if (e.msg.retain && !info_.retain_available) {
      refusal = Status::InvalidArgument("the broker does not support retained messages");
    }
    if (e.msg.qos > 0 && refusal.ok()) {
      if (e.packet_id == 0 || OwnerOf(e.packet_id) != 0) e.packet_id = AllocPacketId();
      if (e.packet_id == 0) break;  // cannot happen: the window is below 65535
    }
    if (refusal.ok() && !EncodeEntry(e, out)) {
      refusal = Status::ResourceExhausted(
          "message of " + std::to_string(e.msg.payload.size()) +
          " payload bytes exceeds the broker's maximum packet size of " +
          std::to_string(info_.maximum_packet_size));
    }
    Entry done = std::move(e);
    queue_.pop_front();
    if (!refusal.ok()) {
      listener_->OnPublishRejected(done.token, refusal, 0);
      continue;
    }
    if (done.msg.qos == 0) {
      listener_->OnPublishAcked(done.token, 0);
      continue;
    }
    done.sent_ms = now_ms;
    id_owner_[done.packet_id] = done.token;
    inflight_.emplace(done.token, std::move(done));
  }
  if (out->size() != before) last_sent_ms_ = now_ms;
}

Result<uint16_t> Session::Subscribe(const std::vector<std::pair<std::string, uint8_t>>& filters,
                                    std::string* out) {
  if (!connected()) return Status::Unavailable("not connected");
  if (filters.empty()) return Status::InvalidArgument("no topic filter");
  mqtt::Subscribe s;
  for (const auto& [filter, qos] : filters) {
    if (!IsValidTopicFilter(filter)) {
      return Status::InvalidArgument("invalid topic filter \"" + filter + "\"");
    }
    SubscribeTopic t;
    t.filter = filter;
    t.qos = std::min<uint8_t>(qos, 1);
    s.topics.push_back(t);
  }
  s.packet_id = AllocPacketId();
  if (s.packet_id == 0) return Status::ResourceExhausted("no free packet id");
  id_owner_[s.packet_id] = kSubscribeOwner;
  subscribes_[s.packet_id] = filters.size();
  Encode(s, protocol_, out);
  return s.packet_id;
}

}  // namespace edgespool::sync::mqtt
