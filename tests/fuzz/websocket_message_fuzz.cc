// libFuzzer: the WebSocket session messages (agent/websocket/session_message.h)
// and a session's output queue (agent/websocket/session.h).
//  - ParseClientMessage accepts or refuses any bytes without crashing; what it
//    accepts keeps the header's limits (filters valid and at most 64, window
//    1..10000, seqs below 2^53);
//  - the messages we render around arbitrary bytes (a payload, headers) are
//    JSON that cJSON reads back, and the payload comes back byte for byte
//    (as text, or through base64);
//  - a session fed a random mix of uplink, status and control frames and
//    pops stays within its bounds and counts every uplink message as
//    delivered or dropped;
//  - a resumable uplink cursor (agent/websocket/uplink_cursor.h) driven by a
//    model journal (appends whose hooks run late, rows deleted, short reads,
//    acks) never has more than its window in flight, delivers in strictly
//    increasing seq order only matching rows, and in the end has delivered
//    every matching row still in the journal: no gap at the live seam.
#include <cjson/cJSON.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "agent/protocol/request.h"
#include "agent/websocket/session.h"
#include "agent/websocket/session_message.h"
#include "agent/websocket/uplink_cursor.h"

namespace {

namespace ws = edgespool::agent::websocket;

void Check(bool ok) {
  if (!ok) std::abort();
}

std::string FromBase64(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = val(c);
    Check(v >= 0);
    acc = acc << 6 | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>(acc >> bits & 0xff));
    }
  }
  return out;
}

void CheckParse(std::string_view text) {
  ws::ClientMessage m;
  std::string error;
  ws::ParseOutcome o = ws::ParseClientMessage(text, &m, &error);
  if (o != ws::ParseOutcome::kOk) {
    Check(!error.empty());
    return;
  }
  Check(m.filters.size() <= ws::kMaxFilters && m.uplink.size() <= ws::kMaxFilters);
  for (const auto& f : m.filters) Check(edgespool::protocol::ValidateFilter(f).ok());
  for (const auto& f : m.uplink) Check(edgespool::protocol::ValidateFilter(f).ok());
  Check(m.window <= ws::kMaxWindow);
  Check(m.seq < (uint64_t{1} << 53) && m.from_seq < (uint64_t{1} << 53));
  if (m.type == ws::ClientType::kSubscribe) {
    Check(!m.filters.empty() || !m.uplink.empty() || m.status);
    Check(edgespool::protocol::ValidateSessionName(m.session).ok());
  }
}

void CheckRender(std::string_view data) {
  size_t cut = data.size() / 2;
  edgespool::store::StoredInbound row;
  row.seq = data.size();
  row.message.topic = "down/fuzz";
  row.message.broker_topic = "edgespool/n/down/fuzz";
  row.message.headers = {{"k", std::string(data.substr(0, cut))}};
  row.message.payload = std::string(data.substr(cut));
  if (!edgespool::protocol::IsValidUtf8(row.message.headers[0].second)) {
    row.message.headers.clear();  // header values are UTF-8 (MQTT 5 user properties)
  }
  std::string out;
  ws::AppendDownlinkMessage(&out, "s", row);
  cJSON* j = cJSON_ParseWithLength(out.data(), out.size());
  Check(j != nullptr);
  const cJSON* text = cJSON_GetObjectItemCaseSensitive(j, "payload");
  const cJSON* b64 = cJSON_GetObjectItemCaseSensitive(j, "payload_b64");
  Check((text != nullptr) != (b64 != nullptr));
  if (text) {
    // cJSON stops a string at NUL; UTF-8 payloads with NUL compare up to it.
    Check(row.message.payload.compare(0, std::string::npos, text->valuestring) == 0 ||
          row.message.payload.find('\0') != std::string::npos);
  } else {
    Check(FromBase64(b64->valuestring) == row.message.payload);
  }
  cJSON_Delete(j);
}

void CheckSession(std::string_view data) {
  ws::Session s(1, ws::SessionLimits{4, 256});
  auto small = std::make_shared<const std::string>(40, 'u');
  auto big = std::make_shared<const std::string>(200, 'U');
  auto status = std::make_shared<const std::string>("{}");
  uint64_t offered = 0;
  for (unsigned char c : data) {
    switch (c % 5) {
      case 0:
        s.QueueUplink(small);
        ++offered;
        break;
      case 1:
        s.QueueUplink(big);
        ++offered;
        break;
      case 2:
        s.QueueStatus(status);
        break;
      case 3:
        s.QueueControl("{\"type\":\"error\"}");
        break;
      case 4:
        if (s.HasOutput()) s.PopFront();
        break;
    }
    Check(s.uplink_delivered + s.uplink_dropped == offered);
    // 4 uplink (<= 256 B) + their "dropped" notes + 1 status + 64 control.
    Check(s.queued_bytes() <= 256 + 4 * 96 + 2 + ws::Session::kMaxControlFrames * 16);
  }
  while (s.HasOutput()) s.PopFront();
  Check(s.queued_bytes() == 0);
}

