// The request/response state machines (agent/methods/): correlation of
// answers to requests, deadlines on a fake clock (the machines take the
// time as an argument), late answers told from unknown ones, bounds, and
// the calls' responders, round robin and departures. No network, no loop.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "agent/methods/method_calls.h"
#include "agent/methods/pending_requests.h"
#include "agent/methods/wire.h"
#include "agent/protocol/envelope.h"

namespace edgespool::agent::methods {
namespace {

using Kind = PendingRequests::MatchKind;

PendingRequests Make(size_t max_pending = 100, size_t per_conn = 10) {
  PendingRequestsOptions o;
  o.max_pending = max_pending;
  o.max_per_connection = per_conn;
  o.max_waiting_bytes = 100;
  return PendingRequests(o, 0x1234);
}

TEST(PendingRequests, AnswersMatchTheirOwnRequestOnly) {
  PendingRequests p = Make();
  std::set<std::string> ids;
  for (int i = 0; i < 10; ++i) {
    auto id = p.Add(/*conn=*/1 + i % 2, /*req=*/i, /*now=*/1000, /*timeout=*/5000, std::nullopt);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id->rfind("0000000000001234-", 0), 0u) << *id;
    ids.insert(*id);
  }
  EXPECT_EQ(ids.size(), 10u);
  // Answered in reverse: each finds its own.
  for (int i = 9; i >= 0; --i) {
    auto m = p.Match(p.CorrelationOf(static_cast<uint64_t>(i + 1)));
    ASSERT_EQ(m.kind, Kind::kMatched);
    EXPECT_EQ(m.request.req, i);
    EXPECT_EQ(m.request.conn_id, static_cast<uint64_t>(1 + i % 2));
  }
  EXPECT_EQ(p.size(), 0u);
  EXPECT_FALSE(p.NextDeadline().has_value());
}

TEST(PendingRequests, TimeoutAtTheDeadlineThenTheAnswerIsLate) {
  PendingRequests p = Make();
  auto a = p.Add(1, 1, 1000, 5000, std::nullopt);
  auto b = p.Add(1, 2, 1500, 1000, std::nullopt);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(p.NextDeadline(), 2500);
  EXPECT_TRUE(p.Expire(2499).empty());
  auto expired = p.Expire(2500);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].req, 2);
  EXPECT_FALSE(expired[0].waiting);
  EXPECT_EQ(p.NextDeadline(), 6000);
  EXPECT_EQ(p.Match(*b).kind, Kind::kLate);  // dropped, counted by the caller
  EXPECT_EQ(p.Match(*a).kind, Kind::kMatched);
  EXPECT_EQ(p.Match(*a).kind, Kind::kLate);  // a second answer
}

TEST(PendingRequests, UnknownIdsAreNotLate) {
  PendingRequests p = Make();
  ASSERT_TRUE(p.Add(1, 1, 0, 100, std::nullopt).ok());
  EXPECT_EQ(p.Match("").kind, Kind::kUnknown);
  EXPECT_EQ(p.Match("00000000000abcde-1").kind, Kind::kUnknown);  // another run
  EXPECT_EQ(p.Match("0000000000001234-2").kind, Kind::kUnknown);  // never handed out
  EXPECT_EQ(p.Match("0000000000001234-zz").kind, Kind::kUnknown);
  EXPECT_EQ(p.Match("0000000000001234-11111111111111111").kind, Kind::kUnknown);
  EXPECT_EQ(p.size(), 1u);
}

TEST(PendingRequests, BoundsPerConnectionAndOverall) {
  PendingRequests p = Make(/*max_pending=*/5, /*per_conn=*/3);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.Add(1, i, 0, 100, std::nullopt).ok());
  auto refused = p.Add(1, 3, 0, 100, std::nullopt);
  EXPECT_EQ(refused.status().code(), Code::kResourceExhausted);
  ASSERT_TRUE(p.Add(2, 0, 0, 100, std::nullopt).ok());
  ASSERT_TRUE(p.Add(2, 1, 0, 100, std::nullopt).ok());
  EXPECT_EQ(p.Add(3, 0, 0, 100, std::nullopt).status().code(), Code::kResourceExhausted);
  EXPECT_EQ(p.DropConnection(1), 3u);
  EXPECT_EQ(p.ForConnection(1), 0u);
  EXPECT_TRUE(p.Add(3, 0, 0, 100, std::nullopt).ok());
  EXPECT_EQ(p.size(), 3u);
}

