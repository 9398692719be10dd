#include "agent/http/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace edgespool::agent {

namespace {

// A registration that breaks the naming rules is a bug in the agent, caught
// by the first test that builds the registry: abort with the reason.
[[noreturn]] void RegistrationError(std::string_view name, std::string_view why) {
  std::fprintf(stderr, "edgespool: bad metric registration '%.*s': %.*s\n",
               static_cast<int>(name.size()), name.data(), static_cast<int>(why.size()),
               why.data());
  std::abort();
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

constexpr std::string_view kPrefix = "edgespool_";

}  // namespace

bool IsValidMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = IsAlpha(c) || c == '_' || c == ':' || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (!(IsAlpha(c) || c == '_' || (i > 0 && IsDigit(c)))) return false;
  }
  return true;
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlongs,
// no surrogates, nothing above U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char b = byte(i);
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // bounds of the second byte
  if (b >= 0xC2 && b <= 0xDF) {
    len = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    len = 3;
    if (b == 0xE0) lo = 0xA0;
    if (b == 0xED) hi = 0x9F;
  } else if (b >= 0xF0 && b <= 0xF4) {
    len = 4;
    if (b == 0xF0) lo = 0x90;
    if (b == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

// The format requires UTF-8; one bad byte from a producer's topic must not
// make Prometheus reject the whole scrape, so it becomes U+FFFD.
std::string Escape(std::string_view v, bool quotes) {
  std::string out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size();) {
    char c = v[i];
    if (static_cast<unsigned char>(c) >= 0x80) {
      size_t len = Utf8SequenceLength(v, i);
      if (len == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
      } else {
        out.append(v.substr(i, len));
        i += len;
      }
      continue;
    }
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && quotes) {
      out += "\\\"";
    } else {
      out.push_back(c);
    }
    ++i;
  }
  return out;
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) { return Escape(v, /*quotes=*/true); }
std::string EscapeHelp(std::string_view v) { return Escape(v, /*quotes=*/false); }

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Shortest round-trip form: 0.1 stays "0.1", not "0.10000000000000001".
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  return std::string(buf, end);
}

// --- metric types ----------------------------------------------------------

void Counter::Add(double amount) {
  if (!(amount >= 0) || std::isinf(amount)) return;  // also rejects NaN
  // Whole parts go to the exact integer; only the remainder is a double.
  // 1.8e19 < 2^64: beyond it a cast to uint64_t would be undefined.
  constexpr double kMaxExact = 1.8e19;
  double whole = std::floor(amount);
  if (whole < kMaxExact) {
    count_ += static_cast<uint64_t>(whole);
    amount -= whole;
  }
  fraction_ += amount;
  if (fraction_ >= 1 && fraction_ < kMaxExact) {
    double carry = std::floor(fraction_);
    count_ += static_cast<uint64_t>(carry);
    fraction_ -= carry;
  }
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i])) RegistrationError("histogram", "bucket bound not finite");
    if (i > 0 && !(bounds_[i] > bounds_[i - 1])) {
      RegistrationError("histogram", "bucket bounds must be strictly increasing");
    }
  }
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::Observe(double v) {
  if (std::isnan(v)) return;
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  ++counts_[i];  // i == bounds_.size() is the +Inf bucket
  ++count_;
  sum_ += v;
}

void SampleVec::Set(std::vector<std::string> values, double v) {
  if (values.size() != label_names_.size()) {
    RegistrationError("sample vector", "label values do not match the label names");
  }
  samples_.emplace_back(std::move(values), v);
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  double b = start;
  for (int i = 0; i < count; ++i, b *= factor) out.push_back(b);
  return out;
}

std::vector<double> LinearBuckets(double start, double width, int count) {
  std::vector<double> out;
  for (int i = 0; i < count; ++i) out.push_back(start + width * i);
  return out;
}

// --- registry ----------------------------------------------------------------

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  Type type;
  struct Child {
    MetricLabels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  std::vector<Child> children;
  std::vector<std::unique_ptr<SampleVec>> vecs;  // series filled per scrape
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Family* MetricsRegistry::FamilyFor(std::string_view name, std::string_view help,
                                                    Type type, const MetricLabels& labels) {
  if (!IsValidMetricName(name)) RegistrationError(name, "name must match [a-zA-Z_:][a-zA-Z0-9_:]*");
  if (name.substr(0, kPrefix.size()) != kPrefix || name.size() == kPrefix.size()) {
    RegistrationError(name, "name must start with edgespool_");
  }
  if (type == Type::kCounter && !EndsWith(name, "_total")) {
    RegistrationError(name, "counter names end in _total");
  }
  if (type != Type::kCounter && EndsWith(name, "_total")) {
    RegistrationError(name, "_total is reserved for counters");
  }
  if (help.empty()) RegistrationError(name, "HELP text is required");
  for (const auto& [label, value] : labels) {
    if (!IsValidLabelName(label))
      RegistrationError(name, "label name must match [a-zA-Z_][a-zA-Z0-9_]*");
    if (label.compare(0, 2, "__") == 0)
      RegistrationError(name, "label names starting __ are reserved");
    if (type == Type::kHistogram && label == "le") {
      RegistrationError(name, "histograms cannot have an le label");
    }
  }
  for (auto& f : families_) {
    // A histogram owns name_bucket/_sum/_count: nothing else may take them.
    if (f->name != name) {
      for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if ((f->type == Type::kHistogram && std::string(f->name) + std::string(suffix) == name) ||
            (type == Type::kHistogram && std::string(name) + std::string(suffix) == f->name)) {
          RegistrationError(name, "collides with a histogram's series");
        }
      }
      continue;
    }
    if (f->type != type) RegistrationError(name, "registered before with another type");
    if (f->help != help) RegistrationError(name, "registered before with other HELP text");
    for (const auto& child : f->children) {
      if (child.labels == labels) RegistrationError(name, "the same labels registered twice");
    }
    return f.get();
  }
  auto family = std::make_unique<Family>();
  family->name = std::string(name);
  family->help = std::string(help);
  family->type = type;
  families_.push_back(std::move(family));
  return families_.back().get();
}

