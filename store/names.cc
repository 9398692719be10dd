// Small pure functions of the journal's door: enum names and MQTT topic
// filter matching.
#include "store/journal.h"

namespace edgespool::store {

const char* PriorityName(Priority p) {
  switch (p) {
    case Priority::kHigh: return "high";
    case Priority::kNormal: return "normal";
    case Priority::kLow: return "low";
  }
  return "normal";
}

const char* MessageStateName(MessageState s) {
  switch (s) {
    case MessageState::kPending: return "pending";
    case MessageState::kSent: return "sent";
    case MessageState::kDead: return "dead";
    case MessageState::kExpired: return "expired";
    case MessageState::kUnknown: return "unknown";
    case MessageState::kScheduled: return "scheduled";
  }
  return "unknown";
}

// MQTT 3.1.1 section 4.7: '+' matches exactly one level (possibly empty),
// '#' (last level only) matches the parent and everything below it. Filters
// starting with a wildcard do not match topics starting with '$'. An invalid
// filter ('#' not last, wildcard sharing a level) matches nothing.
bool TopicMatches(std::string_view filter, std::string_view topic) {
  if (filter.empty()) return false;
  if (!topic.empty() && topic[0] == '$' && (filter[0] == '+' || filter[0] == '#')) return false;
  size_t f = 0, t = 0;
  while (true) {
    size_t f_end = filter.find('/', f);
    std::string_view f_level =
        filter.substr(f, f_end == std::string_view::npos ? std::string_view::npos : f_end - f);
    if (f_level == "#") return f_end == std::string_view::npos;  // "a/#" also matches "a"
    if (t > topic.size()) return false;  // topic exhausted but filter has more levels
    size_t t_end = topic.find('/', t);
    std::string_view t_level =
        topic.substr(t, t_end == std::string_view::npos ? std::string_view::npos : t_end - t);
    if (f_level == "+") {
      // matches any one level
    } else if (f_level.find_first_of("+#") != std::string_view::npos) {
      return false;  // wildcard inside a level: invalid filter
    } else if (f_level != t_level) {
      return false;
    }
    bool f_last = f_end == std::string_view::npos;
    bool t_last = t_end == std::string_view::npos;
    if (f_last) return t_last;
    f = f_end + 1;
    t = t_last ? topic.size() + 1 : t_end + 1;
  }
}

}  // namespace edgespool::store
