// A strict parser for the Prometheus text exposition format 0.0.4, used by
// the metrics and HTTP server tests to check every line of what /metrics
// serves. Stricter than Prometheus itself where our output must be tidy: no
// stray comments, no timestamps, HELP and TYPE once per family and before its
// samples, a family's samples contiguous, histograms complete and cumulative.
#pragma once

#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace edgespool::agent::testing {

struct Exposition {
  // "name{a=\"x\",le=\"+Inf\"}" (labels sorted, unescaped values) -> value
  std::map<std::string, double> samples;
  std::map<std::string, std::string> help;  // family -> unescaped help
  std::map<std::string, std::string> type;  // family -> type
  std::string error;                        // empty when the text is valid
  bool ok() const { return error.empty(); }
  bool Has(const std::string& key) const { return samples.count(key) != 0; }
  double At(const std::string& key) const {
    auto it = samples.find(key);
    return it == samples.end() ? std::nan("") : it->second;
  }
};

namespace internal {

inline bool IsNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
inline bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

inline bool TakeMetricName(std::string_view* s, std::string* out) {
  size_t i = 0;
  if (s->empty() || !IsNameStart((*s)[0])) return false;
  while (i < s->size() && IsNameChar((*s)[i])) ++i;
  *out = std::string(s->substr(0, i));
  s->remove_prefix(i);
  return true;
}

inline bool TakeLabelName(std::string_view* s, std::string* out) {
  size_t i = 0;
  if (s->empty() || !IsNameStart((*s)[0]) || (*s)[0] == ':') return false;
  while (i < s->size() && IsNameChar((*s)[i]) && (*s)[i] != ':') ++i;
  *out = std::string(s->substr(0, i));
  s->remove_prefix(i);
  return true;
}

// A label value after its opening quote, up to and including the closing one.
inline bool TakeLabelValue(std::string_view* s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s->size(); ++i) {
    char c = (*s)[i];
    if (c == '"') {
      s->remove_prefix(i + 1);
      return true;
    }
    if (c == '\n') return false;
    if (c == '\\') {
      if (++i == s->size()) return false;
      char e = (*s)[i];
      if (e == '\\')
        out->push_back('\\');
      else if (e == '"')
        out->push_back('"');
      else if (e == 'n')
        out->push_back('\n');
      else
        return false;
      continue;
    }
    out->push_back(c);
  }
  return false;
}

inline bool ParseValue(std::string_view s, double* out) {
  if (s == "+Inf") {
    *out = HUGE_VAL;
    return true;
  }
  if (s == "-Inf") {
    *out = -HUGE_VAL;
    return true;
  }
  if (s == "NaN") {
    *out = std::nan("");
    return true;
  }
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return false;
    }
  }
  std::string copy(s);
  char* end = nullptr;
  *out = std::strtod(copy.c_str(), &end);
  return end == copy.c_str() + copy.size();
}

inline bool UnescapeHelp(std::string_view s, std::string* out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\') {
      out->push_back(s[i]);
      continue;
    }
    if (++i == s.size()) return false;
    if (s[i] == '\\')
      out->push_back('\\');
    else if (s[i] == 'n')
      out->push_back('\n');
    else
      return false;
  }
  return true;
}

inline bool EndsWith(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

}  // namespace internal

