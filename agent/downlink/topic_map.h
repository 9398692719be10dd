// TopicMap: which broker topics the agent subscribes to on the uplink, and
// the local topic each inbound message is stored under (docs/downlink.md,
// "Local topics").
//
// A mapping is a broker filter and a local-topic template: `{topic}` is the
// whole broker topic, `{suffix}` what the filter's trailing `#` matched (the
// whole topic if the filter has none). The first mapping whose filter
// matches wins, so the built-in downlink filter (listed first) decides for
// edgespool/{node}/down/... even if a [[subscription]] overlaps it.
//
// Immutable after construction; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgespool::agent::downlink {

struct TopicMapping {
  std::string filter;                 // broker filter, {node} already expanded
  std::string local_topic = "{topic}";
  uint64_t max_message_bytes = 0;     // 0: no limit of its own
  int64_t ttl_ms = 0;                 // 0: none
};

struct MappedTopic {
  std::string local_topic;
  const TopicMapping* mapping = nullptr;
};

class TopicMap {
 public:
  explicit TopicMap(std::vector<TopicMapping> mappings) : mappings_(std::move(mappings)) {}

  // nullopt when no filter matches (a broker that sends what we did not ask
  // for: counted and acknowledged by the caller, never stored).
  std::optional<MappedTopic> Map(std::string_view broker_topic) const;
  std::vector<std::string> Filters() const;
  const std::vector<TopicMapping>& mappings() const { return mappings_; }

 private:
  std::vector<TopicMapping> mappings_;
};

// What `{suffix}` stands for: the part of topic a trailing "/#" (or a lone
// "#") of filter matched; the whole topic if the filter has no '#'.
std::string_view FilterSuffix(std::string_view filter, std::string_view topic);

}  // namespace edgespool::agent::downlink
