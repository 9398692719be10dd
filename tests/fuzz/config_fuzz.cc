// libFuzzer: the config parser takes any bytes as a file and either accepts
// them or reports problems — never a crash, a hang or an exception escaping.
// An accepted config renders to TOML that parses again to the same digest.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "agent/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgespool::agent;
  std::string text(reinterpret_cast<const char*>(data), size);
  LoadResult r = ParseConfig(text, "fuzz.toml", {});
  if (!r.ok()) {
    for (const auto& p : r.problems) {
      if (p.key.empty() || p.reason.empty()) abort();  // every problem says what and why
    }
    return 0;
  }
  LoadResult again = ParseConfig(RenderConfig(r.config), "rendered.toml", {});
  if (!again.ok() || ConfigDigest(again.config) != ConfigDigest(r.config)) abort();
  return 0;
}
