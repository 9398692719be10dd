// Request parsing and validation, reply encoding/decoding: every field, every
// error code the parser can produce.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"

namespace edgespool::protocol {
namespace {

Request MustParse(const std::string& header) {
  Request r;
  RequestError e;
  EXPECT_TRUE(ParseRequest(header, &r, &e)) << header << ": " << e.message;
  return r;
}

RequestError MustFail(const std::string& header) {
  Request r;
  RequestError e;
  EXPECT_FALSE(ParseRequest(header, &r, &e)) << header;
  return e;
}

TEST(ProtocolRequest, FullPublish) {
  Request r = MustParse(
      R"({"op":"publish","req":7,"topic":"sensors/t1","ts":1732300000123,"id":"k1",)"
      R"("priority":"high","ttl_ms":3600000,"headers":{"a":"1","b":"2"},"ack":"delivered",)"
      R"("future_field":[1,2]})");
  EXPECT_EQ(r.op, Op::kPublish);
  EXPECT_EQ(r.req, 7);
  EXPECT_EQ(r.publish.topic, "sensors/t1");
  EXPECT_EQ(r.publish.ts_ms, 1732300000123);
  EXPECT_EQ(r.publish.id, "k1");
  EXPECT_EQ(r.publish.priority, Priority::kHigh);
  EXPECT_EQ(r.publish.ttl_ms, 3600000);
  ASSERT_EQ(r.publish.headers.size(), 2u);
  EXPECT_EQ(r.publish.headers[1].first, "b");
  EXPECT_EQ(r.publish.ack, AckMode::kDelivered);
}

TEST(ProtocolRequest, PublishDefaults) {
  Request r = MustParse(R"({"op":"publish","topic":"a"})");
  EXPECT_FALSE(r.req);
  EXPECT_FALSE(r.publish.ts_ms);
  EXPECT_EQ(r.publish.priority, Priority::kNormal);
  EXPECT_EQ(r.publish.ack, AckMode::kStored);
  EXPECT_TRUE(r.publish.id.empty());
}

TEST(ProtocolRequest, RoundTripsThroughEncoder) {
  Request in;
  in.op = Op::kPublish;
  in.req = 99;
  in.publish.topic = "x/\xc3\xa9t\xc3\xa9";
  in.publish.ts_ms = 5;
  in.publish.priority = Priority::kLow;
  in.publish.ttl_ms = 10;
  in.publish.headers = {{"k\"", "v\\\n"}};
  in.publish.id = "id";
  in.publish.ack = AckMode::kNone;
  Request out = MustParse(EncodeRequestHeader(in));
  EXPECT_EQ(out.req, 99);
  EXPECT_EQ(out.publish.topic, in.publish.topic);
  EXPECT_EQ(out.publish.ts_ms, 5);
  EXPECT_EQ(out.publish.priority, Priority::kLow);
  EXPECT_EQ(out.publish.headers, in.publish.headers);
  EXPECT_EQ(out.publish.ack, AckMode::kNone);

  Request q;
  q.op = Op::kQuery;
  q.query_id = "abc";
  EXPECT_EQ(MustParse(EncodeRequestHeader(q)).query_id, "abc");
}

TEST(ProtocolRequest, NotAnObjectIsBadFrame) {
  for (const std::string& h : std::vector<std::string>{"", "nope", "[1,2]", "42", "{\"op\":",
                                    std::string("{\"op\":\"ping\"}\0", 15)}) {
    EXPECT_EQ(MustFail(h).code, ErrorCode::kBadFrame) << h;
  }
}

TEST(ProtocolRequest, BadRequests) {
  const char* cases[] = {
      R"({"req":1})",
      R"({"op":"dance","req":1})",
      R"({"op":5})",
      R"({"op":"publish","topic":"a","req":-1})",
      R"({"op":"publish","topic":"a","req":1.5})",
      R"({"op":"publish","topic":"a","ts":-1})",
      R"({"op":"publish","topic":"a","ts":1.5})",
      R"({"op":"publish","topic":"a","ts":"now"})",
      R"({"op":"publish","topic":"a","ts":253402300800000})",
      R"({"op":"publish","topic":"a","priority":"urgent"})",
      R"({"op":"publish","topic":"a","ttl_ms":0})",
      R"({"op":"publish","topic":"a","deliver_at":-1})",
      R"({"op":"publish","topic":"a","deliver_at":"soon"})",
      R"({"op":"publish","topic":"a","deliver_at":253402300800000})",
      R"({"op":"publish","topic":"a","delay_ms":-5})",
      R"({"op":"publish","topic":"a","delay_ms":1.5})",
      R"({"op":"publish","topic":"a","deliver_at":1,"delay_ms":2})",
      R"({"op":"publish","topic":"a","headers":{"traceparent":"00-abc"}})",
      R"({"op":"publish","topic":"a","headers":[]})",
      R"({"op":"publish","topic":"a","headers":{"k":1}})",
      R"({"op":"publish","topic":"a","headers":{"":"v"}})",
      R"({"op":"publish","topic":"a","id":""})",
      R"({"op":"publish","topic":"a","id":7})",
      R"({"op":"publish","topic":"a","ack":"maybe"})",
      R"({"op":"publish","topic":"a","id":"x\u0000y"})",
      R"({"op":"query"})",
      R"({"op":"query","seq":1,"id":"x"})",
      R"({"op":"query","seq":0})",
  };
  for (const char* h : cases) {
    RequestError e = MustFail(h);
    EXPECT_EQ(e.code, ErrorCode::kBadRequest) << h << " -> " << ErrorCodeName(e.code);
    EXPECT_FALSE(e.message.empty());
  }
}

TEST(ProtocolRequest, ScheduledDeliveryFieldsRoundTrip) {
  Request r = MustParse(R"({"op":"publish","topic":"a","deliver_at":1732300005000})");
  EXPECT_EQ(r.publish.deliver_at_ms, 1732300005000);
  EXPECT_FALSE(r.publish.delay_ms);
  Request again = MustParse(EncodeRequestHeader(r));
  EXPECT_EQ(again.publish.deliver_at_ms, 1732300005000);
  r = MustParse(R"({"op":"publish","topic":"a","delay_ms":2000})");
  EXPECT_EQ(r.publish.delay_ms, 2000);
  EXPECT_EQ(MustParse(EncodeRequestHeader(r)).publish.delay_ms, 2000);
}

TEST(ProtocolRequest, TraceparentFollowsTheW3CFormat) {
  const char* good[] = {
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future",  // later version
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
  };
  for (const char* v : good) EXPECT_TRUE(ValidTraceparent(v)) << v;
  const char* bad[] = {
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",         // no flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",    // 00 is exactly 55
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // zero parent id
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      // uppercase
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // version ff
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",      // separators
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",      // not hex
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",     // no '-' after 55
  };
  for (const char* v : bad) EXPECT_FALSE(ValidTraceparent(v)) << v;
  // Checked under any spelling of the key; other keys are not checked.
  RequestError e = MustFail(R"({"op":"publish","topic":"a","headers":{"TraceParent":"x"}})");
  EXPECT_EQ(e.code, ErrorCode::kBadRequest);
  MustParse(R"({"op":"publish","topic":"a","headers":{"tracestate":"x"}})");
  Request r = MustParse(
      R"({"op":"publish","topic":"a","headers":{"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})");
  ASSERT_EQ(r.publish.headers.size(), 1u);
}

TEST(ProtocolRequest, ErrorEchoesReq) {
  EXPECT_EQ(MustFail(R"({"op":"publish","req":12,"topic":"a","ts":"x"})").req, 12);
}

TEST(ProtocolRequest, HeaderBounds) {
  std::string many = R"({"op":"publish","topic":"a","headers":{)";
  for (size_t i = 0; i <= kMaxHeaderEntries; ++i) {
    many += (i ? "," : "") + std::string("\"k") + std::to_string(i) + "\":\"v\"";
  }
  EXPECT_EQ(MustFail(many + "}}").code, ErrorCode::kBadRequest);
  std::string big = R"({"op":"publish","topic":"a","headers":{"k":")" +
                    std::string(kMaxHeadersBytes, 'v') + "\"}}";
  EXPECT_EQ(MustFail(big).code, ErrorCode::kBadRequest);
}

