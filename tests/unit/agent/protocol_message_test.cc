// Pushed "message" frames: encoding, parsing, and telling them from replies
// on a consumer's connection.
#include <gtest/gtest.h>

#include <string>

#include "agent/protocol/frame.h"
#include "agent/protocol/message.h"

namespace edgespool::protocol {
namespace {

PushedMessage Full() {
  PushedMessage m;
  m.session = "hmi";
  m.seq = 42;
  m.topic = "down/cmd";
  m.broker_topic = "edgespool/gw1/down/cmd";
  m.ts_ms = 1733300000000;
  m.headers = {{"k", "v"}, {"k", "w"}, {"\xc3\xa9", "\"q\""}};
  m.response_topic = "reply/to";
  m.correlation = std::string("\x00\x01\xfe\xff", 4);
  return m;
}

TEST(ProtocolMessage, EncodesTheDocumentedHeader) {
  EXPECT_EQ(EncodeMessageHeader(Full()),
            R"({"op":"message","session":"hmi","seq":42,"topic":"down/cmd",)"
            R"("broker_topic":"edgespool/gw1/down/cmd","ts":1733300000000,)"
            R"("headers":{"k":"v","k":"w","é":"\"q\""},"response_topic":"reply/to",)"
            R"("correlation":"0001feff"})");
  PushedMessage bare;
  bare.seq = 1;
  bare.topic = "t";
  EXPECT_EQ(EncodeMessageHeader(bare), R"({"op":"message","session":"","seq":1,"topic":"t","ts":0})");
}

TEST(ProtocolMessage, RoundTripsBothPaths) {
  PushedMessage in = Full();
  PushedMessage out;
  std::string error;
  ASSERT_TRUE(ParseMessage(EncodeMessageHeader(in), &out, &error)) << error;  // cJSON (headers)
  EXPECT_EQ(out.session, in.session);
  EXPECT_EQ(out.seq, in.seq);
  EXPECT_EQ(out.topic, in.topic);
  EXPECT_EQ(out.broker_topic, in.broker_topic);
  EXPECT_EQ(out.ts_ms, in.ts_ms);
  EXPECT_EQ(out.headers, in.headers);  // order and the repeated key kept
  EXPECT_EQ(out.response_topic, in.response_topic);
  EXPECT_EQ(out.correlation, in.correlation);
  in.headers.clear();  // now flat: the fast path
  ASSERT_TRUE(ParseMessage(EncodeMessageHeader(in), &out, &error)) << error;
  EXPECT_EQ(out.correlation, in.correlation);
  EXPECT_TRUE(out.headers.empty());
}

TEST(ProtocolMessage, Refusals) {
  PushedMessage m;
  std::string error;
  const char* bad[] = {
      R"({"op":"message","topic":"t"})",                       // no seq
      R"({"op":"message","seq":0,"topic":"t"})",               // seq 0
      R"({"op":"message","seq":1})",                           // no topic
      R"({"op":"message","seq":1,"topic":7})",
      R"({"op":"message","seq":1,"topic":"t","session":1})",
      R"({"op":"message","seq":1,"topic":"t","ts":-1})",
      R"({"op":"message","seq":1,"topic":"t","headers":{"a":1}})",
      R"({"op":"message","seq":1,"topic":"t","headers":[]})",
      R"({"op":"message","seq":1,"topic":"t","correlation":"abc"})",
      R"({"op":"message","seq":1,"topic":"t","correlation":"zz"})",
      R"({"op":"message","seq":1,"topic":"a\u0000b"})",
      R"({"op":"publish","seq":1,"topic":"t"})",
      R"({"ok":true})",
      "[1]",
      "garbage",
  };
  for (const char* h : bad) {
    EXPECT_FALSE(ParseMessage(h, &m, &error)) << h;
    EXPECT_FALSE(error.empty());
  }
}

TEST(ProtocolMessage, ServerFrameTellsMessagesFromReplies) {
  ServerFrame f;
  std::string error;
  ASSERT_TRUE(ParseServerFrame(EncodeMessageHeader(Full()), &f, &error)) << error;
  EXPECT_EQ(f.kind, ServerFrame::kMessage);
  EXPECT_EQ(f.message.seq, 42u);
  ASSERT_TRUE(ParseServerFrame(R"({"op":"message","session":"","seq":3,"topic":"x"})", &f, &error));
  EXPECT_EQ(f.kind, ServerFrame::kMessage);
  EXPECT_EQ(f.message.topic, "x");

  ASSERT_TRUE(ParseServerFrame(R"({"req":1,"ok":true,"session":"hmi","seq":7,"resumed":true})",
                               &f, &error));
  EXPECT_EQ(f.kind, ServerFrame::kReply);
  EXPECT_EQ(f.reply.seq, 7u);
  EXPECT_EQ(f.reply.resumed, true);
  ASSERT_TRUE(ParseServerFrame(R"({"req":2,"ok":false,"code":"bad_request","message":"x\ty"})",
                               &f, &error));  // an escape: the cJSON path
  EXPECT_EQ(f.kind, ServerFrame::kReply);
  EXPECT_EQ(f.reply.code, ErrorCode::kBadRequest);
  EXPECT_EQ(f.reply.message, "x\ty");

  EXPECT_FALSE(ParseServerFrame(R"({"req":1})", &f, &error));  // neither
  EXPECT_FALSE(ParseServerFrame(R"({"op":"message","topic":"t"})", &f, &error));
  EXPECT_FALSE(ParseServerFrame("nope", &f, &error));
}

TEST(ProtocolMessage, FrameCarriesThePayload) {
  std::string wire;
  AppendMessageFrame(&wire, Full(), std::string("pay\0load", 8));
  FrameDecoder decoder(1024, 4096);
  int frames = 0;
  ASSERT_TRUE(decoder
                  .Feed(wire.data(), wire.size(),
                        [&](const Frame& f) {
                          ++frames;
                          EXPECT_EQ(f.header, EncodeMessageHeader(Full()));
                          EXPECT_EQ(f.body, std::string("pay\0load", 8));
                          return true;
                        })
                  .ok());
  EXPECT_EQ(frames, 1);
}

TEST(ProtocolHex, Codec) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode("\x0a\xbc"), "0abc");
  std::string out;
  ASSERT_TRUE(HexDecode("0aBc", &out));
  EXPECT_EQ(out, "\x0a\xbc");
  EXPECT_FALSE(HexDecode("0", &out));
  EXPECT_FALSE(HexDecode("0g", &out));
}

}  // namespace
}  // namespace edgespool::protocol
