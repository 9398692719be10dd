// libFuzzer: the fleet view reads status documents that anyone allowed to
// publish on the status topic can write (agent/fleet/fleet_model.h). Any
// bytes must be applied or refused without crashing, and the model must stay
// consistent: never more than max_nodes nodes, counts that add up, an order
// that is worst first, and rows that are valid JSON.
//
// Input: records separated by '\0'; each is "<flags byte><topic>\n<payload>"
// (flags bit 0: retained; bits 1-7: seconds to advance the clock first).
#include <cJSON.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "agent/fleet/fleet_model.h"
#include "agent/fleet/render.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgespool::agent::fleet;
  FleetOptions o;
  o.max_nodes = 8;
  o.stale_ms = 30000;
  FleetModel model(o);
  int64_t now = 1'800'000'000'000;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  while (!in.empty()) {
    size_t end = in.find('\0');
    std::string_view record = in.substr(0, end);
    in.remove_prefix(end == std::string_view::npos ? in.size() : end + 1);
    if (record.empty()) continue;
    uint8_t flags = static_cast<uint8_t>(record[0]);
    record.remove_prefix(1);
    size_t nl = record.find('\n');
    std::string_view topic = record.substr(0, nl);
    std::string_view payload = nl == std::string_view::npos ? "" : record.substr(nl + 1);
    now += (flags >> 1) * 1000;
    std::string node;
    FleetModel::Change c = model.Apply(topic, payload, flags & 1, now, &node);
    if (c != FleetModel::Change::kNone) Check(!node.empty());
    if (c == FleetModel::Change::kUpdated) Check(model.Find(node) != nullptr);
    if (c == FleetModel::Change::kRemoved) Check(model.Find(node) == nullptr);
    model.Refresh(now);
  }
  Check(model.size() <= o.max_nodes);
  FleetCounts counts = model.Counts(now);
  Check(counts.nodes == model.size());
  Check(counts.ok + counts.behind + counts.silent + counts.offline == counts.nodes);
  auto ranked = model.Ranked();
  for (size_t i = 1; i < ranked.size(); ++i) Check(!WorseThan(*ranked[i], *ranked[i - 1]));
  for (const NodeView* v : ranked) {
    std::string json = NodeJson(*v);
    cJSON* parsed = cJSON_ParseWithLength(json.data(), json.size());
    Check(parsed != nullptr);
    cJSON_Delete(parsed);
    Check(v->OldestPendingAgeS(now) >= 0);
  }
  (void)FleetTable(ranked, now);
  return 0;
}
