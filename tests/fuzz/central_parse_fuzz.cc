// libFuzzer: what `edgespool consume` parses from the broker, and the
// ordering buffer fed by it. The first byte picks the input:
//   0: a status document (JSON) - must parse or fail, never crash;
//   1: an MQTT 5 property block, as a PUBLISH carries it, then the message
//      built from its user properties (es-ts, es-seq, es-node, es-id);
//   2: a script of events for OrderingBuffer (status, message, time), which
//      must never release a (node, seq) twice, nor a non-late message out of
//      order on its topic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "central/ordering_buffer.h"
#include "central/uplink_parse.h"
#include "sync/mqtt/properties.h"

namespace {

using edgespool::central::Message;
using edgespool::central::OrderingBuffer;

void Check(const std::vector<Message>& out, std::set<std::pair<std::string, uint64_t>>* seen,
           std::map<std::string, int64_t>* last) {
  for (const Message& m : out) {
    if (m.node.empty()) continue;
    if (!seen->insert({m.node, m.seq}).second) abort();
    if (m.late) continue;
    auto it = last->find(m.topic);
    if (it != last->end() && m.ts_ms < it->second) abort();
    (*last)[m.topic] = m.ts_ms;
  }
}

void RunScript(std::string_view s) {
  edgespool::central::OrderingOptions o;
  o.max_wait_ms = 50;
  o.max_buffered = 16;
  // Seqs stay below 64 here: nothing is forgotten (a forgotten seq may pass
  // twice by design, which this check would take for a bug).
  o.dedupe_ranges = 1024;
  OrderingBuffer b(o);
  std::vector<Message> out;
  std::set<std::pair<std::string, uint64_t>> seen;
  std::map<std::string, int64_t> last;
  int64_t now = 0;
  for (size_t i = 0; i + 3 <= s.size(); i += 3) {
    uint8_t op = static_cast<uint8_t>(s[i]) % 4, a = static_cast<uint8_t>(s[i + 1]),
            v = static_cast<uint8_t>(s[i + 2]);
    std::string node(1, static_cast<char>('a' + a % 3));
    switch (op) {
      case 0:
        // a & 32: an idle node's follow (lag, for, and with a & 64 an age).
        b.OnStatus(node, (a & 8) == 0, (a & 16) ? -1 : v, now,
                   (a & 32)
                       ? edgespool::central::WatermarkFollow{v % 8, 1 + v % 64, (a & 64) ? v : 0}
                       : edgespool::central::WatermarkFollow{});
        break;
      case 1: {
        Message m;
        m.node = node;
        m.seq = 1 + (a >> 2);
        m.ts_ms = v;
        m.topic = std::string(1, static_cast<char>('x' + (a & 1)));
        b.Add(std::move(m), now, &out);
        break;
      }
      case 2:
        now += v;
        b.Advance(now, &out);
        break;
      case 3:
        b.DropBuffered();
        break;
    }
    Check(out, &seen, &last);
    out.clear();
  }
  b.Flush(&out);
  Check(out, &seen, &last);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 3) {
    case 0:
      (void)edgespool::central::ParseNodeStatus(rest);
      break;
    case 1: {
      edgespool::sync::mqtt::Properties props;
      if (!edgespool::sync::mqtt::DecodeProperties(&rest, edgespool::sync::mqtt::kCtxPublish,
                                                   &props)
               .ok()) {
        return 0;
      }
      auto m = edgespool::central::MessageFromPublish("t", rest, &props);
      if (m.ok() && !m->node.empty() && m->seq == 0) abort();
      break;
    }
    case 2:
      RunScript(rest);
      break;
  }
  return 0;
}
