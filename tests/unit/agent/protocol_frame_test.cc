// The producer frame decoder: byte-at-a-time and bulk feeding, limits, too
// large bodies skipped, bad frames, and what an idle decoder keeps.
#include "agent/protocol/frame.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace edgespool::protocol {
namespace {

struct Got {
  std::string header, body;
  uint64_t declared = 0;
  bool skipped = false;
};

Status FeedAll(FrameDecoder& d, const std::string& bytes, std::vector<Got>* out,
               size_t chunk = SIZE_MAX) {
  for (size_t i = 0; i < bytes.size(); i += chunk) {
    size_t n = std::min(chunk, bytes.size() - i);
    Status st = d.Feed(bytes.data() + i, n, [&](const Frame& f) {
      out->push_back(Got{std::string(f.header), std::string(f.body), f.declared_body_bytes,
                         f.body_skipped});
      return true;
    });
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

std::string Prefix(uint32_t h, uint32_t b) {
  std::string s;
  for (uint32_t v : {h, b}) {
    s.push_back(static_cast<char>(v >> 24));
    s.push_back(static_cast<char>(v >> 16));
    s.push_back(static_cast<char>(v >> 8));
    s.push_back(static_cast<char>(v));
  }
  return s;
}

TEST(ProtocolFrame, EncodesBigEndianLengths) {
  std::string f = EncodeFrame("{}", "abc");
  EXPECT_EQ(f, Prefix(2, 3) + "{}abc");
}

TEST(ProtocolFrame, DecodesAtEveryChunkSize) {
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    AppendFrame(&stream, "{\"req\":" + std::to_string(i) + "}", std::string(i * 7, 'x'));
  }
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{8}, size_t{13}, size_t{1000}, SIZE_MAX}) {
    FrameDecoder d(1 << 20, 4 << 20);
    std::vector<Got> got;
    ASSERT_TRUE(FeedAll(d, stream, &got, chunk).ok());
    ASSERT_EQ(got.size(), 50u) << "chunk " << chunk;
    for (int i = 0; i < 50; ++i) {
      EXPECT_EQ(got[i].header, "{\"req\":" + std::to_string(i) + "}");
      EXPECT_EQ(got[i].body, std::string(i * 7, 'x'));
    }
  }
}

TEST(ProtocolFrame, TooLargeBodyIsSkippedAndStreamContinues) {
  std::string stream = EncodeFrame("{\"req\":1}", std::string(300, 'a')) +
                       EncodeFrame("{\"req\":2}", "ok");
  for (size_t chunk : {size_t{1}, size_t{64}, SIZE_MAX}) {
    FrameDecoder d(100, 400);
    std::vector<Got> got;
    ASSERT_TRUE(FeedAll(d, stream, &got, chunk).ok());
    ASSERT_EQ(got.size(), 2u);
    EXPECT_TRUE(got[0].skipped);
    EXPECT_EQ(got[0].declared, 300u);
    EXPECT_EQ(got[0].header, "{\"req\":1}");
    EXPECT_TRUE(got[0].body.empty());
    EXPECT_FALSE(got[1].skipped);
    EXPECT_EQ(got[1].body, "ok");
    // Skipping a too-large body never buffers it.
    EXPECT_LT(d.buffered_bytes(), 200u);
  }
}

TEST(ProtocolFrame, BodyBeyondSkipLimitIsBadFrame) {
  FrameDecoder d(100, 400);
  std::vector<Got> got;
  Status st = FeedAll(d, Prefix(2, 401) + "{}", &got);
  EXPECT_EQ(st.code(), Code::kProtocolError);
  EXPECT_TRUE(got.empty());
  EXPECT_TRUE(d.failed());
  EXPECT_FALSE(FeedAll(d, EncodeFrame("{}", ""), &got).ok()) << "stays failed";
}

TEST(ProtocolFrame, HeaderLengthZeroOrOverLimitIsBadFrame) {
  for (uint32_t h : {0u, kMaxHeaderBytes + 1, 0xFFFFFFFFu}) {
    FrameDecoder d(100, 400);
    std::vector<Got> got;
    EXPECT_EQ(FeedAll(d, Prefix(h, 0), &got, 1).code(), Code::kProtocolError) << h;
  }
  FrameDecoder d(100, 400);
  std::vector<Got> got;
  std::string max_header(kMaxHeaderBytes, ' ');
  EXPECT_TRUE(FeedAll(d, EncodeFrame(max_header, ""), &got).ok());
  EXPECT_EQ(got.size(), 1u);
}

TEST(ProtocolFrame, CallbackCanStopDecoding) {
  FrameDecoder d(100, 400);
  std::string stream = EncodeFrame("{}", "") + EncodeFrame("{}", "");
  int n = 0;
  Status st = d.Feed(stream.data(), stream.size(), [&](const Frame&) {
    ++n;
    return false;
  });
  EXPECT_EQ(st.code(), Code::kCancelled);
  EXPECT_EQ(n, 1);
}

TEST(ProtocolFrame, LargeFrameBufferIsReleasedAfterwards) {
  FrameDecoder d(1 << 20, 4 << 20);
  std::vector<Got> got;
  ASSERT_TRUE(FeedAll(d, EncodeFrame("{}", std::string(1 << 20, 'z')), &got, 4096).ok());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_LE(d.buffered_bytes(), 16u * 1024);
}

TEST(ProtocolFrame, RandomGarbageNeverCrashes) {
  std::mt19937 rng(42);
  for (int round = 0; round < 2000; ++round) {
    std::string junk(rng() % 64, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    FrameDecoder d(1000, 4000);
    std::vector<Got> got;
    (void)FeedAll(d, junk, &got, 1 + rng() % 9);
  }
}

}  // namespace
}  // namespace edgespool::protocol
