#include "sync/routes.h"

#include <cctype>

namespace edgespool::sync {

RouteTable::RouteTable(std::vector<Route> routes, std::string node, UploadMode default_mode)
    : routes_(std::move(routes)), node_(std::move(node)) {
  if (routes_.empty() || routes_.back().match != "#") {
    Route def;
    def.mode = default_mode;
    routes_.push_back(def);
  }
}

size_t RouteTable::Find(std::string_view topic) const {
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (store::TopicMatches(routes_[i].match, topic)) return i;
  }
  return routes_.size() - 1;  // unreachable: the last route matches everything
}

std::string RouteTable::UpstreamTopic(size_t route, std::string_view topic) const {
  const std::string& tmpl = routes_[route].upstream_topic;
  if (tmpl == "{topic}") return std::string(topic);  // the common case, no parsing
  return ExpandTopicTemplate(tmpl, node_, topic);
}

uint32_t TopicPartition(std::string_view topic, uint32_t partitions) {
  // FNV-1a, 32 bits: fixed forever, since agents and consumers of different
  // versions must agree on it.
  uint32_t h = 2166136261u;
  for (unsigned char c : topic) {
    h ^= c;
    h *= 16777619u;
  }
  return partitions ? h % partitions : 0;
}

std::string ExpandTopicTemplate(std::string_view tmpl, std::string_view node,
                                std::string_view topic) {
  std::string out;
  out.reserve(tmpl.size() + topic.size());
  for (size_t i = 0; i < tmpl.size();) {
    if (tmpl[i] == '{') {
      size_t close = tmpl.find('}', i);
      if (close != std::string_view::npos) {
        std::string_view name = tmpl.substr(i + 1, close - i - 1);
        if (name == "topic") {
          out.append(topic);
          i = close + 1;
          continue;
        }
        if (name == "node") {
          out.append(node);
          i = close + 1;
          continue;
        }
        if (name.substr(0, 5) == "part:") {
          uint32_t n = 0;
          for (char c : name.substr(5)) {
            if (c < '0' || c > '9' || n > 100000) {
              n = 0;
              break;
            }
            n = n * 10 + static_cast<uint32_t>(c - '0');
          }
          if (n > 0) {
            out.append(std::to_string(TopicPartition(topic, n)));
            i = close + 1;
            continue;
          }
        }
        if (name.size() == 1 && std::isdigit(static_cast<unsigned char>(name[0])) && name[0] != '0') {
          size_t level = static_cast<size_t>(name[0] - '0');
          size_t start = 0;
          for (size_t l = 1; l < level && start != std::string_view::npos; ++l) {
            start = topic.find('/', start);
            if (start != std::string_view::npos) ++start;
          }
          if (start != std::string_view::npos) {
            size_t end = topic.find('/', start);
            out.append(topic.substr(start, end == std::string_view::npos ? end : end - start));
          }
          i = close + 1;
          continue;
        }
      }
    }
    out.push_back(tmpl[i++]);
  }
  return out;
}

}  // namespace edgespool::sync
