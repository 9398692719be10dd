// The WebSocket session messages (agent/websocket/session_message.h) and a
// session's output bounds (agent/websocket/session.h).
#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "agent/websocket/session.h"
#include "agent/websocket/session_message.h"

namespace edgespool::agent::websocket {
namespace {

ParseOutcome Parse(const std::string& text, ClientMessage* m, std::string* why = nullptr) {
  std::string error;
  ParseOutcome o = ParseClientMessage(text, m, &error);
  if (why) *why = error;
  return o;
}

TEST(WebSocketMessage, Subscribe) {
  ClientMessage m;
  ASSERT_EQ(Parse(R"({"type":"subscribe","session":"hmi","filters":["down/#","a/+/b"],)"
                  R"("from":"oldest","window":5,"uplink":["sensors/#"],"status":true,"x":1})",
                  &m),
            ParseOutcome::kOk);
  EXPECT_EQ(m.type, ClientType::kSubscribe);
  EXPECT_EQ(m.session, "hmi");
  EXPECT_EQ(m.filters, (std::vector<std::string>{"down/#", "a/+/b"}));
  EXPECT_EQ(m.from, FromKind::kOldest);
  EXPECT_EQ(m.window, 5u);
  EXPECT_EQ(m.uplink, std::vector<std::string>{"sensors/#"});
  EXPECT_TRUE(m.status);
  ASSERT_EQ(Parse(R"({"type":"subscribe","filters":["d"],"from":42})", &m), ParseOutcome::kOk);
  EXPECT_EQ(m.from, FromKind::kSeq);
  EXPECT_EQ(m.from_seq, 42u);
  ASSERT_EQ(Parse(R"({"type":"subscribe","status":true})", &m), ParseOutcome::kOk);
  EXPECT_TRUE(m.filters.empty());
}

TEST(WebSocketMessage, BadValuesAreRequestErrors) {
  ClientMessage m;
  std::string why;
  for (const char* text : {
           R"({"type":"subscribe","filters":["a/#/b"]})",
           R"({"type":"subscribe","filters":["x"],"window":0})",
           R"({"type":"subscribe","filters":["x"],"window":10001})",
           R"({"type":"subscribe","filters":["x"],"from":"yesterday"})",
           R"({"type":"subscribe","filters":["x"],"from":-1})",
           R"({"type":"subscribe","filters":["x"],"from":1.5})",
           R"({"type":"subscribe"})",
           R"({"type":"subscribe","session":"named","status":true})",
           R"({"type":"subscribe","session":"a\nb","filters":["x"]})",
           R"({"type":"ack"})",
           R"({"type":"ack","seq":1,"up_to":2})",
           R"({"type":"ack","seq":9007199254740992})",
       }) {
    EXPECT_EQ(Parse(text, &m, &why), ParseOutcome::kBadRequest) << text;
    EXPECT_FALSE(why.empty()) << text;
  }
  std::string many = R"({"type":"subscribe","filters":[)";
  for (int i = 0; i < 65; ++i) many += std::string(i ? "," : "") + "\"f\"";
  EXPECT_EQ(Parse(many + "]}", &m), ParseOutcome::kBadRequest);
}

TEST(WebSocketMessage, GarbageCloses) {
  ClientMessage m;
  for (const char* text :
       {"", "not json", "[1,2]", "42", "null", R"({"type":1})", R"({"no":"type"})",
        R"({"type":"launch"})", R"({"type":"auth"})", R"({"type":"subscribe","filters":"down/#"})",
        R"({"type":"subscribe","filters":[1]})", R"({"type":"ack","seq":"1"})",
        R"({"type":"unsubscribe","end":1})", R"({"type":"subscribe","status":"yes"})",
        "{\"type\":\"ack\",\"seq\":1"}) {
    EXPECT_EQ(Parse(text, &m), ParseOutcome::kGarbage) << text;
  }
}

TEST(WebSocketMessage, AckAuthUnsubscribe) {
  ClientMessage m;
  ASSERT_EQ(Parse(R"({"type":"ack","up_to":7})", &m), ParseOutcome::kOk);
  EXPECT_TRUE(m.cumulative);
  EXPECT_EQ(m.seq, 7u);
  ASSERT_EQ(Parse(R"({"type":"ack","seq":3})", &m), ParseOutcome::kOk);
  EXPECT_FALSE(m.cumulative);
  ASSERT_EQ(Parse(R"({"type":"auth","token":"t0k"})", &m), ParseOutcome::kOk);
  EXPECT_EQ(m.token, "t0k");
  ASSERT_EQ(Parse(R"({"type":"unsubscribe","end":true})", &m), ParseOutcome::kOk);
  EXPECT_TRUE(m.end);
}

std::unique_ptr<cJSON, void (*)(cJSON*)> Json(const std::string& s) {
  return {cJSON_Parse(s.c_str()), cJSON_Delete};
}

TEST(WebSocketMessage, RenderedMessagesAreJson) {
  store::StoredInbound row;
  row.seq = 9;
  row.message.topic = "down/cmd";
  row.message.broker_topic = "edgespool/gw/down/cmd";
  row.message.received_ms = 1700000000000;
  row.message.headers = {{"k", "v\"q"}};
  row.message.payload = "h\xc3\xa9llo \"x\"\n";
  std::string out;
  AppendDownlinkMessage(&out, "hmi", row);
  auto j = Json(out);
  ASSERT_TRUE(j) << out;
  EXPECT_STREQ(cJSON_GetObjectItem(j.get(), "payload")->valuestring, row.message.payload.c_str());
  EXPECT_STREQ(cJSON_GetObjectItem(cJSON_GetObjectItem(j.get(), "headers"), "k")->valuestring,
               "v\"q");
  EXPECT_EQ(cJSON_GetObjectItem(j.get(), "seq")->valuedouble, 9);

  store::Message m;
  m.topic = "sensors/t";
  m.payload = std::string("\xff\x00\x01", 3);
  out.clear();
  AppendUplinkMessage(&out, 4, m);
  j = Json(out);
  ASSERT_TRUE(j) << out;
  EXPECT_STREQ(cJSON_GetObjectItem(j.get(), "payload_b64")->valuestring, "/wAB");
  EXPECT_EQ(cJSON_GetObjectItem(j.get(), "payload"), nullptr);
  for (const std::string& s :
       {RenderSubscribed("a", 1, true), RenderError("busy", "x\ny"),
        RenderStatus(R"({"node":"n"})"), RenderDropped(2, 5), RenderUnsubscribed()}) {
    EXPECT_TRUE(Json(s)) << s;
  }
}

TEST(WebSocketMessage, Base64) {
  auto b64 = [](std::string_view s) {
    std::string out;
    AppendBase64(&out, s);
    return out;
  };
  EXPECT_EQ(b64(""), "");
  EXPECT_EQ(b64("f"), "Zg==");
  EXPECT_EQ(b64("fo"), "Zm8=");
  EXPECT_EQ(b64("foo"), "Zm9v");
  EXPECT_EQ(b64("foobar"), "Zm9vYmFy");
}

TEST(WebSocketSession, UplinkIsBoundedAndDropsAreCounted) {
  Session s(1, SessionLimits{3, 1 << 20});
  int wakes = 0;
  s.wake = [&] { ++wakes; };
  auto frame = std::make_shared<const std::string>("{\"type\":\"message\"}");
  for (int i = 0; i < 5; ++i) s.QueueUplink(frame);
  EXPECT_EQ(s.uplink_delivered, 3u);
  EXPECT_EQ(s.uplink_dropped, 2u);
  EXPECT_EQ(wakes, 1);  // only when the queue went from empty to not
  s.PopFront();
  EXPECT_TRUE(s.QueueUplink(frame));  // room again: a "dropped" frame first
  std::vector<std::string> out;
  while (s.HasOutput()) {
    out.push_back(s.Front());
    s.PopFront();
  }
  ASSERT_EQ(out.size(), 4u);
  EXPECT_NE(out[2].find("\"type\":\"dropped\""), std::string::npos) << out[2];
  EXPECT_NE(out[2].find("\"count\":2"), std::string::npos) << out[2];
  EXPECT_EQ(s.queued_bytes(), 0u);
}

TEST(WebSocketSession, StatusAndControlBounds) {
  Session s(1, SessionLimits{});
  auto st = std::make_shared<const std::string>("{}");
  EXPECT_TRUE(s.QueueStatus(st));
  EXPECT_FALSE(s.QueueStatus(st));  // one at a time
  for (size_t i = 0; i < Session::kMaxControlFrames; ++i) EXPECT_TRUE(s.QueueControl("{}"));
  EXPECT_FALSE(s.QueueControl("{}"));
  s.PopFront();  // the status
  EXPECT_TRUE(s.QueueStatus(st));
}

TEST(WebSocketSession, UplinkFilters) {
  Session s(1, SessionLimits{});
  s.uplink_filters = {"sensors/+/temp", "alarm/#"};
  EXPECT_TRUE(s.MatchesUplink("sensors/a/temp"));
  EXPECT_TRUE(s.MatchesUplink("alarm/x/y"));
  EXPECT_FALSE(s.MatchesUplink("sensors/a/hum"));
}

}  // namespace
}  // namespace edgespool::agent::websocket
