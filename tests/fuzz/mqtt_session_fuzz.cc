// libFuzzer target: the session fed arbitrary broker bytes after CONNECT.
// Byte 0: protocol level, chunking and whether a valid CONNACK goes first
// (so the fuzzer reaches the connected state without having to guess one);
// the client keeps publishing and ticking between chunks. Invariants: no
// crash, every token is reported at most once, in-flight never exceeds the
// window, and after an error the session is disconnected. With odd-sized
// input the session defers PUBACKs (manual acks, Receive Maximum 4): every
// token it hands up is accepted once by AckIncoming (acked newest first, so
// PUBACKs are held and released), and never more than 4 stay unacked.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "sync/mqtt/session.h"

using namespace edgespool;
using namespace edgespool::sync::mqtt;

namespace {

struct Listener : SessionListener {
  void OnConnected(const ConnectInfo& info) override {
    if (info.window == 0) abort();
  }
  void OnPublishAcked(uint64_t token, uint8_t) override { Done(token); }
  void OnPublishRejected(uint64_t token, const Status& why, uint8_t) override {
    if (why.ok()) abort();
    Done(token);
  }
  void OnMessage(const IncomingMessage& m) override {
    if (m.topic.empty() || m.qos > 1) abort();
    if (m.ack_token != 0) to_ack.push_back(m.ack_token);
  }
  void Done(uint64_t token) {
    if (!done.insert(token).second) abort();  // reported twice
  }
  std::set<uint64_t> done;
  std::vector<uint64_t> to_ack;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  SessionOptions o;
  o.protocol = (mode & 1) ? kProtocol5 : kProtocol311;
  o.client_id = "fuzz";
  o.keepalive_s = 5;
  o.inflight = 4;
  o.ack_timeout_ms = 3000;
  o.max_incoming_packet_bytes = 4096;
  o.manual_acks = (size & 1) != 0;
  o.receive_maximum = o.manual_acks ? 4 : 0;
  Listener listener;
  Session session(o, &listener);
  std::string out;
  uint64_t now = 1000;
  session.StartConnect(now, &out);
  if (mode & 2) {
    std::string connack;
    Connack c;
    if (o.protocol == kProtocol5) {
      c.properties.receive_maximum = 3;
      c.properties.topic_alias_maximum = 2;
      c.properties.maximum_packet_size = 200;
    }
    Encode(c, o.protocol, &connack);
    if (!session.OnBytes(connack, now, &out).ok()) abort();
  }
  size_t chunk = 1 + ((mode >> 2) & 0x3F);
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);
  int n = 0;
  for (size_t pos = 0; pos < stream.size(); pos += chunk) {
    OutgoingMessage m;
    m.topic = (n % 3 == 0) ? "a/b" : "c";
    m.payload = std::string(static_cast<size_t>(n * 37 % 300), 'p');
    m.qos = n % 4 == 0 ? 0 : 1;
    (void)session.Publish(std::move(m));
    ++n;
    session.Pump(now, &out);
    Status st = session.OnBytes(stream.substr(pos, chunk), now, &out);
    if (!st.ok()) {
      if (session.connected()) abort();
      break;
    }
    if (session.inflight_count() > session.window()) abort();
    if (session.protocol() == kProtocol5 && session.inbound_unacked() > o.receive_maximum) abort();
    if (n % 2 == 0) {
      for (auto it = listener.to_ack.rbegin(); it != listener.to_ack.rend(); ++it) {
        if (!session.AckIncoming(*it, 0, &out).ok()) abort();
      }
      listener.to_ack.clear();
    }
    now += 700;
    if (!session.Tick(now, &out).ok() && session.connected()) abort();
    if (out.size() > (1u << 20)) out.clear();
  }
  session.OnConnectionLost(Status::IoError("fuzz: end of input"));
  if (session.connected()) abort();
  return 0;
}
