#include "core/metrics.hpp"

#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(Metrics, CounterAndGaugeExposition) {
  MetricsRegistry registry;
  registry
      .counter("sluice_broker_events_appended_total", "Events appended to the log.", {{"broker", "default"}})
      .inc(3);
  registry.counter("sluice_broker_events_appended_total", "ignored: first help wins", {{"broker", "other"}})
      .inc();
  auto& depth = registry.gauge("sluice_trigger_backlog", "Events not yet delivered.", {{"trigger", "t1"}});
  depth.set(10);
  depth.add(-2.5);
  EXPECT_EQ(depth.value(), 7.5);

  EXPECT_EQ(registry.render(),
            "# HELP sluice_broker_events_appended_total Events appended to the log.\n"
            "# TYPE sluice_broker_events_appended_total counter\n"
            "sluice_broker_events_appended_total{broker=\"default\"} 3\n"
            "sluice_broker_events_appended_total{broker=\"other\"} 1\n"
            "# HELP sluice_trigger_backlog Events not yet delivered.\n"
            "# TYPE sluice_trigger_backlog gauge\n"
            "sluice_trigger_backlog{trigger=\"t1\"} 7.5\n");
}

TEST(Metrics, SameSeriesIsSameObjectWhateverTheLabelOrder) {
  MetricsRegistry registry;
  auto& a = registry.counter("x_total", "x", {{"b", "2"}, {"a", "1"}});
  auto& b = registry.counter("x_total", "x", {{"a", "1"}, {"b", "2"}});
  EXPECT_EQ(&a, &b);
  a.inc();
  EXPECT_EQ(registry.render(), "# HELP x_total x\n# TYPE x_total counter\nx_total{a=\"1\",b=\"2\"} 1\n");
}

// A retired series leaves the exposition but stays valid for whoever still holds it; the same name and
// labels registered again make a new series from zero.
TEST(Metrics, RetiredSeriesLeaveTheExpositionAndStayValid) {
  MetricsRegistry r;
  Counter& old = r.counter("sluice_x_total", "x", {{"broker", "b"}, {"code", "202"}});
  Counter& other = r.counter("sluice_x_total", "x", {{"broker", "c"}, {"code", "202"}});
  r.gauge("sluice_y", "y", {{"broker", "b"}}).set(3);
  old.inc(5);
  other.inc(1);
  const auto generation = r.generation();
  r.retire("broker", "b");
  EXPECT_NE(r.generation(), generation);
  const std::string out = r.render();
  EXPECT_EQ(out.find("broker=\"b\""), std::string::npos) << out;
  EXPECT_EQ(out.find("sluice_y"), std::string::npos) << out;
  EXPECT_NE(out.find("sluice_x_total{broker=\"c\",code=\"202\"} 1"), std::string::npos) << out;
  old.inc();  // still a valid object
  EXPECT_EQ(old.value(), 6);
  Counter& again = r.counter("sluice_x_total", "x", {{"broker", "b"}, {"code", "202"}});
  EXPECT_NE(&again, &old);
  EXPECT_EQ(again.value(), 0);
}

TEST(Metrics, NoLabelsAndValueFormatting) {
  MetricsRegistry registry;
  registry.gauge("g_small", "small").set(0.000125);
  registry.gauge("g_big", "big").set(1e20);
  registry.gauge("g_inf", "inf").set(std::numeric_limits<double>::infinity());
  registry.gauge("g_nan", "nan").set(std::numeric_limits<double>::quiet_NaN());
  registry.gauge("g_neg", "neg").set(-3);
  registry.gauge("g_million", "million").set(1'000'000);
  EXPECT_EQ(registry.render(),
            "# HELP g_big big\n# TYPE g_big gauge\ng_big 1e+20\n"
            "# HELP g_inf inf\n# TYPE g_inf gauge\ng_inf +Inf\n"
            "# HELP g_million million\n# TYPE g_million gauge\ng_million 1000000\n"
            "# HELP g_nan nan\n# TYPE g_nan gauge\ng_nan NaN\n"
            "# HELP g_neg neg\n# TYPE g_neg gauge\ng_neg -3\n"
            "# HELP g_small small\n# TYPE g_small gauge\ng_small 0.000125\n");
}