TEST(PendingRequests, WaitingForTheUplinkThenSent) {
  PendingRequests p = Make();
  sync::OutboundPublish m;
  m.topic = "svc/a";
  m.payload = std::string(60, 'x');
  auto w = p.Add(1, 7, 1000, /*timeout=*/500, /*wait=*/3000, m);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(p.waiting(), 1u);
  // Payload bytes held while waiting are bounded (100 here).
  EXPECT_EQ(p.Add(1, 8, 1000, 500, 3000, m).status().code(), Code::kResourceExhausted);
  // An "answer" to a request never sent is not one.
  EXPECT_EQ(p.Match(*w).kind, Kind::kLate);
  EXPECT_EQ(p.NextDeadline(), 4000);
  auto sent = p.TakeWaiting(2000);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].message.topic, "svc/a");
  EXPECT_EQ(sent[0].message.payload.size(), 60u);
  EXPECT_EQ(p.waiting(), 0u);
  EXPECT_EQ(p.NextDeadline(), 2500);  // now its timeout counts
  EXPECT_EQ(p.Match(*w).kind, Kind::kMatched);
}

TEST(PendingRequests, WaitingTooLongIsUnavailable) {
  PendingRequests p = Make();
  ASSERT_TRUE(p.Add(1, 1, 0, 500, 3000, sync::OutboundPublish{}).ok());
  auto expired = p.Expire(3000);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_TRUE(expired[0].waiting);
  EXPECT_EQ(p.waiting(), 0u);
}

TEST(PendingRequests, RemoveOnRefusal) {
  PendingRequests p = Make();
  auto id = p.Add(4, 9, 0, 500, std::nullopt);
  PendingRequest gone;
  ASSERT_TRUE(p.Remove(*id, &gone));
  EXPECT_EQ(gone.conn_id, 4u);
  EXPECT_EQ(gone.req, 9);
  EXPECT_FALSE(p.Remove(*id, &gone));
  EXPECT_EQ(p.size(), 0u);
}

AnswerRoute Route(const std::string& c) { return AnswerRoute{"caller/" + c, c, false}; }

TEST(MethodCalls, NoHandlerUntilRegistered) {
  MethodCalls m(10);
  EXPECT_EQ(m.OnCall("reboot", Route("a"), 100).kind, MethodCalls::DispatchKind::kNoHandler);
  ASSERT_TRUE(m.Register(1, {"reboot"}, false).ok());
  auto d = m.OnCall("reboot", Route("b"), 100);
  ASSERT_EQ(d.kind, MethodCalls::DispatchKind::kDeliver);
  EXPECT_EQ(d.conn_id, 1u);
  EXPECT_EQ(m.OnCall("other", Route("c"), 100).kind, MethodCalls::DispatchKind::kNoHandler);
  ASSERT_TRUE(m.Register(1, {"reboot"}, /*stop=*/true).ok());
  EXPECT_EQ(m.OnCall("reboot", Route("d"), 100).kind, MethodCalls::DispatchKind::kNoHandler);
}

TEST(MethodCalls, AnswerOnceFromItsResponderOnly) {
  MethodCalls m(10);
  ASSERT_TRUE(m.Register(1, {"a"}, false).ok());
  ASSERT_TRUE(m.Register(2, {"b"}, false).ok());
  auto d = m.OnCall("a", Route("x"), 100);
  EXPECT_FALSE(m.Answer(2, d.call).has_value());  // not its call
  auto call = m.Answer(1, d.call);
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(call->route.correlation, "x");
  EXPECT_FALSE(m.Answer(1, d.call).has_value());  // answered already
  EXPECT_EQ(m.pending(), 0u);
}

