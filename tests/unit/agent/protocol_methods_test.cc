// The request/response ops of the producer protocol (request, respond,
// answer) and the pushed call frame: what parses, what is refused and why,
// and that the client's encoding parses back to itself.
#include <gtest/gtest.h>

#include <string>

#include "agent/protocol/call.h"
#include "agent/protocol/frame.h"
#include "agent/protocol/request.h"

namespace edgespool::protocol {
namespace {

Request Parse(const std::string& header) {
  Request r;
  RequestError e;
  EXPECT_TRUE(ParseRequest(header, &r, &e)) << header << ": " << e.message;
  return r;
}

RequestError Refuse(const std::string& header) {
  Request r;
  RequestError e;
  EXPECT_FALSE(ParseRequest(header, &r, &e)) << header;
  EXPECT_FALSE(e.message.empty());
  return e;
}

TEST(ProtocolMethods, Request) {
  Request r = Parse(R"({"op":"request","req":3,"topic":"svc/t","timeout_ms":250,"ttl_ms":9})");
  EXPECT_EQ(r.op, Op::kRequest);
  EXPECT_EQ(r.request.topic, "svc/t");
  EXPECT_EQ(r.request.timeout_ms, 250);
  EXPECT_EQ(r.request.ttl_ms, 9);
  r = Parse(R"({"op":"request","topic":"svc/t","headers":{"a":"b"}})");
  EXPECT_FALSE(r.request.timeout_ms.has_value());
  ASSERT_EQ(r.request.headers.size(), 1u);
  EXPECT_EQ(Refuse(R"({"op":"request","topic":"svc/#"})").code, ErrorCode::kBadTopic);
  EXPECT_EQ(Refuse(R"({"op":"request"})").code, ErrorCode::kBadTopic);
  EXPECT_EQ(Refuse(R"({"op":"request","topic":"a","timeout_ms":0})").code, ErrorCode::kBadRequest);
  EXPECT_EQ(Refuse(R"({"op":"request","topic":"a","timeout_ms":600001})").code,
            ErrorCode::kBadRequest);
  EXPECT_EQ(Refuse(R"({"op":"request","topic":"a","ttl_ms":"5s"})").code, ErrorCode::kBadRequest);
}

TEST(ProtocolMethods, RespondAndAnswer) {
  Request r = Parse(R"({"op":"respond","req":1,"methods":["reboot","cfg/get"],"stop":true})");
  EXPECT_EQ(r.op, Op::kRespond);
  EXPECT_EQ(r.respond.methods, (std::vector<std::string>{"reboot", "cfg/get"}));
  EXPECT_TRUE(r.respond.stop);
  Refuse(R"({"op":"respond","methods":[]})");
  Refuse(R"({"op":"respond","methods":"reboot"})");
  Refuse(R"({"op":"respond","methods":["a/+"]})");
  Refuse(R"({"op":"respond","methods":["$sys"]})");
  Refuse(R"({"op":"respond","methods":[")" + std::string(257, 'm') + R"("]})");

  r = Parse(R"({"op":"answer","req":2,"call":42,"error":"bad_args","message":"why"})");
  EXPECT_EQ(r.answer.call, 42u);
  EXPECT_EQ(r.answer.error, "bad_args");
  EXPECT_EQ(r.answer.message, "why");
  Refuse(R"({"op":"answer"})");
  Refuse(R"({"op":"answer","call":0})");
  Refuse(R"({"op":"answer","call":1,"error":"Bad Code"})");
  Refuse(R"({"op":"answer","call":1,"message":")" + std::string(1025, 'x') + R"("})");
}

TEST(ProtocolMethods, EncodingRoundTrips) {
  Request r;
  r.op = Op::kRequest;
  r.req = 9;
  r.request.topic = "svc/x";
  r.request.timeout_ms = 100;
  r.request.headers = {{"k", "v"}};
  Request back = Parse(EncodeRequestHeader(r));
  EXPECT_EQ(back.request.topic, "svc/x");
  EXPECT_EQ(back.request.timeout_ms, 100);
  EXPECT_EQ(back.request.headers, r.request.headers);
  r = Request{};
  r.op = Op::kRespond;
  r.respond.methods = {"a", "b/c"};
  EXPECT_EQ(Parse(EncodeRequestHeader(r)).respond.methods, r.respond.methods);
  r = Request{};
  r.op = Op::kAnswer;
  r.answer.call = 5;
  r.answer.error = "handler_error";
  back = Parse(EncodeRequestHeader(r));
  EXPECT_EQ(back.answer.call, 5u);
  EXPECT_EQ(back.answer.error, "handler_error");
}

TEST(ProtocolMethods, CallFrame) {
  MethodCall c;
  c.call = 7;
  c.method = "reboot";
  c.timeout_ms = 5000;
  c.headers = {{"k", "v"}};
  std::string frame;
  AppendCallFrame(&frame, c, "payload");
  FrameDecoder d(1024, 1024);
  bool seen = false;
  ASSERT_TRUE(d.Feed(frame.data(), frame.size(), [&](const Frame& f) {
                 EXPECT_TRUE(IsCallFrame(f.header));
                 MethodCall back;
                 std::string error;
                 EXPECT_TRUE(ParseCall(f.header, &back, &error)) << error;
                 EXPECT_EQ(back.call, 7u);
                 EXPECT_EQ(back.method, "reboot");
                 EXPECT_EQ(back.timeout_ms, 5000);
                 EXPECT_EQ(back.headers, c.headers);
                 EXPECT_EQ(f.body, "payload");
                 seen = true;
                 return true;
               }).ok());
  EXPECT_TRUE(seen);
  EXPECT_FALSE(IsCallFrame(R"({"req":1,"ok":true})"));
  MethodCall out;
  std::string error;
  EXPECT_FALSE(ParseCall(R"({"op":"call","call":1,"method":"m"})", &out, &error));
  EXPECT_FALSE(ParseCall(R"({"op":"call","call":0,"method":"m","timeout_ms":1})", &out, &error));
  EXPECT_FALSE(ParseCall("not json", &out, &error));
}

TEST(ProtocolMethods, ErrorCodesHaveNames) {
  for (ErrorCode c : {ErrorCode::kUnavailable, ErrorCode::kTimeout, ErrorCode::kNoHandler,
                      ErrorCode::kHandlerError}) {
    ErrorCode back = ErrorCode::kInternal;
    ASSERT_TRUE(ParseErrorCode(ErrorCodeName(c), &back)) << ErrorCodeName(c);
    EXPECT_EQ(back, c);
  }
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kNoHandler), "no_handler");
}

}  // namespace
}  // namespace edgespool::protocol