TEST(Metrics, EscapesLabelValuesAndHelp) {
  MetricsRegistry registry;
  registry.counter("esc_total", "Help with \\ backslash\nand newline \"quotes stay\"",
                   {{"path", "a\\b \"quoted\"\nnext"}});
  EXPECT_EQ(registry.render(),
            "# HELP esc_total Help with \\\\ backslash\\nand newline \"quotes stay\"\n"
            "# TYPE esc_total counter\n"
            "esc_total{path=\"a\\\\b \\\"quoted\\\"\\nnext\"} 0\n");
}

TEST(Metrics, HistogramBucketsAreCumulativeWithInf) {
  MetricsRegistry registry;
  auto& h = registry.histogram("sluice_delivery_duration_seconds", "Delivery latency.", {0.1, 0.5, 1},
                               {{"trigger", "t"}});
  h.observe(0.05);
  h.observe(0.1);  // le is inclusive
  h.observe(0.3);
  h.observe(2);
  h.observe(std::numeric_limits<double>::quiet_NaN());  // ignored
  EXPECT_EQ(h.count(), 4u);
  EXPECT_DOUBLE_EQ(h.sum(), 2.45);
  EXPECT_EQ(registry.render(),
            "# HELP sluice_delivery_duration_seconds Delivery latency.\n"
            "# TYPE sluice_delivery_duration_seconds histogram\n"
            "sluice_delivery_duration_seconds_bucket{trigger=\"t\",le=\"0.1\"} 2\n"
            "sluice_delivery_duration_seconds_bucket{trigger=\"t\",le=\"0.5\"} 3\n"
            "sluice_delivery_duration_seconds_bucket{trigger=\"t\",le=\"1\"} 3\n"
            "sluice_delivery_duration_seconds_bucket{trigger=\"t\",le=\"+Inf\"} 4\n"
            "sluice_delivery_duration_seconds_sum{trigger=\"t\"} 2.45\n"
            "sluice_delivery_duration_seconds_count{trigger=\"t\"} 4\n");
}

TEST(Metrics, HistogramWithoutLabelsAndTrailingInfBucket) {
  MetricsRegistry registry;
  auto& h = registry.histogram("size_bytes", "Sizes.", {1024, std::numeric_limits<double>::infinity()});
  h.observe(100);
  EXPECT_EQ(registry.render(),
            "# HELP size_bytes Sizes.\n# TYPE size_bytes histogram\n"
            "size_bytes_bucket{le=\"1024\"} 1\nsize_bytes_bucket{le=\"+Inf\"} 1\n"
            "size_bytes_sum 100\nsize_bytes_count 1\n");
}

TEST(Metrics, HistogramQuantileInterpolatesInsideTheBucketAsPrometheusDoes) {
  Histogram h({1, 2, 4});
  EXPECT_EQ(h.quantile(0.5), 0) << "nothing observed";
  // Ten observations: 4 in (0,1], 4 in (1,2], 2 in (2,4].
  for (double v : {0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 1.5, 3.0, 3.0}) h.observe(v);
  EXPECT_DOUBLE_EQ(h.quantile(0.2), 0.5);  // rank 2 of the 4 in the first bucket: half of [0, 1]
  EXPECT_DOUBLE_EQ(h.quantile(0.6), 1.5);  // rank 6: half way through (1, 2]
  EXPECT_DOUBLE_EQ(h.quantile(0.9), 3.0);  // rank 9: half way through (2, 4]
  EXPECT_DOUBLE_EQ(h.quantile(1.0), 4.0);
  h.observe(100);  // lands in +Inf: the highest finite bound is the answer
  EXPECT_DOUBLE_EQ(h.quantile(1.0), 4.0);
}