Counter* MetricsRegistry::AddCounter(std::string_view name, std::string_view help,
                                     MetricLabels labels) {
  Family* f = FamilyFor(name, help, Type::kCounter, labels);
  f->children.push_back({std::move(labels), std::make_unique<Counter>(), nullptr, nullptr});
  return f->children.back().counter.get();
}

Gauge* MetricsRegistry::AddGauge(std::string_view name, std::string_view help,
                                 MetricLabels labels) {
  Family* f = FamilyFor(name, help, Type::kGauge, labels);
  f->children.push_back({std::move(labels), nullptr, std::make_unique<Gauge>(), nullptr});
  return f->children.back().gauge.get();
}

Histogram* MetricsRegistry::AddHistogram(std::string_view name, std::string_view help,
                                         std::vector<double> bounds, MetricLabels labels) {
  Family* f = FamilyFor(name, help, Type::kHistogram, labels);
  f->children.push_back(
      {std::move(labels), nullptr, nullptr, std::make_unique<Histogram>(std::move(bounds))});
  return f->children.back().histogram.get();
}

SampleVec* MetricsRegistry::AddVec(std::string_view name, std::string_view help, Type type,
                                   std::vector<std::string> label_names) {
  MetricLabels check;
  for (const auto& l : label_names) check[l] = "";
  if (check.size() != label_names.size()) RegistrationError(name, "a label name repeats");
  Family* f = FamilyFor(name, help, type, check);
  f->vecs.push_back(std::make_unique<SampleVec>(std::move(label_names)));
  return f->vecs.back().get();
}

SampleVec* MetricsRegistry::AddGaugeVec(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names) {
  return AddVec(name, help, Type::kGauge, std::move(label_names));
}

SampleVec* MetricsRegistry::AddCounterVec(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names) {
  return AddVec(name, help, Type::kCounter, std::move(label_names));
}

void MetricsRegistry::AddCollector(std::function<void()> collect) {
  collectors_.push_back(std::move(collect));
}

namespace {

// `{a="x",b="y"}`, with an extra trailing label (le) when given; "" if none.
void AppendLabels(const MetricLabels& labels, std::string_view extra_name,
                  std::string_view extra_value, std::string* out) {
  if (labels.empty() && extra_name.empty()) return;
  out->push_back('{');
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out->push_back(',');
    first = false;
    out->append(k);
    out->append("=\"");
    out->append(EscapeLabelValue(v));
    out->push_back('"');
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (!extra_name.empty()) one(extra_name, extra_value);
  out->push_back('}');
}

void AppendSample(std::string_view name, std::string_view suffix, const MetricLabels& labels,
                  std::string_view extra_name, std::string_view extra_value, std::string_view value,
                  std::string* out) {
  out->append(name);
  out->append(suffix);
  AppendLabels(labels, extra_name, extra_value, out);
  out->push_back(' ');
  out->append(value);
  out->push_back('\n');
}

}  // namespace

void MetricsRegistry::RenderFamily(const Family& f, std::string* out) const {
  static constexpr const char* kTypeNames[] = {"counter", "gauge", "histogram"};
  out->append("# HELP ").append(f.name).append(" ").append(EscapeHelp(f.help)).append("\n");
  out->append("# TYPE ").append(f.name).append(" ");
  out->append(kTypeNames[static_cast<int>(f.type)]).append("\n");
  for (const auto& child : f.children) {
    switch (f.type) {
      case Type::kCounter: {
        const Counter& c = *child.counter;
        std::string v = c.fraction_ == 0 ? std::to_string(c.count_) : FormatMetricValue(c.value());
        AppendSample(f.name, "", child.labels, "", "", v, out);
        break;
      }
      case Type::kGauge:
        AppendSample(f.name, "", child.labels, "", "", FormatMetricValue(child.gauge->value()),
                     out);
        break;
      case Type::kHistogram: {
        const Histogram& h = *child.histogram;
        uint64_t cumulative = 0;
        for (size_t i = 0; i < h.bucket_counts().size(); ++i) {
          cumulative += h.bucket_counts()[i];
          std::string le = i < h.bounds().size() ? FormatMetricValue(h.bounds()[i]) : "+Inf";
          AppendSample(f.name, "_bucket", child.labels, "le", le, std::to_string(cumulative), out);
        }
        AppendSample(f.name, "_sum", child.labels, "", "", FormatMetricValue(h.sum()), out);
        AppendSample(f.name, "_count", child.labels, "", "", std::to_string(h.count()), out);
        break;
      }
    }
  }
  for (const auto& vec : f.vecs) {
    for (const auto& [values, v] : vec->samples_) {
      out->append(f.name);
      out->push_back('{');
      for (size_t i = 0; i < values.size(); ++i) {
        if (i) out->push_back(',');
        out->append(vec->label_names_[i]).append("=\"");
        out->append(EscapeLabelValue(values[i])).push_back('"');
      }
      out->append("} ").append(FormatMetricValue(v)).push_back('\n');
    }
  }
}

std::string MetricsRegistry::Render() {
  for (auto& collect : collectors_) collect();
  std::string out;
  out.reserve(families_.size() * 160);
  for (const auto& f : families_) RenderFamily(*f, &out);
  return out;
}

}  // namespace edgespool::agent
