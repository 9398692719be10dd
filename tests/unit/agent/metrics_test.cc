// Rendering of the metrics registry, checked line by line by a strict
// exposition-format parser (tests/unit/agent/exposition_parser.h).
#include "agent/http/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "tests/unit/agent/exposition_parser.h"

namespace edgespool::agent {
namespace {

using testing::ParseExposition;

TEST(MetricsTest, EmptyRegistryRendersNothing) {
  MetricsRegistry r;
  EXPECT_EQ(r.Render(), "");
  EXPECT_TRUE(ParseExposition("").ok());
}

TEST(MetricsTest, CounterGaugeExactText) {
  MetricsRegistry r;
  Counter* c = r.AddCounter("edgespool_messages_stored_total", "Messages made durable.");
  Gauge* g = r.AddGauge("edgespool_journal_size_bytes", "Size of the journal file.");
  c->Inc();
  c->Inc(41);
  g->Set(1048576);
  EXPECT_EQ(r.Render(),
            "# HELP edgespool_messages_stored_total Messages made durable.\n"
            "# TYPE edgespool_messages_stored_total counter\n"
            "edgespool_messages_stored_total 42\n"
            "# HELP edgespool_journal_size_bytes Size of the journal file.\n"
            "# TYPE edgespool_journal_size_bytes gauge\n"
            "edgespool_journal_size_bytes 1048576\n");
}

TEST(MetricsTest, HistogramExactTextIsCumulativeAndEndsWithInf) {
  MetricsRegistry r;
  Histogram* h = r.AddHistogram("edgespool_commit_seconds", "Commit latency.", {0.25, 1, 4});
  // Binary fractions, so that the sum is exact and the text predictable.
  for (double v : {0.125, 0.25, 0.5, 2.0, 8.0, 16.0}) h->Observe(v);
  h->Observe(std::nan(""));  // ignored
  std::string text = r.Render();
  EXPECT_EQ(text,
            "# HELP edgespool_commit_seconds Commit latency.\n"
            "# TYPE edgespool_commit_seconds histogram\n"
            "edgespool_commit_seconds_bucket{le=\"0.25\"} 2\n"
            "edgespool_commit_seconds_bucket{le=\"1\"} 3\n"
            "edgespool_commit_seconds_bucket{le=\"4\"} 4\n"
            "edgespool_commit_seconds_bucket{le=\"+Inf\"} 6\n"
            "edgespool_commit_seconds_sum 26.875\n"
            "edgespool_commit_seconds_count 6\n");
  auto e = ParseExposition(text);
  ASSERT_TRUE(e.ok()) << e.error;
  EXPECT_EQ(e.type["edgespool_commit_seconds"], "histogram");
}

TEST(MetricsTest, LabelledFamilyHasOneHeaderAndEscapedValues) {
  MetricsRegistry r;
  Counter* sent =
      r.AddCounter("edgespool_uplink_messages_total", "Messages by outcome.", {{"result", "sent"}});
  Counter* odd = r.AddCounter("edgespool_uplink_messages_total", "Messages by outcome.",
                              {{"result", "quote\" back\\slash\nnewline"}, {"a_route", "x"}});
  Histogram* h = r.AddHistogram("edgespool_batch_bytes", "Batch sizes, path \\ and\nline.",
                                ExponentialBuckets(1024, 4, 3), {{"mode", "batch"}});
  sent->Inc(3);
  odd->Inc();
  h->Observe(5000);
  std::string text = r.Render();
  EXPECT_NE(text.find("edgespool_uplink_messages_total{result=\"sent\"} 3\n"), std::string::npos)
      << text;
  // Labels render sorted by name, values escaped.
  EXPECT_NE(text.find("edgespool_uplink_messages_total{a_route=\"x\",result=\"quote\\\" "
                      "back\\\\slash\\nnewline\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# HELP edgespool_batch_bytes Batch sizes, path \\\\ and\\nline.\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("edgespool_batch_bytes_bucket{mode=\"batch\",le=\"4096\"} 0\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("edgespool_batch_bytes_bucket{mode=\"batch\",le=\"16384\"} 1\n"),
            std::string::npos)
      << text;
  auto e = ParseExposition(text);
  ASSERT_TRUE(e.ok()) << e.error << "\n" << text;
  // One HELP/TYPE per family, whatever the number of children.
  size_t helps = 0;
  for (size_t p = text.find("# HELP edgespool_uplink_messages_total"); p != std::string::npos;
       p = text.find("# HELP edgespool_uplink_messages_total", p + 1)) {
    ++helps;
  }
  EXPECT_EQ(helps, 1u);
  // The parser unescapes back to the original strings.
  EXPECT_EQ(e.help["edgespool_batch_bytes"], "Batch sizes, path \\ and\nline.");
  EXPECT_EQ(e.At("edgespool_uplink_messages_total{a_route=\"x\",result=\"quote\" "
                 "back\\slash\nnewline\"}"),
            1);
}

TEST(MetricsTest, InvalidUtf8BecomesReplacementCharacter) {
  const std::string kBad = "\xEF\xBF\xBD";  // U+FFFD
  EXPECT_EQ(EscapeLabelValue("caf\xC3\xA9 \xF0\x9F\x9A\x80"), "caf\xC3\xA9 \xF0\x9F\x9A\x80");
  EXPECT_EQ(EscapeLabelValue("a\xFF"
                             "b"),
            "a" + kBad + "b");
  EXPECT_EQ(EscapeLabelValue("\xC0\x80"), kBad + kBad);                        // overlong NUL
  EXPECT_EQ(EscapeLabelValue("\xED\xA0\x80"), kBad + kBad + kBad);             // surrogate
  EXPECT_EQ(EscapeLabelValue("\xF4\x90\x80\x80"), kBad + kBad + kBad + kBad);  // > U+10FFFF
  EXPECT_EQ(EscapeLabelValue("x\xE2\x82"), "x" + kBad + kBad);                 // truncated
  EXPECT_EQ(EscapeHelp("h\x80\"q\""), "h" + kBad + "\"q\"");  // quotes stay in HELP
}

TEST(MetricsTest, FloatValuesRoundTripAndSpecialValues) {
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(1e21), "1e+21");
  EXPECT_EQ(FormatMetricValue(-2.5), "-2.5");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  MetricsRegistry r;
  Gauge* g = r.AddGauge("edgespool_clock_skew_seconds", "Skew.");
  for (double v : {0.1, -3.25, 1e-9, 123456789.125, std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    g->Set(v);
    auto e = ParseExposition(r.Render());
    ASSERT_TRUE(e.ok()) << e.error;
    double got = e.At("edgespool_clock_skew_seconds");
    if (std::isnan(v)) {
      EXPECT_TRUE(std::isnan(got));
    } else {
      EXPECT_EQ(got, v);
    }
  }
}

TEST(MetricsTest, CounterNeverDecreases) {
  MetricsRegistry r;
  Counter* c = r.AddCounter("edgespool_uplink_busy_seconds_total", "Seconds spent sending.");
  c->Add(0.25);
  c->Add(0.5);
  c->Add(-10);           // ignored
  c->Add(std::nan(""));  // ignored
  c->Add(HUGE_VAL);      // ignored
  EXPECT_DOUBLE_EQ(c->value(), 0.75);
  c->Add(2.5);
  EXPECT_EQ(c->count(), 3u);  // whole seconds carried into the exact part
  EXPECT_DOUBLE_EQ(c->value(), 3.25);
  Counter* mirrored = r.AddCounter("edgespool_journal_sent_total", "Mirrored from the journal.");
  mirrored->SetFromSource(100);
  mirrored->SetFromSource(40);  // the source restarted: the series must not go back
  EXPECT_EQ(mirrored->count(), 100u);
  mirrored->SetFromSource(140);
  EXPECT_EQ(mirrored->count(), 140u);
  // Integers stay exact far beyond 2^53.
  Counter* big = r.AddCounter("edgespool_big_total", "Big.");
  big->Inc(9007199254740993ull);
  auto text = r.Render();
  EXPECT_NE(text.find("edgespool_big_total 9007199254740993\n"), std::string::npos) << text;
  EXPECT_TRUE(ParseExposition(text).ok());
}

TEST(MetricsTest, CollectorsRunAtEveryScrape) {
  MetricsRegistry r;
  Gauge* pending = r.AddGauge("edgespool_pending_messages", "Messages waiting for upload.");
  int scrapes = 0;
  r.AddCollector([&] { pending->Set(++scrapes * 10); });
  EXPECT_EQ(ParseExposition(r.Render()).At("edgespool_pending_messages"), 10);
  EXPECT_EQ(ParseExposition(r.Render()).At("edgespool_pending_messages"), 20);
  EXPECT_EQ(scrapes, 2);
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(0.001, 10, 4), (std::vector<double>{0.001, 0.01, 0.1, 1}));
  EXPECT_EQ(LinearBuckets(1, 2, 3), (std::vector<double>{1, 3, 5}));
  Histogram h({});
  h.Observe(3);
  EXPECT_EQ(h.bucket_counts(), std::vector<uint64_t>{1});
}

TEST(MetricsTest, NameValidation) {
  EXPECT_TRUE(IsValidMetricName("edgespool_a:b_1"));
  EXPECT_TRUE(IsValidMetricName("_x"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("route_1"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
  EXPECT_FALSE(IsValidLabelName("9"));
}

// A larger registry like the agent's, with many scrapes: every rendering
// parses, and every counter is monotonic across scrapes.
TEST(MetricsTest, ManyFamiliesParseStrictlyAndStayMonotonic) {
  MetricsRegistry r;
  std::vector<Counter*> counters;
  for (const char* result : {"sent", "dead", "expired", "dropped"}) {
    counters.push_back(
        r.AddCounter("edgespool_messages_total", "Messages by result.", {{"result", result}}));
  }
  Histogram* lat =
      r.AddHistogram("edgespool_ack_seconds", "Ack latency.", ExponentialBuckets(0.0001, 2, 16));
  Gauge* conns = r.AddGauge("edgespool_producer_connections", "Open producer connections.");
  std::map<std::string, double> last;
  for (int scrape = 0; scrape < 50; ++scrape) {
    for (size_t i = 0; i < counters.size(); ++i) counters[i]->Inc(i * scrape);
    for (int k = 0; k < 20; ++k) lat->Observe(0.00005 * (k * scrape + 1));
    conns->Set(scrape % 7);
    auto e = ParseExposition(r.Render());
    ASSERT_TRUE(e.ok()) << e.error;
    for (const auto& [key, value] : e.samples) {
      bool monotonic = key.rfind("edgespool_messages_total", 0) == 0 ||
                       key.rfind("edgespool_ack_seconds_bucket", 0) == 0 ||
                       key.rfind("edgespool_ack_seconds_count", 0) == 0;
      if (monotonic && last.count(key)) {
        EXPECT_GE(value, last[key]) << key;
      }
      last[key] = value;
    }
  }
  EXPECT_EQ(last["edgespool_ack_seconds_count"], 1000);
}

// The parser itself must reject what Prometheus would choke on, or the tests
// above would prove nothing.
TEST(ExpositionParserTest, RejectsMalformedText) {
  const char* bad[] = {
      "edgespool_x 1\n",                                                // no HELP/TYPE
      "# HELP edgespool_x h\n# TYPE edgespool_x gauge\nedgespool_x 1",  // no final newline
      "# HELP edgespool_x h\n# TYPE edgespool_x gauge\nedgespool_x{a=\"b} 1\n",
      "# HELP edgespool_x h\n# TYPE edgespool_x gauge\nedgespool_x{a=\"\\t\"} 1\n",
      "# HELP edgespool_x h\n# TYPE edgespool_x gauge\nedgespool_x 1 1700000000\n",
      "# HELP edgespool_x h\n# TYPE edgespool_x gauge\nedgespool_x one\n",
      "# HELP edgespool_x h\n# TYPE edgespool_x gauge\n1x 1\n",
      "# HELP edgespool_x h\n# TYPE edgespool_x gauge\nedgespool_y 1\n",
      "# HELP edgespool_x_total h\n# TYPE edgespool_x_total counter\nedgespool_x_total -1\n",
      "# HELP edgespool_x h\n# TYPE edgespool_x counter\nedgespool_x 1\n",
      "# HELP edgespool_h h\n# TYPE edgespool_h histogram\n"
      "edgespool_h_bucket{le=\"1\"} 2\nedgespool_h_bucket{le=\"+Inf\"} 1\n"
      "edgespool_h_sum 1\nedgespool_h_count 1\n",  // not cumulative
      "# HELP edgespool_h h\n# TYPE edgespool_h histogram\n"
      "edgespool_h_bucket{le=\"1\"} 1\nedgespool_h_sum 1\nedgespool_h_count 1\n",  // no +Inf
      "# HELP edgespool_h h\n# TYPE edgespool_h histogram\n"
      "edgespool_h_bucket{le=\"+Inf\"} 2\nedgespool_h_sum 1\nedgespool_h_count 1\n",  // count
      "# a comment\n",
      "# HELP edgespool_x h\n# HELP edgespool_x h\n# TYPE edgespool_x gauge\nedgespool_x 1\n",
  };
  for (const char* text : bad) EXPECT_FALSE(ParseExposition(text).ok()) << text;
}

using MetricsDeathTest = ::testing::Test;

TEST(MetricsDeathTest, RegistrationMistakesAbortWithTheReason) {
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("edgespool_sent", "no _total");
      },
      "_total");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddGauge("queue_depth", "h");
      },
      "edgespool_");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddGauge("edgespool_bad-name", "h");
      },
      "must match");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddGauge("edgespool_x_total", "h");
      },
      "reserved");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddGauge("edgespool_x", "h");
        r.AddHistogram("edgespool_x", "h", {1});
      },
      "another type");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddGauge("edgespool_x", "h", {{"a", "1"}});
        r.AddGauge("edgespool_x", "h", {{"a", "1"}});
      },
      "twice");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddGauge("edgespool_x", "h", {{"__a", "1"}});
      },
      "reserved");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddHistogram("edgespool_h", "h", {1}, {{"le", "1"}});
      },
      "le label");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddHistogram("edgespool_h", "h", {2, 1});
      },
      "increasing");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddHistogram("edgespool_h", "h", {1});
        r.AddGauge("edgespool_h_count", "h");
      },
      "histogram");
}

}  // namespace
}  // namespace edgespool::agent
