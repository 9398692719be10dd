#include "agent/config/value.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string_view>

#include "platform/json_escape.h"

namespace edgespool::agent::config_detail {

namespace {

std::string& Str(const KeyDesc& d, void* owner) { return *static_cast<std::string*>(d.field(owner)); }
int64_t& Int(const KeyDesc& d, void* owner) { return *static_cast<int64_t*>(d.field(owner)); }
double& Double(const KeyDesc& d, void* owner) { return *static_cast<double*>(d.field(owner)); }
bool& Bool(const KeyDesc& d, void* owner) { return *static_cast<bool*>(d.field(owner)); }
std::vector<int64_t>& IntList(const KeyDesc& d, void* owner) {
  return *static_cast<std::vector<int64_t>*>(d.field(owner));
}
std::vector<std::string>& StringList(const KeyDesc& d, void* owner) {
  return *static_cast<std::vector<std::string>*>(d.field(owner));
}

bool InChoices(const char* choices, const std::string& v) {
  std::string_view all(choices);
  size_t start = 0;
  while (start <= all.size()) {
    size_t bar = all.find('|', start);
    std::string_view one = all.substr(start, bar == std::string_view::npos ? all.npos : bar - start);
    if (one == v) return true;
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  return false;
}

std::string ChoicesText(const char* choices) {
  std::string s = choices;
  std::replace(s.begin(), s.end(), '|', ',');
  return "one of " + s;
}

bool ParseInt(const std::string& s, int64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (*end != '\0' || errno != 0) return false;
  *out = v;
  return true;
}

std::string OctalMode(int64_t m) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0%03" PRIo64, static_cast<uint64_t>(m));
  return buf;
}

// A range bound in the key's own unit, for messages.
std::string Bound(const KeyDesc& d, int64_t b) {
  if (b == INT64_MAX) return "max";
  if (d.kind == Kind::kDuration) return FormatDurationMs(b);
  if (d.kind == Kind::kSize) return FormatSizeBytes(b);
  if (d.kind == Kind::kMode) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0%" PRIo64, static_cast<uint64_t>(b));
    return buf;
  }
  return std::to_string(b);
}

void SetInt(const KeyDesc& d, const std::string& name, void* owner, int64_t v, int line,
            const ProblemSink& problems) {
  if (v < d.min || v > d.max) {
    return problems.Add(line, name, "value " + std::to_string(v) + " out of range [" +
                                        Bound(d, d.min) + ", " + Bound(d, d.max) + "]");
  }
  Int(d, owner) = v;
}

void SetDouble(const KeyDesc& d, const std::string& name, void* owner, double v, int line,
               const ProblemSink& problems) {
  if (d.kind == Kind::kFraction && !(v > 0.0 && v <= 1.0)) {
    return problems.Add(line, name, "expected a fraction in (0, 1]");
  }
  if (d.kind == Kind::kNumber && !(v >= 0.0)) return problems.Add(line, name, "must not be negative");
  Double(d, owner) = v;
}

void SetWeights(const KeyDesc& d, const std::string& name, void* owner,
                const std::vector<int64_t>& v, int line, const ProblemSink& problems) {
  if (v.size() != 3) return problems.Add(line, name, "expected 3 weights: high, normal, low");
  for (int64_t x : v) {
    if (x < d.min || x > d.max) {
      return problems.Add(line, name, "weights must be in [" + std::to_string(d.min) + ", " +
                                          std::to_string(d.max) + "]");
    }
  }
  IntList(d, owner) = v;
}

bool IsStringList(Kind k) {
  return k == Kind::kFilterList || k == Kind::kStringList || k == Kind::kUrlList;
}

// A kUrlList must name at least one URL, each non-empty (the scheme is
// checked with the rest of the uplink, checks.cc).
void SetUrlList(const KeyDesc& d, const std::string& name, void* owner,
                std::vector<std::string> v, int line, const ProblemSink& problems) {
  if (v.empty()) return problems.Add(line, name, "expected at least one broker URL");
  for (const std::string& u : v) {
    if (u.empty()) return problems.Add(line, name, "a broker URL is empty");
  }
  StringList(d, owner) = std::move(v);
}

// Comma-separated, blanks around each item trimmed ("mqtt://a, mqtt://b").
std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(" \t");
    size_t e = item.find_last_not_of(" \t");
    out.push_back(b == std::string::npos ? "" : item.substr(b, e - b + 1));
  }
  return out;
}

