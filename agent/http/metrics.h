// The agent's metrics registry, rendered in the Prometheus text exposition
// format 0.0.4 (what /metrics serves):
//
//   # HELP edgespool_messages_stored_total Messages made durable in the journal.
//   # TYPE edgespool_messages_stored_total counter
//   edgespool_messages_stored_total 1027
//   # HELP edgespool_commit_seconds Journal commit latency.
//   # TYPE edgespool_commit_seconds histogram
//   edgespool_commit_seconds_bucket{le="0.001"} 12
//   ...
//   edgespool_commit_seconds_bucket{le="+Inf"} 40
//   edgespool_commit_seconds_sum 0.0734
//   edgespool_commit_seconds_count 40
//
// A family (one name, one HELP, one TYPE) holds one child per set of constant
// labels: registering "edgespool_uplink_messages_total" with {result="sent"}
// and again with {result="dead"} gives two series under one header.
//
// Naming rules are enforced at registration, because a name is a contract
// with dashboards: every name starts with "edgespool_", matches
// [a-zA-Z_:][a-zA-Z0-9_:]*, counters end in "_total", units are base units in
// the name (_bytes, _seconds). Label names match [a-zA-Z_][a-zA-Z0-9_]*, do
// not start with "__", and histograms may not use "le". Breaking a rule, or
// registering the same name twice with a different type or help or the same
// labels twice, is a programming error and aborts with a message (it happens
// at startup, so it cannot slip past the first test run).
//
// Thread-safety: loop-thread-only, like the counters it holds (the agent
// updates them on the loop thread). Values owned by other threads (the
// journal's statistics) are pulled at scrape time by collectors, which run
// inside Render() on the loop thread. Metric objects live as long as the
// registry; the pointers returned by Add*() stay valid until it is destroyed.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgespool::agent {

// Constant labels of one series, e.g. {{"result", "sent"}}; kept sorted by
// name so that {a,b} and {b,a} are the same series.
using MetricLabels = std::map<std::string, std::string>;

// A monotonic counter. Integer increments are exact to 2^64; fractional
// amounts (seconds spent, say) add to a separate double so the integer part
// never loses precision.
class Counter {
 public:
  void Inc(uint64_t n = 1) { count_ += n; }
  // Negative, NaN and infinite amounts are ignored: a counter never goes down.
  void Add(double amount);
  // Mirrors a monotonic total kept elsewhere (e.g. the journal's sent count,
  // read by a collector): moves forward to `total`, never back, so a source
  // that restarts from zero cannot make the exported series decrease.
  void SetFromSource(uint64_t total) {
    if (total > count_) count_ = total;
  }
  uint64_t count() const { return count_; }
  double value() const { return static_cast<double>(count_) + fraction_; }

 private:
  friend class MetricsRegistry;
  uint64_t count_ = 0;
  double fraction_ = 0;
};

class Gauge {
 public:
  void Set(double v) { value_ = v; }
  void Inc(double d = 1) { value_ += d; }
  void Dec(double d = 1) { value_ -= d; }
  double value() const { return value_; }

 private:
  double value_ = 0;
};

// A family whose series come and go: one per fleet node, say, where the
// set of label values is only known at scrape time. The label names are
// fixed at registration; the owner refills the series from a collector
// (Clear, then Set per series). Rendered as a gauge or a counter, as
// registered. Series are kept in insertion order; setting the same label
// values twice in one fill is the caller's bug (Prometheus would refuse the
// duplicate), so the caller keys its source by those values.
class SampleVec {
 public:
  explicit SampleVec(std::vector<std::string> label_names) : label_names_(std::move(label_names)) {}
  void Clear() { samples_.clear(); }
  // values.size() must equal the number of label names.
  void Set(std::vector<std::string> values, double v);
  size_t size() const { return samples_.size(); }
  const std::vector<std::string>& label_names() const { return label_names_; }

 private:
  friend class MetricsRegistry;
  std::vector<std::string> label_names_;
  std::vector<std::pair<std::vector<std::string>, double>> samples_;
};

// Fixed upper bounds, strictly increasing and finite; the +Inf bucket is
// implicit. Observations are counted in the first bucket whose bound is >=
// the value (Prometheus "le" semantics); rendering makes them cumulative.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  // NaN is ignored (it would poison _sum for the life of the process).
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count per bucket; the last entry is the +Inf bucket.
  const std::vector<uint64_t>& bucket_counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

// Bucket helpers: {start, start*factor, ...} (count bounds) and
// {start, start+width, ...}.
std::vector<double> ExponentialBuckets(double start, double factor, int count);
std::vector<double> LinearBuckets(double start, double width, int count);

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter* AddCounter(std::string_view name, std::string_view help, MetricLabels labels = {});
  Gauge* AddGauge(std::string_view name, std::string_view help, MetricLabels labels = {});
  Histogram* AddHistogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                          MetricLabels labels = {});

  // A gauge or counter family with per-scrape series (see SampleVec). The
  // name may also be registered with AddGauge/AddCounter for fixed series.
  SampleVec* AddGaugeVec(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names);
  SampleVec* AddCounterVec(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names);

  // Runs before every Render(), in registration order: pulls values that are
  // not pushed (journal size, pending count) into gauges or counters
  // registered above. Must be cheap: it runs on the loop thread per scrape.
  void AddCollector(std::function<void()> collect);

  // Runs the collectors and renders every family in registration order.
  std::string Render();

  static constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family;
  Family* FamilyFor(std::string_view name, std::string_view help, Type type,
                    const MetricLabels& labels);
  SampleVec* AddVec(std::string_view name, std::string_view help, Type type,
                    std::vector<std::string> label_names);
  void RenderFamily(const Family& f, std::string* out) const;

  std::vector<std::unique_ptr<Family>> families_;
  std::vector<std::function<void()>> collectors_;
};

// Exposed for tests and the HTTP server's own checks.
bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);
// Label value escaping: \ -> \\, " -> \", newline -> \n; bytes that are
// not valid UTF-8 become U+FFFD (the format is UTF-8).
std::string EscapeLabelValue(std::string_view v);
// HELP escaping: \ -> \\, newline -> \n; invalid UTF-8 as above.
std::string EscapeHelp(std::string_view v);
// Shortest text that reads back as the same double; "+Inf", "-Inf", "NaN".
std::string FormatMetricValue(double v);

}  // namespace edgespool::agent