TEST(ProtocolRequest, BadTopics) {
  const std::string cases[] = {
      R"({"op":"publish"})",
      R"({"op":"publish","topic":""})",
      R"({"op":"publish","topic":7})",
      R"({"op":"publish","topic":"a/+/b"})",
      R"({"op":"publish","topic":"a/#"})",
      R"({"op":"publish","topic":"$SYS/x"})",
      "{\"op\":\"publish\",\"topic\":\"bad\xff\"}",
      "{\"op\":\"publish\",\"topic\":\"over\xc0\xaf\"}",
      "{\"op\":\"publish\",\"topic\":\"surrogate\xed\xa0\x80\"}",
      R"({"op":"publish","topic":")" + std::string(kMaxTopicBytes + 1, 't') + "\"}",
  };
  for (const auto& h : cases) {
    EXPECT_EQ(MustFail(h).code, ErrorCode::kBadTopic) << h.substr(0, 60);
  }
  // The longest legal topic and multi-byte UTF-8 are fine.
  MustParse(R"({"op":"publish","topic":")" + std::string(kMaxTopicBytes, 't') + "\"}");
  MustParse("{\"op\":\"publish\",\"topic\":\"\xe2\x82\xac/\xf0\x9f\x98\x80\"}");
}

TEST(ProtocolRequest, QueryStatusPing) {
  EXPECT_EQ(MustParse(R"({"op":"query","req":2,"seq":42})").query_seq, 42u);
  EXPECT_EQ(MustParse(R"({"op":"query","id":"abc"})").query_id, "abc");
  EXPECT_EQ(MustParse(R"({"op":"status"})").op, Op::kStatus);
  EXPECT_EQ(MustParse(R"({"op":"ping","req":3})").op, Op::kPing);
  Request reload = MustParse(R"({"op":"reload","req":4})");
  EXPECT_EQ(reload.op, Op::kReload);
  EXPECT_EQ(MustParse(EncodeRequestHeader(reload)).op, Op::kReload);  // and back
}