inline Exposition ParseExposition(std::string_view text) {
  using namespace internal;
  Exposition r;
  if (!text.empty() && text.back() != '\n') {
    r.error = "text does not end with a newline";
    return r;
  }
  std::string family;  // the family whose samples we are in
  std::set<std::string> finished;
  std::set<std::string> has_samples;
  // Histogram bookkeeping per series (labels without le).
  struct Hist {
    std::vector<std::pair<double, double>> buckets;  // le, cumulative count
    bool has_sum = false, has_count = false;
    double count = 0;
  };
  std::map<std::string, Hist> hists;
  size_t line_no = 0;
  auto fail = [&](const std::string& why, std::string_view line) {
    r.error = "line " + std::to_string(line_no) + ": " + why + ": '" + std::string(line) + "'";
    return r;
  };
  while (!text.empty()) {
    ++line_no;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    if (line.empty()) return fail("empty line", line);
    if (line[0] == '#') {
      bool is_help = line.substr(0, 7) == "# HELP ";
      bool is_type = line.substr(0, 7) == "# TYPE ";
      if (!is_help && !is_type) return fail("comment other than HELP/TYPE", line);
      std::string_view rest = line.substr(7);
      std::string name;
      if (!TakeMetricName(&rest, &name)) return fail("bad metric name", line);
      if (rest.empty() || rest[0] != ' ') return fail("no space after name", line);
      rest.remove_prefix(1);
      if (name != family) {
        if (!family.empty()) finished.insert(family);
        if (finished.count(name)) return fail("family appears twice", line);
        family = name;
      }
      if (has_samples.count(name)) return fail("HELP/TYPE after samples", line);
      if (is_help) {
        if (r.help.count(name)) return fail("second HELP", line);
        std::string h;
        if (!UnescapeHelp(rest, &h)) return fail("bad escape in HELP", line);
        r.help[name] = h;
      } else {
        if (r.type.count(name)) return fail("second TYPE", line);
        if (rest != "counter" && rest != "gauge" && rest != "histogram" && rest != "summary" &&
            rest != "untyped") {
          return fail("unknown type", line);
        }
        r.type[name] = std::string(rest);
      }
      continue;
    }
    std::string name;
    std::string_view rest = line;
    if (!TakeMetricName(&rest, &name)) return fail("bad metric name", line);
    std::map<std::string, std::string> labels;
    if (!rest.empty() && rest[0] == '{') {
      rest.remove_prefix(1);
      while (true) {
        std::string lname, lvalue;
        if (!TakeLabelName(&rest, &lname)) return fail("bad label name", line);
        if (rest.substr(0, 2) != "=\"") return fail("expected =\"", line);
        rest.remove_prefix(2);
        if (!TakeLabelValue(&rest, &lvalue)) return fail("bad label value", line);
        if (!labels.emplace(lname, lvalue).second) return fail("duplicate label", line);
        if (!rest.empty() && rest[0] == ',') {
          rest.remove_prefix(1);
          continue;
        }
        if (!rest.empty() && rest[0] == '}') {
          rest.remove_prefix(1);
          break;
        }
        return fail("expected , or }", line);
      }
    }
    if (rest.empty() || rest[0] != ' ') return fail("no space before value", line);
    rest.remove_prefix(1);
    double value;
    if (!ParseValue(rest, &value)) return fail("bad value (or a timestamp)", line);
    // Which family does this sample belong to?
    if (family.empty() || !r.type.count(family) || !r.help.count(family)) {
      return fail("sample before its HELP and TYPE", line);
    }
    const std::string& type = r.type[family];
    has_samples.insert(family);
    if (type == "histogram") {
      if (name != family + "_bucket" && name != family + "_sum" && name != family + "_count") {
        return fail("sample outside its family", line);
      }
    } else if (name != family) {
      return fail("sample outside its family", line);
    }
    if (type == "counter" && (!EndsWith(family, "_total") || value < 0)) {
      return fail("counter without _total or negative", line);
    }
    std::string key = name;
    std::string series_key = family;
    {
      std::string lab, series_lab;
      for (const auto& [k, v] : labels) {
        std::string part = k + "=\"" + v + "\"";
        lab += (lab.empty() ? "" : ",") + part;
        if (k != "le") series_lab += (series_lab.empty() ? "" : ",") + part;
      }
      if (!lab.empty()) key += "{" + lab + "}";
      series_key += "{" + series_lab + "}";
    }
    if (!r.samples.emplace(key, value).second) return fail("duplicate series", line);
    if (type == "histogram") {
      Hist& h = hists[series_key];
      if (name == family + "_bucket") {
        auto le = labels.find("le");
        double bound;
        if (le == labels.end() || !ParseValue(le->second, &bound))
          return fail("bucket without le", line);
        if (!h.buckets.empty() && !(bound > h.buckets.back().first)) {
          return fail("le not increasing", line);
        }
        if (!h.buckets.empty() && value < h.buckets.back().second) {
          return fail("buckets not cumulative", line);
        }
        if (h.has_sum || h.has_count) return fail("bucket after _sum/_count", line);
        h.buckets.emplace_back(bound, value);
      } else if (labels.count("le")) {
        return fail("le on _sum/_count", line);
      } else if (name == family + "_sum") {
        h.has_sum = true;
      } else {
        h.has_count = true;
        h.count = value;
      }
    }
  }
  for (const auto& [series, h] : hists) {
    if (h.buckets.empty() || !std::isinf(h.buckets.back().first)) {
      r.error = series + ": buckets do not end with +Inf";
      return r;
    }
    if (!h.has_sum || !h.has_count) {
      r.error = series + ": missing _sum or _count";
      return r;
    }
    if (h.count != h.buckets.back().second) {
      r.error = series + ": _count differs from the +Inf bucket";
      return r;
    }
  }
  for (const auto& [f, t] : r.type) {
    if (!r.help.count(f)) {
      r.error = f + ": TYPE without HELP";
      return r;
    }
  }
  return r;
}

}  // namespace edgespool::agent::testing
