// libFuzzer: the batch frame decoder must reject or accept any bytes without
// crashing or over-reading; an accepted frame re-encodes to one that decodes
// to the same records.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "sync/batch/batch_frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgespool::batch;
  DecodeLimits limits;
  limits.max_body_bytes = 1 << 20;
  limits.max_records = 10000;
  auto frame = DecodeFrame(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!frame.ok()) return 0;
  FrameEncoder enc(frame->node, Codec::kNone, 1);
  for (const auto& r : frame->records) enc.Add(r.seq, r.ts_ms, r.topic, r.id, r.headers, r.payload);
  auto again = DecodeFrame(*enc.Finish(), limits);
  if (!again.ok() || again->records.size() != frame->records.size()) abort();
  for (size_t i = 0; i < frame->records.size(); ++i) {
    if (again->records[i].payload != frame->records[i].payload) abort();
  }
  return 0;
}
