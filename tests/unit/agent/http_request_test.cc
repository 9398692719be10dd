// The request-head parser on its own: what it accepts, what it refuses with
// which status, and how it behaves on heads that arrive in pieces.
#include "agent/http/request.h"

#include <gtest/gtest.h>

#include <string>

namespace edgespool::agent {
namespace {

using State = HttpParseResult::State;

TEST(HttpRequestTest, ParsesAScrape) {
  std::string head =
      "GET /metrics?x=1 HTTP/1.1\r\nHost: 127.0.0.1:9464\r\nUser-Agent: Prometheus/2.45\r\n"
      "Accept:  text/plain;version=0.0.4 \t\r\n\r\n";
  auto r = ParseHttpRequest(head + "trailing body bytes");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.head_bytes, head.size());
  EXPECT_EQ(r.request.method, "GET");
  EXPECT_EQ(r.request.target, "/metrics?x=1");
  EXPECT_EQ(r.request.path, "/metrics");
  EXPECT_EQ(r.request.query, "x=1");
  EXPECT_EQ(r.request.version_minor, 1);
  ASSERT_NE(r.request.Header("user-agent"), nullptr);
  EXPECT_EQ(*r.request.Header("user-agent"), "Prometheus/2.45");
  EXPECT_EQ(*r.request.Header("accept"), "text/plain;version=0.0.4");
  EXPECT_EQ(r.request.Header("cookie"), nullptr);
}

TEST(HttpRequestTest, BareLfAndHttp10WithoutHost) {
  auto r = ParseHttpRequest("HEAD /healthz HTTP/1.0\n\n");
  ASSERT_EQ(r.state, State::kComplete) << r.error;
  EXPECT_EQ(r.request.method, "HEAD");
  EXPECT_EQ(r.request.version_minor, 0);
}

TEST(HttpRequestTest, EveryPrefixOfAValidHeadIsIncomplete) {
  std::string head = "GET /readyz HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\r\n";
  for (size_t k = 0; k < head.size(); ++k) {
    EXPECT_EQ(ParseHttpRequest(head.substr(0, k)).state, State::kIncomplete) << k;
  }
  EXPECT_EQ(ParseHttpRequest(head).state, State::kComplete);
}

TEST(HttpRequestTest, RefusalsCarryTheirStatus) {
  struct Case {
    std::string text;
    int status;
  } cases[] = {
      {"GARBAGE\r\n", 400},
      {"GET  /metrics HTTP/1.1\r\n", 400},
      {"GET /metrics HTTP/1.1 extra\r\n", 400},
      {"G@T /metrics HTTP/1.1\r\n", 400},
      {"GET * HTTP/1.1\r\n", 400},
      {"GET http://h/metrics HTTP/1.1\r\n", 400},
      {"GET /m\x7f HTTP/1.1\r\n", 400},
      {"GET /metrics HTTP/1.1x\r\n", 400},
      {"GET /metrics http/1.1\r\n", 400},
      {"GET /metrics HTTP/2.0\r\n", 505},
      {"GET /metrics HTTP/1.2\r\n", 505},
      {"GET /m\rx HTTP/1.1\r\n", 400},
      {"GET /metrics HTTP/1.1\r\n\r\n", 400},                        // no Host
      {"GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},  // two Hosts
      {"GET /metrics HTTP/1.1\r\nHost : a\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nHost: a\r\n folded\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nNoColon\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nX: a\x01\r\n", 400},
      {std::string("GET /metrics HTTP/1.1\r\nX: a\0b\r\n", 31), 400},
      {"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400},
      {"GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400},
      {"\r\nGET /metrics HTTP/1.1\r\n", 400},
  };
  for (const auto& c : cases) {
    auto r = ParseHttpRequest(c.text);
    EXPECT_EQ(r.state, State::kError) << c.text;
    EXPECT_EQ(r.error_status, c.status) << c.text << " -> " << r.error;
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(HttpRequestTest, LimitsGive431) {
  HttpParseLimits limits;
  limits.max_head_bytes = 100;
  limits.max_headers = 2;
  // An unfinished line reaching the limit.
  EXPECT_EQ(ParseHttpRequest(std::string(100, 'G'), limits).error_status, 431);
  EXPECT_EQ(ParseHttpRequest(std::string(99, 'G'), limits).state, State::kIncomplete);
  // A finished head past the limit.
  std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(80, 'a') + "\r\n\r\n";
  EXPECT_EQ(ParseHttpRequest(head, limits).error_status, 431);
  // Too many fields.
  EXPECT_EQ(
      ParseHttpRequest("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n", limits).error_status,
      431);
  // Exactly at the limit is accepted.
  std::string exact = "GET / HTTP/1.1\r\nHost: x\r\nX: ";
  exact += std::string(100 - exact.size() - 4, 'a') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 100u);
  EXPECT_EQ(ParseHttpRequest(exact, limits).state, State::kComplete);
}

}  // namespace
}  // namespace edgespool::agent