TEST(Metrics, LatencyBuckets) {
  auto buckets = latency_buckets();
  ASSERT_FALSE(buckets.empty());
  EXPECT_DOUBLE_EQ(buckets.front(), 0.0001);
  EXPECT_DOUBLE_EQ(buckets.back(), 60);
  EXPECT_TRUE(std::is_sorted(buckets.begin(), buckets.end()));
  MetricsRegistry registry;
  registry.histogram("lat_seconds", "l", buckets).observe(0.0002);
  auto text = registry.render();
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.0001\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.00025\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("lat_seconds_bucket{le=\"60\"} 1\n"), std::string::npos) << text;
}

TEST(Metrics, RemoveDropsSeriesAndEmptyFamilies) {
  MetricsRegistry registry;
  registry.counter("d_total", "d", {{"trigger", "a"}}).inc();
  registry.counter("d_total", "d", {{"trigger", "b"}}).inc();
  registry.remove("d_total", {{"trigger", "a"}});
  EXPECT_EQ(registry.render(), "# HELP d_total d\n# TYPE d_total counter\nd_total{trigger=\"b\"} 1\n");
  registry.remove("d_total", {{"trigger", "b"}});
  registry.remove("d_total", {{"trigger", "never"}});
  registry.remove("unknown_total", {});
  EXPECT_EQ(registry.render(), "");
  // A fresh series after removal starts from zero.
  EXPECT_EQ(registry.counter("d_total", "d", {{"trigger", "a"}}).value(), 0);
}

TEST(Metrics, RejectsBadRegistrations) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.counter("requests", "no _total"), std::invalid_argument);
  EXPECT_THROW(registry.gauge("requests_total", "gauge with _total"), std::invalid_argument);
  EXPECT_THROW(registry.counter("bad-name_total", "dash"), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "x", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "x", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "x", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "x", {1, 0.5}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h_seconds", "x", {1}, {{"le", "1"}}), std::invalid_argument);
  registry.gauge("shared", "x");
  EXPECT_THROW(registry.histogram("shared", "x", {1}), std::invalid_argument);
  registry.histogram("h2_seconds", "x", {1, 2});
  EXPECT_THROW(registry.histogram("h2_seconds", "x", {1, 3}, {{"a", "b"}}), std::invalid_argument);
}

TEST(Metrics, NegativeCounterIncrementsAreIgnored) {
  MetricsRegistry registry;
  auto& c = registry.counter("c_total", "c");
  c.inc(2);
  c.inc(-1);
  EXPECT_EQ(c.value(), 2);
}

TEST(Metrics, ConcurrentIncrementsAndObservations) {
  MetricsRegistry registry;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&registry, t] {
      // Registration races too: every thread must get the same objects.
      auto& c = registry.counter("conc_total", "c");
      auto& h = registry.histogram("conc_seconds", "h", {0.5});
      auto& g = registry.gauge("conc_gauge", "g");
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        h.observe((i + t) % 2 == 0 ? 0.25 : 1.0);
        g.add(1);
        if (i % 1000 == 0) (void)registry.render();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(registry.counter("conc_total", "c").value(), kThreads * kPerThread);
  EXPECT_EQ(registry.gauge("conc_gauge", "g").value(), kThreads * kPerThread);
  auto& h = registry.histogram("conc_seconds", "h", {0.5});
  EXPECT_EQ(h.count(), static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_DOUBLE_EQ(h.sum(), kThreads * kPerThread / 2 * 0.25 + kThreads * kPerThread / 2 * 1.0);
  EXPECT_EQ(h.cumulative_counts()[0], static_cast<std::uint64_t>(kThreads * kPerThread / 2));
}

TEST(Metrics, GlobalIsOneInstance) {
  EXPECT_EQ(&MetricsRegistry::global(), &MetricsRegistry::global());
}

}  // namespace
}  // namespace sluice