// kWeights and the string lists from a TOML array; false if an element has
// the wrong type.
bool ListFromNode(const KeyDesc& d, const std::string& name, void* owner, const toml::array& arr,
                  int check_line, const ProblemSink& problems) {
  if (IsStringList(d.kind)) {
    std::vector<std::string> v;
    for (const auto& e : arr) {
      if (!e.is_string()) return false;
      v.push_back(*e.value<std::string>());
    }
    if (d.kind == Kind::kUrlList) {
      SetUrlList(d, name, owner, std::move(v), check_line, problems);
    } else {
      StringList(d, owner) = std::move(v);
    }
    return true;
  }
  std::vector<int64_t> v;
  for (const auto& e : arr) {
    if (!e.is_integer()) return false;
    v.push_back(*e.value<int64_t>());
  }
  SetWeights(d, name, owner, v, check_line, problems);
  return true;
}

// The reason given when a TOML node has the wrong type for the kind.
const char* Expected(Kind kind) {
  switch (kind) {
    case Kind::kString:
    case Kind::kEnum: return "expected a string";
    case Kind::kInt: return "expected an integer";
    case Kind::kBool: return "expected true or false";
    case Kind::kDuration: return "expected a duration string with a unit, like \"30s\"";
    case Kind::kSize: return "expected a size like \"256MiB\"";
    case Kind::kMode: return "expected an octal string like \"0660\"";
    case Kind::kFraction:
    case Kind::kNumber: return "expected a number";
    case Kind::kWeights: return "expected an array of integers";
    case Kind::kFilterList: return "expected an array of topic filters";
    case Kind::kStringList: return "expected an array of strings";
    case Kind::kUrlList: return "expected a URL string or an array of them";
  }
  return "unexpected type";
}

// Text forms that need parsing: modes, durations, sizes, numbers, lists.
void SetParsedText(const KeyDesc& d, const std::string& name, void* owner, const std::string& s,
                   int line, const ProblemSink& problems) {
  std::string why;
  int64_t v = 0;
  switch (d.kind) {
    case Kind::kMode: {
      char* end = nullptr;
      errno = 0;
      long m = std::strtol(s.c_str(), &end, 8);
      if (s.empty() || *end != '\0' || errno != 0) {
        return problems.Add(line, name, "\"" + s + "\" is not an octal mode like \"0660\"");
      }
      return SetInt(d, name, owner, m, line, problems);
    }
    case Kind::kDuration:
      if (!ParseDurationMs(s, &v, &why)) return problems.Add(line, name, why);
      return SetInt(d, name, owner, v, line, problems);
    case Kind::kSize:
      if (!ParseSizeBytes(s, &v, &why)) return problems.Add(line, name, why);
      return SetInt(d, name, owner, v, line, problems);
    case Kind::kFraction:
    case Kind::kNumber: {
      char* end = nullptr;
      double x = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0') return problems.Add(line, name, "\"" + s + "\" is not a number");
      return SetDouble(d, name, owner, x, line, problems);
    }
    case Kind::kWeights: {
      std::vector<int64_t> list;
      std::stringstream ss(s);
      std::string item;
      while (std::getline(ss, item, ',')) {
        if (!ParseInt(item, &v)) {
          return problems.Add(line, name, "\"" + s + "\" is not a list like 70,20,10");
        }
        list.push_back(v);
      }
      return SetWeights(d, name, owner, list, line, problems);
    }
    case Kind::kUrlList:
      return SetUrlList(d, name, owner, SplitCommas(s), line, problems);
    default:
      return problems.Add(line, name, "cannot be set from text; set it in the file");
  }
}

// The shortest text that reads back as the same double ("0.8", "1048576").
std::string RenderDouble(double v) {
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string RedactUrl(const std::string& url);

std::string RenderList(const KeyDesc& d, void* owner) {
  std::string out = "[";
  if (IsStringList(d.kind)) {
    const auto& v = StringList(d, owner);
    auto item = [&d](const std::string& x) { return Quote(d.secret ? RedactUrl(x) : x); };
    // One URL renders as the plain string it was before lists existed.
    if (d.kind == Kind::kUrlList && v.size() == 1) return item(v[0]);
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + item(v[i]);
  } else {
    const auto& v = IntList(d, owner);
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  }
  return out + "]";
}

std::string RedactUrl(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto at = url.find('@', scheme + 3);
  auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && at > slash)) return url;
  return url.substr(0, scheme + 3) + "<redacted>@" + url.substr(at + 1);
}

}  // namespace