TEST(ProtocolReply, EncodeParseRoundTrip) {
  Reply r;
  r.req = 1;
  r.ok = true;
  r.status = "stored";
  r.seq = 42;
  r.uplink = "connected";
  EXPECT_EQ(EncodeReplyHeader(r),
            R"({"req":1,"ok":true,"status":"stored","seq":42,"uplink":"connected"})");
  Reply e = ErrorReply(5, ErrorCode::kBusy, "slow down");
  e.retry_after_ms = 100;
  std::string h = EncodeReplyHeader(e);
  EXPECT_EQ(h, R"({"req":5,"ok":false,"code":"busy","message":"slow down","retry_after_ms":100})");
  Reply back;
  std::string err;
  ASSERT_TRUE(ParseReply(h, &back, &err));
  EXPECT_EQ(back.req, 5);
  EXPECT_FALSE(back.ok);
  EXPECT_EQ(back.code, ErrorCode::kBusy);
  EXPECT_EQ(back.retry_after_ms, 100);
  EXPECT_FALSE(ParseReply("{\"req\":1}", &back, &err));
  EXPECT_FALSE(ParseReply("garbage", &back, &err));
}

TEST(ProtocolReply, EveryErrorCodeHasAName) {
  for (int i = 0; i <= static_cast<int>(ErrorCode::kInternal); ++i) {
    ErrorCode c = static_cast<ErrorCode>(i), back;
    ASSERT_TRUE(ParseErrorCode(ErrorCodeName(c), &back));
    EXPECT_EQ(back, c);
  }
}

TEST(ProtocolUtf8, Validation) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));   // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));      // overlong
  EXPECT_FALSE(IsValidUtf8("\xc3"));              // truncated
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

}  // namespace
}  // namespace edgespool::protocol
