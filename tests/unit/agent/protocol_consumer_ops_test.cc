// The consumer ops (subscribe, ack, unsubscribe): every field, every refusal,
// both parser paths, and the encoder the SDK sends them with.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "agent/protocol/reply.h"
#include "agent/protocol/request.h"

namespace edgespool::protocol {
namespace {

Request MustParse(const std::string& header) {
  Request r, slow;
  RequestError e, slow_e;
  EXPECT_TRUE(ParseRequest(header, &r, &e)) << header << ": " << e.message;
  EXPECT_TRUE(ParseRequestSlow(header, &slow, &slow_e)) << header;
  return r;
}

// The refusal's message; both paths must give the same one.
std::string MustFail(const std::string& header) {
  Request r, slow;
  RequestError e, slow_e;
  EXPECT_FALSE(ParseRequest(header, &r, &e)) << header;
  EXPECT_FALSE(ParseRequestSlow(header, &slow, &slow_e)) << header;
  EXPECT_EQ(e.code, ErrorCode::kBadRequest) << header;
  EXPECT_EQ(e.message, slow_e.message) << header;
  EXPECT_FALSE(e.message.empty());
  return e.message;
}

TEST(ProtocolSubscribe, FullRequest) {
  Request r = MustParse(
      R"({"op":"subscribe","req":1,"session":"hmi","filters":["down/#","config/+/x"],)"
      R"("from":"oldest","window":250})");
  EXPECT_EQ(r.op, Op::kSubscribe);
  EXPECT_EQ(r.req, 1);
  EXPECT_EQ(r.subscribe.session, "hmi");
  EXPECT_EQ(r.subscribe.filters, (std::vector<std::string>{"down/#", "config/+/x"}));
  EXPECT_EQ(r.subscribe.from, SubscribeFields::kOldest);
  EXPECT_EQ(r.subscribe.window, 250u);
}

TEST(ProtocolSubscribe, DefaultsAndFromForms) {
  Request r = MustParse(R"({"op":"subscribe","filters":["#"]})");
  EXPECT_EQ(r.subscribe.session, "");
  EXPECT_EQ(r.subscribe.from, SubscribeFields::kDefault);
  EXPECT_FALSE(r.subscribe.window);
  EXPECT_EQ(MustParse(R"({"op":"subscribe","filters":["a"],"from":"new"})").subscribe.from,
            SubscribeFields::kNew);
  Request s = MustParse(R"({"op":"subscribe","filters":["a"],"from":42})");
  EXPECT_EQ(s.subscribe.from, SubscribeFields::kSeq);
  EXPECT_EQ(s.subscribe.from_seq, 42u);
  EXPECT_EQ(MustParse(R"({"op":"subscribe","filters":["a"],"from":0})").subscribe.from_seq, 0u);
  // Session "" is the anonymous one, as absent.
  EXPECT_EQ(MustParse(R"({"op":"subscribe","session":"","filters":["a"]})").subscribe.session, "");
}

TEST(ProtocolSubscribe, ValidFilters) {
  for (const char* f : {"#", "+", "a/#", "+/+", "a/+/b", "a//b", "/", "a/", "+/#", "\xc3\xa9t\xc3\xa9"}) {
    EXPECT_TRUE(ValidateFilter(f).ok()) << f;
  }
  EXPECT_TRUE(ValidateFilter(std::string(kMaxFilterBytes, 'a')).ok());
}

TEST(ProtocolSubscribe, InvalidFilters) {
  const std::vector<std::string> bad = {
      "", "a#", "#/a", "a/#/b", "a+", "+a/b", "a/b+", "a/#x", "$SYS/#", "a\nb",
      std::string("a\0b", 3), "\xff", "\xc0\xaf", std::string(kMaxFilterBytes + 1, 'a')};
  for (const std::string& f : bad) EXPECT_FALSE(ValidateFilter(f).ok()) << f;
}

TEST(ProtocolSubscribe, Refusals) {
  EXPECT_EQ(MustFail(R"({"op":"subscribe"})"), "filters must be an array of topic filters");
  EXPECT_EQ(MustFail(R"({"op":"subscribe","filters":"a/#"})"),
            "filters must be an array of topic filters");
  EXPECT_EQ(MustFail(R"({"op":"subscribe","filters":[]})"), "filters is empty");
  EXPECT_EQ(MustFail(R"({"op":"subscribe","filters":["a",7]})"), "filters[1] is not a string");
  EXPECT_EQ(MustFail(R"({"op":"subscribe","filters":["a","b/#/c"]})"),
            "filters[1]: # must be the last level");
  EXPECT_EQ(MustFail(R"({"op":"subscribe","filters":["a\u000ab"]})"),
            "filters[0]: filter contains a newline");
  EXPECT_EQ(MustFail(R"({"op":"subscribe","filters":["a\u0000b"]})"),
            "\\u0000 is not allowed in header strings");
  std::string many = R"({"op":"subscribe","filters":[)";
  for (size_t i = 0; i <= kMaxFilters; ++i) many += (i ? ",\"a\"" : "\"a\"");
  EXPECT_EQ(MustFail(many + "]}"), "more than 64 filters");
  for (const char* from : {R"("newest")", "-1", "1.5", "true", "9007199254740992"}) {
    EXPECT_EQ(MustFail(std::string(R"({"op":"subscribe","filters":["a"],"from":)") + from + "}"),
              "from must be \"new\", \"oldest\" or an inbox seq 0..2^53-1")
        << from;
  }
  for (const char* w : {"0", "10001", "\"5\"", "2.5"}) {
    EXPECT_EQ(MustFail(std::string(R"({"op":"subscribe","filters":["a"],"window":)") + w + "}"),
              "window must be an integer 1..10000");
  }
  MustParse(R"({"op":"subscribe","filters":["a"],"window":10000})");
}

TEST(ProtocolSession, Names) {
  EXPECT_TRUE(ValidateSessionName("").ok());
  EXPECT_TRUE(ValidateSessionName(std::string(kMaxSessionBytes, 's')).ok());
  EXPECT_FALSE(ValidateSessionName(std::string(kMaxSessionBytes + 1, 's')).ok());
  EXPECT_FALSE(ValidateSessionName("a\nb").ok());
  EXPECT_FALSE(ValidateSessionName(std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateSessionName("\xed\xa0\x80").ok());  // a surrogate
  EXPECT_EQ(MustFail(R"({"op":"subscribe","session":7,"filters":["a"]})"),
            "session must be a string");
  EXPECT_EQ(MustFail(R"({"op":"ack","session":"a\nb","seq":1})"),
            "session contains NUL or a newline");
  EXPECT_EQ(MustFail(R"({"op":"unsubscribe","session":")" + std::string(129, 'x') + "\"}"),
            "session longer than 128 bytes");
}

TEST(ProtocolAck, OneOrUpTo) {
  Request one = MustParse(R"({"op":"ack","req":2,"session":"hmi","seq":42})");
  EXPECT_EQ(one.op, Op::kAck);
  EXPECT_EQ(one.ack.session, "hmi");
  EXPECT_EQ(one.ack.seq, 42u);
  EXPECT_FALSE(one.ack.up_to);
  Request all = MustParse(R"({"op":"ack","up_to":9007199254740991})");
  EXPECT_EQ(all.ack.session, "");
  EXPECT_EQ(all.ack.up_to, 9007199254740991u);
  EXPECT_FALSE(all.ack.seq);
  EXPECT_EQ(MustFail(R"({"op":"ack","session":"hmi"})"), "ack needs exactly one of seq or up_to");
  EXPECT_EQ(MustFail(R"({"op":"ack","seq":1,"up_to":2})"), "ack needs exactly one of seq or up_to");
  EXPECT_EQ(MustFail(R"({"op":"ack","seq":0})"), "seq must be an integer 1..2^53-1");
  EXPECT_EQ(MustFail(R"({"op":"ack","up_to":"5"})"), "up_to must be an integer 1..2^53-1");
}

TEST(ProtocolUnsubscribe, EndFlag) {
  Request r = MustParse(R"({"op":"unsubscribe","req":3,"session":"hmi","end":true})");
  EXPECT_EQ(r.op, Op::kUnsubscribe);
  EXPECT_EQ(r.unsubscribe.session, "hmi");
  EXPECT_TRUE(r.unsubscribe.end);
  EXPECT_FALSE(MustParse(R"({"op":"unsubscribe","end":false})").unsubscribe.end);
  EXPECT_FALSE(MustParse(R"({"op":"unsubscribe"})").unsubscribe.end);
  EXPECT_EQ(MustFail(R"({"op":"unsubscribe","end":1})"), "end must be true or false");
}

TEST(ProtocolConsumerOps, EncoderRoundTrips) {
  Request sub;
  sub.op = Op::kSubscribe;
  sub.req = 11;
  sub.subscribe.session = "h\"mi";
  sub.subscribe.filters = {"down/#", "a/+/\xc3\xa9"};
  sub.subscribe.from = SubscribeFields::kSeq;
  sub.subscribe.from_seq = 77;
  sub.subscribe.window = 3;
  Request back = MustParse(EncodeRequestHeader(sub));
  EXPECT_EQ(back.op, Op::kSubscribe);
  EXPECT_EQ(back.req, 11);
  EXPECT_EQ(back.subscribe.session, sub.subscribe.session);
  EXPECT_EQ(back.subscribe.filters, sub.subscribe.filters);
  EXPECT_EQ(back.subscribe.from, SubscribeFields::kSeq);
  EXPECT_EQ(back.subscribe.from_seq, 77u);
  EXPECT_EQ(back.subscribe.window, 3u);

  Request ack;
  ack.op = Op::kAck;
  ack.ack.session = "hmi";
  ack.ack.up_to = 5;
  // Acks are one per message: they stay flat (the fast path).
  EXPECT_EQ(EncodeRequestHeader(ack), R"({"op":"ack","session":"hmi","up_to":5})");
  EXPECT_EQ(MustParse(EncodeRequestHeader(ack)).ack.up_to, 5u);

  Request unsub;
  unsub.op = Op::kUnsubscribe;
  unsub.req = 4;
  unsub.unsubscribe.end = true;
  EXPECT_EQ(EncodeRequestHeader(unsub), R"({"op":"unsubscribe","req":4,"end":true})");
}

TEST(ProtocolConsumerOps, SubscribeReply) {
  Reply r;
  r.req = 1;
  r.ok = true;
  r.session = "hmi";
  r.seq = 0;
  r.resumed = false;
  std::string h = EncodeReplyHeader(r);
  EXPECT_EQ(h, R"({"req":1,"ok":true,"seq":0,"session":"hmi","resumed":false})");
  Reply back;
  std::string error;
  ASSERT_TRUE(ParseReply(h, &back, &error)) << error;
  EXPECT_EQ(back.session, "hmi");
  EXPECT_EQ(back.seq, 0u);
  EXPECT_EQ(back.resumed, false);
  ASSERT_TRUE(ParseReply(R"({"req":1,"ok":true,"resumed":true})", &back, &error));
  EXPECT_EQ(back.resumed, true);
  EXPECT_EQ(EncodeReplyHeader(back), R"({"req":1,"ok":true,"resumed":true})");
}

}  // namespace
}  // namespace edgespool::protocol