void SetFromNode(const KeyDesc& d, const std::string& name, void* owner, const toml::node& n,
                 int check_line, const ProblemSink& problems) {
  int line = static_cast<int>(n.source().begin.line);
  // Kinds written as text in TOML; an integer, bool, number or list given as
  // a string is a type error, as it would be for TOML itself.
  bool text_kind = d.kind == Kind::kString || d.kind == Kind::kEnum || d.kind == Kind::kMode ||
                   d.kind == Kind::kDuration || d.kind == Kind::kSize;
  if ((text_kind || d.kind == Kind::kUrlList) && n.is_string()) return SetFromText(d, name, owner, *n.value<std::string>(), check_line, problems);
  switch (d.kind) {
    case Kind::kInt:
    case Kind::kMode:
    case Kind::kSize:
      if (!n.is_integer()) break;
      return SetInt(d, name, owner, *n.value<int64_t>(), check_line, problems);
    case Kind::kBool:
      if (!n.is_boolean()) break;
      Bool(d, owner) = *n.value<bool>();
      return;
    case Kind::kFraction:
    case Kind::kNumber:
      if (!n.is_number()) break;
      return SetDouble(d, name, owner, *n.value<double>(), check_line, problems);
    case Kind::kWeights:
    case Kind::kFilterList:
    case Kind::kStringList:
    case Kind::kUrlList:
      if (!n.is_array() || !ListFromNode(d, name, owner, *n.as_array(), check_line, problems)) break;
      return;
    default:
      break;  // a string kind given something else, or a duration given a number
  }
  problems.Add(line, name, Expected(d.kind));
}

void SetFromText(const KeyDesc& d, const std::string& name, void* owner, const std::string& s,
                 int line, const ProblemSink& problems) {
  int64_t v = 0;
  switch (d.kind) {
    case Kind::kString:
      Str(d, owner) = s;
      return;
    case Kind::kEnum:
      if (!InChoices(d.choices, s)) {
        return problems.Add(line, name, "\"" + s + "\" is not " + ChoicesText(d.choices));
      }
      Str(d, owner) = s;
      return;
    case Kind::kInt:
      if (!ParseInt(s, &v)) return problems.Add(line, name, "\"" + s + "\" is not an integer");
      return SetInt(d, name, owner, v, line, problems);
    case Kind::kBool:
      if (s == "true" || s == "1") {
        Bool(d, owner) = true;
      } else if (s == "false" || s == "0") {
        Bool(d, owner) = false;
      } else {
        problems.Add(line, name, "\"" + s + "\" is not true or false");
      }
      return;
    default:
      return SetParsedText(d, name, owner, s, line, problems);
  }
}

bool IsShown(const KeyDesc& d, void* owner) {
  switch (d.show) {
    case Show::kAlways: return true;
    case Show::kNever: return false;
    case Show::kUnlessNegative: return Int(d, owner) >= 0;
    case Show::kUnlessEmpty:
      if (d.storage == Storage::kString) return !Str(d, owner).empty();
      if (d.storage == Storage::kDouble) return Double(d, owner) != 0;
      return Int(d, owner) != 0;
  }
  return true;
}

std::string RenderValue(const KeyDesc& d, void* owner) {
  switch (d.kind) {
    case Kind::kString:
    case Kind::kEnum: return Quote(d.secret ? RedactUrl(Str(d, owner)) : Str(d, owner));
    case Kind::kInt: return std::to_string(Int(d, owner));
    case Kind::kBool: return Bool(d, owner) ? "true" : "false";
    case Kind::kDuration: return Quote(FormatDurationMs(Int(d, owner)));
    case Kind::kSize: return Quote(FormatSizeBytes(Int(d, owner)));
    case Kind::kMode: return "\"" + OctalMode(Int(d, owner)) + "\"";
    case Kind::kFraction:
    case Kind::kNumber: return RenderDouble(Double(d, owner));
    case Kind::kWeights:
    case Kind::kFilterList:
    case Kind::kStringList:
    case Kind::kUrlList: return RenderList(d, owner);
  }
  return "";
}

// TOML basic strings take the same escapes as JSON strings (DEL included).
std::string Quote(const std::string& s) {
  std::string out;
  platform::AppendJsonString(&out, s);
  return out;
}

}  // namespace edgespool::agent::config_detail
