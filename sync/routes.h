// Routes: which rules apply to a local topic on its way up. The first route
// whose `match` (an MQTT filter) matches the local topic decides; a final
// catch-all route always exists.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/journal.h"

namespace edgespool::sync {

enum class UploadMode { kMessage, kBatch };
enum class UploadOrder { kStrict, kLiveFirst };

struct Route {
  std::string match = "#";
  std::optional<store::Priority> priority;  // overrides the producer's
  int64_t ttl_ms = 0;                       // expiry when the producer gave none
  UploadMode mode = UploadMode::kMessage;
  UploadOrder order = UploadOrder::kStrict;
  // {topic}: the local topic; {node}: node id; {1}..{9}: a level of the local
  // topic; {part:N}: its partition among N (TopicPartition), for scale-out.
  std::string upstream_topic = "{topic}";
  // Seal payloads before they are stored (agent/encryption.h). The sync
  // worker needs nothing of it: a sealed row says so in its es-enc header.
  bool encrypt = false;
};

class RouteTable {
 public:
  // Appends a catch-all route with `default_mode` if the last route is not one.
  RouteTable(std::vector<Route> routes, std::string node, UploadMode default_mode);
  // Index of the route for topic (always valid).
  size_t Find(std::string_view topic) const;
  const Route& route(size_t i) const { return routes_[i]; }
  size_t size() const { return routes_.size(); }
  // The topic to publish on upstream.
  std::string UpstreamTopic(size_t route, std::string_view topic) const;

 private:
  std::vector<Route> routes_;
  std::string node_;
};

// The partition of a local topic among `partitions` (FNV-1a 32 of its bytes,
// modulo): what {part:N} expands to, and what `edgespool consume
// --partitions N` assumes (docs/central.md). 0 when partitions is 0.
uint32_t TopicPartition(std::string_view topic, uint32_t partitions);

// Expands {node}, {topic}, {N} (N-th level, 1-based; empty if absent) and
// {part:N} (TopicPartition of the local topic among N, 1 <= N <= 100000).
std::string ExpandTopicTemplate(std::string_view tmpl, std::string_view node,
                                std::string_view topic);

}  // namespace edgespool::sync