TEST(MethodCalls, RoundRobinOverResponders) {
  MethodCalls m(10);
  ASSERT_TRUE(m.Register(1, {"a"}, false).ok());
  ASSERT_TRUE(m.Register(2, {"a"}, false).ok());
  ASSERT_TRUE(m.Register(2, {"a"}, false).ok());  // twice: still one
  EXPECT_EQ(m.responders("a"), 2u);
  std::multiset<uint64_t> to;
  for (int i = 0; i < 6; ++i) to.insert(m.OnCall("a", Route(std::to_string(i)), 100).conn_id);
  EXPECT_EQ(to.count(1), 3u);
  EXPECT_EQ(to.count(2), 3u);
}

TEST(MethodCalls, DeadlinesAndDeparture) {
  MethodCalls m(2);
  ASSERT_TRUE(m.Register(1, {"a"}, false).ok());
  auto d1 = m.OnCall("a", Route("1"), 500);
  auto d2 = m.OnCall("a", Route("2"), 300);
  EXPECT_EQ(m.OnCall("a", Route("3"), 900).kind, MethodCalls::DispatchKind::kBusy);
  EXPECT_EQ(m.NextDeadline(), 300);
  auto expired = m.Expire(300);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].call, d2.call);
  EXPECT_FALSE(m.Answer(1, d2.call).has_value());  // late
  auto left = m.DropConnection(1);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].call, d1.call);
  EXPECT_EQ(m.responders("a"), 0u);
  EXPECT_EQ(m.OnCall("a", Route("4"), 900).kind, MethodCalls::DispatchKind::kNoHandler);
}

TEST(MethodCalls, AtMost64MethodsPerConnection) {
  MethodCalls m(10);
  std::vector<std::string> names;
  for (int i = 0; i < 64; ++i) names.push_back("m" + std::to_string(i));
  ASSERT_TRUE(m.Register(1, names, false).ok());
  EXPECT_EQ(m.Register(1, {"one-more"}, false).code(), Code::kResourceExhausted);
  EXPECT_EQ(m.responders("one-more"), 0u);
}

TEST(Wire, RequestAndAnswerOverMqtt5AndEnvelope) {
  auto p5 = BuildRequest("svc/a", "body", {{"k", "v"}}, "edgespool/n/reply/id1", "id1", 1500, true);
  EXPECT_EQ(p5.payload, "body");
  EXPECT_EQ(p5.response_topic, "edgespool/n/reply/id1");
  EXPECT_EQ(p5.correlation_data, "id1");
  EXPECT_EQ(p5.message_expiry_s, 2u);
  auto p4 = BuildRequest("svc/a", "body", {}, "edgespool/n/reply/id1", "id1", 1500, false);
  EXPECT_EQ(
      p4.payload,
      "{\"es\":1,\"correlation\":\"id1\",\"response_topic\":\"edgespool/n/reply/id1\"}\nbody");
  EXPECT_TRUE(p4.response_topic.empty());

  // Answers come back in each form, and as a bare payload on reply/<id>.
  sync::InboundPublish in;
  in.topic = "edgespool/n/reply/id1";
  in.payload = "raw";
  InboundAnswer a = ParseAnswer(in, "edgespool/n/reply");
  EXPECT_EQ(a.correlation, "id1");
  EXPECT_EQ(a.payload, "raw");
  in.payload = "{\"es\":1,\"correlation\":\"id2\",\"error\":\"no_handler\",\"message\":\"m\"}\n";
  a = ParseAnswer(in, "edgespool/n/reply");
  EXPECT_EQ(a.correlation, "id2");
  EXPECT_EQ(a.error, "no_handler");
  EXPECT_EQ(ErrorCodeFromText(a.error), protocol::ErrorCode::kNoHandler);
  EXPECT_EQ(ErrorCodeFromText("bad_args"), protocol::ErrorCode::kHandlerError);
  in.payload = "x";
  in.correlation_data = "id3";
  in.user_properties = {{kErrorProperty, "timeout"}};
  a = ParseAnswer(in, "edgespool/n/reply");
  EXPECT_EQ(a.correlation, "id3");
  EXPECT_EQ(a.error, "timeout");

  AnswerRoute r5{"caller/1", "c1", false};
  auto e5 = BuildAnswer(r5, "", "no_handler", "nobody", true);
  EXPECT_EQ(e5.correlation_data, "c1");
  EXPECT_EQ(e5.payload, "{\"error\":\"no_handler\",\"message\":\"nobody\"}");
  AnswerRoute r4{"caller/1", "c1", true};
  auto e4 = BuildAnswer(r4, "ans", "", "", true);  // enveloped call: enveloped answer
  EXPECT_EQ(e4.payload, "{\"es\":1,\"correlation\":\"c1\"}\nans");
}

