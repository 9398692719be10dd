// libFuzzer: the batch frame decoder must reject or accept any bytes without
// crashing or over-reading; an accepted frame re-encodes to one that decodes
// to the same records, seal fields (message-level encryption) included.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "sync/batch/batch_frame.h"

namespace {

using namespace edgespool::batch;

// Re-encodes records [.., ..) into frames (a sealed record after a plain one
// starts a new frame, as the sync worker does) and checks every field.
void RoundTrip(const Frame& frame, const DecodeLimits& limits) {
  FrameEncoder enc(frame.node, Codec::kNone, 1);
  std::vector<Record> back;
  auto finish = [&] {
    auto bytes = enc.Finish();
    if (!bytes.ok()) abort();
    auto again = DecodeFrame(*bytes, limits);
    if (!again.ok()) abort();
    for (auto& r : again->records) back.push_back(std::move(r));
  };
  for (const auto& r : frame.records) {
    if (!enc.CanAdd(r.seal.has_value())) finish();
    enc.Add(r.seq, r.ts_ms, r.topic, r.id, r.headers, r.payload, r.seal ? &*r.seal : nullptr);
  }
  finish();
  if (back.size() != frame.records.size()) abort();
  for (size_t i = 0; i < back.size(); ++i) {
    const Record& a = frame.records[i];
    const Record& b = back[i];
    if (a.payload != b.payload || a.headers != b.headers || a.seq != b.seq) abort();
    if (a.seal.has_value() != b.seal.has_value()) abort();
    if (a.seal && (a.seal->key_id != b.seal->key_id || a.seal->nonce != b.seal->nonce)) abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  DecodeLimits limits;
  limits.max_body_bytes = 1 << 20;
  limits.max_records = 10000;
  auto frame = DecodeFrame(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!frame.ok()) return 0;
  RoundTrip(*frame, limits);
  return 0;
}