void CheckCursor(std::string_view data) {
  constexpr uint32_t kWindow = 3;
  ws::UplinkCursor c("f", {"m/#"}, kWindow, 0);
  std::map<uint64_t, bool> rows;    // the journal: seq -> matches
  std::map<uint64_t, bool> topics;  // every seq ever stored -> matches (the hook's)
  std::deque<uint64_t> hooks;       // committed, hook not run yet
  uint64_t head = 0, tap_head = 0, last_delivered = 0;
  std::map<uint64_t, bool> delivered;
  auto emit = [&](uint64_t, const edgespool::store::StoredMessage& row) {
    Check(row.seq > last_delivered);
    Check(row.message.topic == "m/x");
    last_delivered = row.seq;
    delivered[row.seq] = true;
  };
  auto run_hook = [&] {
    uint64_t seq = hooks.front();
    hooks.pop_front();
    tap_head = std::max(tap_head, seq);
    bool match = topics[seq];
    if (!match) return c.Pass(seq);
    if (c.OfferLive(seq)) {
      Check(seq > last_delivered);
      last_delivered = seq;
      delivered[seq] = true;
    }
  };
  // A read runs on the store thread: its rows and head are taken when it is
  // issued, its callback comes later, after hooks that may have run between.
  std::optional<edgespool::store::StoredRead> in_flight_read;
  auto issue = [&](size_t max_rows) {
    if (!c.WantsRead()) return;
    c.set_reading(true);
    edgespool::store::StoredRead r;
    r.head_seq = head;
    r.complete = true;
    for (auto it = rows.upper_bound(c.read_after()); it != rows.end(); ++it) {
      if (r.rows.size() == max_rows) {
        r.complete = false;
        break;
      }
      edgespool::store::StoredMessage m;
      m.seq = it->first;
      m.message.topic = it->second ? "m/x" : "o/x";
      r.rows.push_back(m);
    }
    in_flight_read = std::move(r);
  };
  auto complete = [&] {
    if (!in_flight_read) return;
    c.ApplyRead(*in_flight_read, tap_head, emit);
    in_flight_read.reset();
  };
  auto read = [&](size_t max_rows) {
    issue(max_rows);
    complete();
  };
  auto ack_oldest = [&] {
    for (auto& [seq, d] : delivered) {
      if (d && c.Ack(seq, false).ok()) return;
    }
  };
  for (unsigned char b : data.substr(0, 512)) {
    switch (b % 8) {
      case 0:  // an append, its hook at once
      case 1:  // an append whose hook runs later
        ++head;
        rows[head] = topics[head] = (b >> 3) & 1;
        hooks.push_back(head);
        if (b % 8 == 0) {
          while (!hooks.empty()) run_hook();
        }
        break;
      case 2:
        if (!hooks.empty()) run_hook();
        break;
      case 3:  // retention deletes a row
        if (!rows.empty()) rows.erase(std::next(rows.begin(), (b >> 3) % rows.size()));
        break;
      case 4:
        read(1 + (b >> 3) % 4);
        break;
      case 5:
        ack_oldest();
        break;
      case 6:
        issue(1 + (b >> 3) % 4);
        break;
      case 7:
        complete();
        break;
    }
    Check(c.in_flight() <= kWindow);
  }
  // Drain: every hook runs, everything is acked and read.
  complete();
  while (!hooks.empty()) run_hook();
  for (int i = 0; i < 100000 && (c.in_flight() > 0 || c.WantsRead()); ++i) {
    if (c.in_flight() > 0) {
      Check(c.Ack(last_delivered, true).ok());
    }
    read(4);
  }
  Check(c.in_flight() == 0 && c.mode() == ws::UplinkCursor::Mode::kLive);
  for (const auto& [seq, match] : rows) {
    if (match) Check(delivered.count(seq) == 1);
  }
  Check(c.position() == head);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  CheckParse(in);
  CheckRender(in);
  CheckSession(in);
  CheckCursor(in);
  return 0;
}