TEST(Wire, CallsParsed) {
  sync::InboundPublish in;
  in.topic = "edgespool/n/method/cfg/get";
  in.payload = "{\"es\":1,\"correlation\":\"c\",\"response_topic\":\"r/1\",\"timeout_ms\":250}\np";
  auto c = ParseCall(in, "edgespool/n/method");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->method, "cfg/get");
  EXPECT_TRUE(c->route.enveloped);
  EXPECT_EQ(c->route.response_topic, "r/1");
  EXPECT_EQ(c->timeout_ms, 250);
  EXPECT_EQ(c->payload, "p");
  in.payload = "plain";
  c = ParseCall(in, "edgespool/n/method");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->route.response_topic.empty());  // nobody to answer
  in.response_topic = "r/2";
  in.correlation_data = "c2";
  in.user_properties = {{kTimeoutProperty, "abc"}};
  EXPECT_FALSE(ParseCall(in, "edgespool/n/method").ok());
  in.response_topic = "r/2";  // ParseCall moves out of what it parses
  in.user_properties = {{kTimeoutProperty, "900"}, {"k", "v"}};
  c = ParseCall(in, "edgespool/n/method");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->timeout_ms, 900);
  EXPECT_EQ(c->headers.size(), 1u);
  EXPECT_FALSE(c->route.enveloped);
}

TEST(Envelope, RoundTripAndRefusals) {
  protocol::Envelope e;
  e.correlation = "c\"1";
  e.response_topic = "a/b";
  e.timeout_ms = 10;
  std::string bytes = protocol::EncodeEnvelope(e, std::string("bin\n\0ary", 8));
  protocol::Envelope out;
  std::string_view payload;
  std::string error;
  ASSERT_TRUE(protocol::ParseEnvelope(bytes, &out, &payload, &error)) << error;
  EXPECT_EQ(out.correlation, "c\"1");
  EXPECT_EQ(out.response_topic, "a/b");
  EXPECT_EQ(out.timeout_ms, 10);
  EXPECT_EQ(payload, std::string_view("bin\n\0ary", 8));
  for (const char* bad : {"", "no header", "{\"es\":1}\n", "{\"es\":2,\"correlation\":\"c\"}\n",
                          "{\"correlation\":\"c\"}\n", "[1]\n", "{\"es\":1,\"correlation\":7}\n",
                          "{\"es\":1,\"correlation\":\"c\",\"response_topic\":\"a/#\"}\n",
                          "{\"es\":1,\"correlation\":\"c\",\"timeout_ms\":0}\n",
                          "{\"es\":1,\"correlation\":\"c\",\"error\":\"Bad\"}\n",
                          "{\"es\":1,\"correlation\":\"a\\u0000b\"}\n"}) {
    EXPECT_FALSE(protocol::ParseEnvelope(bad, &out, &payload, &error)) << bad;
  }
  std::string long_header = "{\"es\":1,\"correlation\":\"" + std::string(5000, 'a') + "\"}\n";
  EXPECT_FALSE(protocol::ParseEnvelope(long_header, &out, &payload, &error));
}

}  // namespace
}  // namespace edgespool::agent::methods
