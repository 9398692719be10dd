// `edgespool consume`'s output line.
#include <gtest/gtest.h>

#include "agent/cli/consume.h"

namespace edgespool::agent {
namespace {

TEST(ConsumeJsonTest, FieldsAndHexForBytes) {
  central::Message m;
  m.node = "gw1";
  m.seq = 42;
  m.id = "m-42";
  m.topic = "sensors/t0";
  m.ts_ms = 1765000000123;
  m.headers = {{"unit", "C"}, {"raw", std::string("\xff\x00", 2)}};
  m.payload = "{\"t\":21.5}";
  EXPECT_EQ(ConsumedJson(m),
            R"({"node":"gw1","seq":42,"id":"m-42","topic":"sensors/t0","ts":1765000000123,)"
            R"("headers":{"unit":"C"},"headers_hex":{"raw":"ff00"},"payload":"{\"t\":21.5}",)"
            R"("late":false})");
  m.headers.clear();
  m.payload = std::string("\x01\xfe", 2);
  m.late = true;
  EXPECT_EQ(ConsumedJson(m),
            R"({"node":"gw1","seq":42,"id":"m-42","topic":"sensors/t0","ts":1765000000123,)"
            R"("headers":{},"payload_hex":"01fe","late":true})");
}

}  // namespace
}  // namespace edgespool::agent
