// The flat-header fast path (agent/protocol/flat_json.h) against the cJSON
// path it stands in for: for every header, ParseRequest must give exactly
// what ParseRequestSlow gives, and ParseReply what ParseReplySlow gives
// (results, error codes and messages). Crafted edge cases first, then seeded
// random mutations of real headers.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "agent/protocol/flat_json.h"
#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"

namespace edgespool::protocol {
namespace {

std::string Show(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

void ExpectSameRequest(const std::string& header) {
  Request fast, slow;
  RequestError fe, se;
  bool f = ParseRequest(header, &fast, &fe);
  bool s = ParseRequestSlow(header, &slow, &se);
  ASSERT_EQ(f, s) << Show(header) << " fast: " << fe.message << " slow: " << se.message;
  if (!f) {
    EXPECT_EQ(fe.code, se.code) << Show(header);
    EXPECT_EQ(fe.message, se.message) << Show(header);
    EXPECT_EQ(fe.req, se.req) << Show(header);
    EXPECT_EQ(fe.no_reply, se.no_reply) << Show(header);
    return;
  }
  EXPECT_EQ(fast.op, slow.op) << Show(header);
  EXPECT_EQ(fast.req, slow.req) << Show(header);
  EXPECT_EQ(fast.publish.topic, slow.publish.topic) << Show(header);
  EXPECT_EQ(fast.publish.ts_ms, slow.publish.ts_ms) << Show(header);
  EXPECT_EQ(fast.publish.priority, slow.publish.priority) << Show(header);
  EXPECT_EQ(fast.publish.ttl_ms, slow.publish.ttl_ms) << Show(header);
  EXPECT_EQ(fast.publish.headers, slow.publish.headers) << Show(header);
  EXPECT_EQ(fast.publish.id, slow.publish.id) << Show(header);
  EXPECT_EQ(fast.publish.ack, slow.publish.ack) << Show(header);
  EXPECT_EQ(fast.query_seq, slow.query_seq) << Show(header);
  EXPECT_EQ(fast.query_id, slow.query_id) << Show(header);
}

void ExpectSameReply(const std::string& header) {
  Reply fast, slow;
  std::string fe, se;
  bool f = ParseReply(header, &fast, &fe);
  bool s = ParseReplySlow(header, &slow, &se);
  ASSERT_EQ(f, s) << Show(header);
  if (!f) {
    EXPECT_EQ(fe, se) << Show(header);
    return;
  }
  EXPECT_EQ(EncodeReplyHeader(fast), EncodeReplyHeader(slow)) << Show(header);
}

const std::vector<std::string>& Seeds() {
  static const std::vector<std::string> seeds = {
      R"({"op":"publish","req":1,"topic":"sensors/t1","id":"a1b2c3d4e5f6a7b8-17"})",
      R"({"op":"publish","req":2,"topic":"s/t","ts":1732300000123,"priority":"low",)"
      R"("ttl_ms":3600000,"id":"k","ack":"delivered"})",
      R"({"op":"publish","req":3,"topic":"a","ack":"none"})",
      R"({"op":"query","req":4,"seq":42})",
      R"({"op":"query","req":5,"id":"x"})",
      R"({"op":"status","req":6})",
      R"({"op":"ping"})",
      R"({"req":1,"ok":true,"status":"stored","seq":42,"uplink":"connected"})",
      R"({"req":1,"ok":false,"code":"busy","message":"m","retry_after_ms":100})",
      R"({"req":2,"ok":true,"seq":42,"state":"sent","ts":1,"topic":"t","attempts":0,)"
      R"("sent_at":5})",
  };
  return seeds;
}

TEST(ProtocolFlatJson, SdkHeadersTakeTheFastPath) {
  Request r;
  r.op = Op::kPublish;
  r.req = 12;
  r.publish.topic = "sensors/t1";
  r.publish.id = "0123abcd-99";
  FlatObject flat;
  EXPECT_TRUE(flat.Scan(EncodeRequestHeader(r)));
  Reply reply;
  reply.req = 12;
  reply.ok = true;
  reply.status = "stored";
  reply.seq = 42;
  reply.uplink = "connected";
  std::string reply_header = EncodeReplyHeader(reply);  // Find() reads into it
  EXPECT_TRUE(flat.Scan(reply_header));
  auto seq = flat.Find("seq");
  ASSERT_TRUE(seq.has_value());
  EXPECT_EQ(seq->number, 42);
  // Shapes it leaves to cJSON.
  for (const char* h : {R"({"a":"x\"y"})", R"({"a":1.5})", R"({"a":1e3})", R"({"a":{}})",
                        R"({"a":[1]})", R"({"a":1} x)", R"({"a":1234567890123456})", "",
                        R"({"a":"\u0000"})", "{\"a\":\"\x01\"}"}) {
    EXPECT_FALSE(flat.Scan(h)) << h;
  }
}

TEST(ProtocolFlatJson, CraftedCasesMatchCjson) {
  std::vector<std::string> cases = Seeds();
  std::vector<std::string> more = {
      "", "{", "}", "{}", " { } ", "[]", "null", "{\"op\":\"ping\"}\n", "\t{\"op\" : \"ping\" }",
      R"({"op":"ping","op":"publish"})",                   // first member wins, as cJSON
      R"({"op":"publish","topic":"a","topic":"$b"})",
      R"({"op":"publish","req":-0,"topic":"a"})",
      R"({"op":"publish","req":-1,"topic":"a"})",
      R"({"op":"publish","req":007,"topic":"a"})",
      R"({"op":"publish","req":999999999999999,"topic":"a"})",
      R"({"op":"publish","req":9999999999999999,"topic":"a"})",
      R"({"op":"publish","req":1,"topic":"a","ts":-5})",
      R"({"op":"publish","req":1,"topic":"a","ttl_ms":0})",
      R"({"op":"publish","req":1,"topic":"a","priority":1})",
      R"({"op":"publish","req":1,"topic":"a","ack":"later"})",
      R"({"op":"publish","req":1,"topic":"a","ack":"none","ts":"x"})",
      R"({"op":"publish","req":1,"topic":"a+b"})",
      R"({"op":"publish","req":1,"topic":""})",
      R"({"op":"publish","req":1,"topic":"a","id":""})",
      R"({"op":"publish","req":1,"topic":"a","id":null})",
      R"({"op":"publish","req":true,"topic":"a"})",
      R"({"op":"publish","req":1,"topic":"a","headers":{"k":"v"}})",
      R"({"op":"query","req":1,"seq":0})",
      R"({"op":"query","req":1})",
      R"({"op":"query","req":1,"seq":1,"id":"x"})",
      R"({"op":"nope"})",
      R"({"op":5})",
      R"({"op":"ping",})",
      R"({"op":"ping" "req":1})",
      R"({"op":"ping","req":1}{})",
      R"({"op":"ping","req":tru})",
      R"({"op":"ping","req":truex})",
      R"({"op":"ping","req":1-2})",
      R"({"op":"ping","req":-})",
      std::string("{\"op\":\"ping\"}\0", 14),
      std::string("{\"op\":\"pi\0ng\"}", 14),
      "{\"op\":\"publish\",\"topic\":\"\xc3\x28\"}",
      "{\"op\":\"publish\",\"topic\":\"caf\xc3\xa9\"}",
      "\xef\xbb\xbf{\"op\":\"ping\"}",
      R"({"ok":1})", R"({"ok":null})", R"({"ok":true,"seq":-3,"code":"weird"})",
  };
  cases.insert(cases.end(), more.begin(), more.end());
  for (const std::string& h : cases) {
    ExpectSameRequest(h);
    ExpectSameReply(h);
  }
}

TEST(ProtocolFlatJson, RandomMutationsMatchCjson) {
  std::mt19937 rng(20261122);
  const std::string alphabet = "{}[]\":,\\ \t\n0123456789-+.eEtrufalsn\x01\x7f\xc3\xa9" "abcopq";
  const auto& seeds = Seeds();
  for (int i = 0; i < 20000; ++i) {
    std::string h = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits; ++k) {
      size_t pos = h.empty() ? 0 : rng() % (h.size() + 1);
      char c = alphabet[rng() % alphabet.size()];
      switch (rng() % 3) {
        case 0: h.insert(h.begin() + static_cast<long>(pos), c); break;
        case 1: if (pos < h.size()) h.erase(pos, 1); break;
        default: if (pos < h.size()) h[pos] = c; break;
      }
    }
    ExpectSameRequest(h);
    ExpectSameReply(h);
    if (::testing::Test::HasFailure()) break;
  }
}

}  // namespace
}  // namespace edgespool::protocol
