#include "agent/downlink/topic_map.h"

#include "store/journal.h"

namespace edgespool::agent::downlink {

namespace {

void ReplaceAll(std::string* s, std::string_view from, std::string_view to) {
  for (size_t at = s->find(from); at != std::string::npos; at = s->find(from, at + to.size())) {
    s->replace(at, from.size(), to);
  }
}

// Counts the '/'-separated levels before a trailing '#'.
size_t LevelsBeforeHash(std::string_view filter) {
  size_t levels = 0;
  for (char c : filter.substr(0, filter.size() - 1)) levels += c == '/';
  return levels;
}

}  // namespace

std::string_view FilterSuffix(std::string_view filter, std::string_view topic) {
  if (filter.empty() || filter.back() != '#') return topic;
  size_t skip = LevelsBeforeHash(filter);
  size_t at = 0;
  for (size_t i = 0; i < skip; ++i) {
    size_t slash = topic.find('/', at);
    if (slash == std::string_view::npos) return {};  // "a/#" matched "a" itself
    at = slash + 1;
  }
  return topic.substr(at);
}

std::optional<MappedTopic> TopicMap::Map(std::string_view broker_topic) const {
  for (const TopicMapping& m : mappings_) {
    if (!store::TopicMatches(m.filter, broker_topic)) continue;
    MappedTopic out;
    out.mapping = &m;
    out.local_topic = m.local_topic;
    ReplaceAll(&out.local_topic, "{topic}", broker_topic);
    ReplaceAll(&out.local_topic, "{suffix}", FilterSuffix(m.filter, broker_topic));
    // "down/{suffix}" with an empty suffix ("a/#" matched "a") would end in
    // '/': a topic level that says nothing; drop it.
    while (out.local_topic.size() > 1 && out.local_topic.back() == '/') out.local_topic.pop_back();
    if (out.local_topic.empty()) out.local_topic = std::string(broker_topic);
    return out;
  }
  return std::nullopt;
}

std::vector<std::string> TopicMap::Filters() const {
  std::vector<std::string> out;
  for (const TopicMapping& m : mappings_) out.push_back(m.filter);
  return out;
}

}  // namespace edgespool::agent::downlink
