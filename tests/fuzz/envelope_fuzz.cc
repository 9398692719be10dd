// libFuzzer target: the 3.1.1 request/reply envelope (agent/protocol/
// envelope.h), the one format the agent parses out of MQTT payloads from the
// broker (answers to its requests, calls of its methods). What parses must
// re-encode to an envelope that parses to the same fields and payload, and
// every refusal says why.
//
//   build/fuzz/tests/fuzz/envelope_fuzz tests/fuzz/corpus/envelope_fuzz
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/protocol/envelope.h"

using namespace edgespool::protocol;  // NOLINT: a fuzz driver

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  Envelope e;
  std::string_view payload;
  std::string error;
  if (!ParseEnvelope(bytes, &e, &payload, &error)) {
    if (error.empty()) __builtin_trap();
    return 0;
  }
  if (payload.data() < bytes.data() || payload.data() + payload.size() != bytes.data() + size) {
    __builtin_trap();  // the payload is the tail of the input, in place
  }
  std::string again = EncodeEnvelope(e, payload);
  Envelope e2;
  std::string_view payload2;
  if (!ParseEnvelope(again, &e2, &payload2, &error)) __builtin_trap();
  if (e2.correlation != e.correlation || e2.response_topic != e.response_topic ||
      e2.timeout_ms != e.timeout_ms || e2.error != e.error || e2.message != e.message ||
      payload2 != payload) {
    __builtin_trap();
  }
  return 0;
}
