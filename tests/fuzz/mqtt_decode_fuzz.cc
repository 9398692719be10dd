// libFuzzer target: the MQTT frame splitter and strict decoder on arbitrary
// bytes. Byte 0 picks the protocol level and the chunking; the rest is the
// stream. Every decoded packet is re-encoded and decoded again: what the
// decoder accepts, the encoder must reproduce byte for byte.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "sync/mqtt/codec.h"

using namespace edgespool;
using namespace edgespool::sync::mqtt;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t level = (data[0] & 1) ? kProtocol5 : kProtocol311;
  size_t chunk = 1 + (data[0] >> 1);  // 1..128
  uint32_t max_packet = (data[0] & 0x80) ? 256 : kMaxPacketSize;
  std::string_view stream(reinterpret_cast<const char*>(data + 1), size - 1);

  FrameSplitter splitter(max_packet);
  for (size_t pos = 0; pos < stream.size(); pos += chunk) {
    Status st = splitter.Feed(stream.substr(pos, chunk), [&](const Frame& f) {
      if (f.body.size() + 2 > f.wire_size) abort();  // a frame is never larger than its bytes
      auto packet = Decode(f, level);
      if (!packet.ok()) {
        if (packet.status().code() != Code::kProtocolError) abort();
        return Status::Ok();
      }
      std::string once;
      EncodePacket(packet.value(), level, &once);
      auto again = DecodeOne(once, level);
      if (!again.ok()) abort();
      std::string twice;
      EncodePacket(again.value(), level, &twice);
      if (once != twice) abort();
      return Status::Ok();
    });
    if (!st.ok()) break;
  }
  // One-shot decoding of the whole input must never over-read either.
  (void)DecodeOne(stream, level, max_packet);
  return 0;
}
