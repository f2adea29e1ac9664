// Metrics layer: Prometheus exposition, thread safety, latency window, process stats.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "server/latency_window.h"
#include "server/metrics_registry.h"
#include "server/process_stats.h"

namespace encserve::server {
namespace {

TEST(MetricsFormat, Numbers) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-0.0), "0");
  EXPECT_EQ(FormatMetricValue(42), "42");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(1e6), "1000000");
  EXPECT_EQ(FormatMetricValue(123456789012345), "123456789012345");
  EXPECT_EQ(FormatMetricValue(0.005), "0.005");
  EXPECT_EQ(FormatMetricValue(2.5), "2.5");
  EXPECT_EQ(FormatMetricValue(1.5e-7), "1.5e-07");
  EXPECT_EQ(FormatMetricValue(1e300), "1e+300");
  EXPECT_EQ(FormatMetricValue(0.1 + 0.2), "0.30000000000000004");  // round-trips
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

TEST(MetricsFormat, Buckets) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(LinearBuckets(0.5, 1, 3), (std::vector<double>{0.5, 1.5, 2.5}));
}

TEST(MetricsRegistry, CounterAndGaugeGolden) {
  MetricsRegistry r;
  Counter& ok = r.AddCounter("requests_total", "Requests.\nBy route \\ code.",
                             {{"route", "http:/embed"}, {"code", "200"}});
  Counter& bad =
      r.AddCounter("requests_total", "ignored", {{"route", "a\"b\\c\nd"}, {"code", "4"}});
  ok.Inc();
  ok.Inc(2);
  ok.Inc(-5);  // ignored: counters never decrease
  bad.Inc(0.5);
  EXPECT_EQ(&ok, &r.AddCounter("requests_total", "", {{"code", "200"}, {"route", "http:/embed"}}));
  Gauge& g = r.AddGauge("batch_size", "Current batch.");
  g.Set(10);
  g.Dec(2.5);
  g.Inc();
  r.AddCallbackGauge("queue_depth", "Queued requests.", {{"model", "m"}}, [] { return 7.0; });

  EXPECT_EQ(r.Exposition(),
            "# HELP batch_size Current batch.\n"
            "# TYPE batch_size gauge\n"
            "batch_size 8.5\n"
            "# HELP queue_depth Queued requests.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth{model=\"m\"} 7\n"
            "# HELP requests_total Requests.\\nBy route \\\\ code.\n"
            "# TYPE requests_total counter\n"
            "requests_total{code=\"200\",route=\"http:/embed\"} 3\n"
            "requests_total{code=\"4\",route=\"a\\\"b\\\\c\\nd\"} 0.5\n");
}

TEST(MetricsRegistry, HistogramGolden) {
  MetricsRegistry r;
  Histogram& h = r.AddHistogram("latency_seconds", "Latency.", {0.005, 0.1, 1}, {{"route", "x"}});
  for (double v : {0.001, 0.005, 0.05, 0.5, 0.5, 3.0}) h.Observe(v);
  Histogram& empty = r.AddHistogram("latency_seconds", "", {0.005, 0.1, 1, INFINITY});
  (void)empty;
  EXPECT_EQ(h.Count(), 6u);
  EXPECT_EQ(h.BucketCounts(), (std::vector<uint64_t>{2, 1, 2, 1}));
  EXPECT_EQ(r.Exposition(),
            "# HELP latency_seconds Latency.\n"
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"0.005\"} 0\n"
            "latency_seconds_bucket{le=\"0.1\"} 0\n"
            "latency_seconds_bucket{le=\"1\"} 0\n"
            "latency_seconds_bucket{le=\"+Inf\"} 0\n"
            "latency_seconds_sum 0\n"
            "latency_seconds_count 0\n"
            "latency_seconds_bucket{route=\"x\",le=\"0.005\"} 2\n"
            "latency_seconds_bucket{route=\"x\",le=\"0.1\"} 3\n"
            "latency_seconds_bucket{route=\"x\",le=\"1\"} 5\n"
            "latency_seconds_bucket{route=\"x\",le=\"+Inf\"} 6\n"
            "latency_seconds_sum{route=\"x\"} 4.056\n"
            "latency_seconds_count{route=\"x\"} 6\n");
}

TEST(MetricsRegistry, VecFindsSameChildAsAdd) {
  MetricsRegistry r;
  CounterVec v = r.AddCounterVec("requests_total", "Requests.", {"route", "code"});
  Counter& a = v.With({"http:/embed", "200"});
  EXPECT_EQ(&a, &v.With({"http:/embed", "200"}));
  EXPECT_EQ(&a, &r.AddCounter("requests_total", "", {{"route", "http:/embed"}, {"code", "200"}}));
  EXPECT_NE(&a, &v.With({"http:/embed", "500"}));
  // Same name again: a handle to the same family. Many children force the table to grow.
  CounterVec again = r.AddCounterVec("requests_total", "", {"route", "code"});
  std::vector<Counter*> made;
  for (int i = 0; i < 200; ++i) made.push_back(&again.With({"r", std::to_string(i)}));
  for (int i = 0; i < 200; ++i) EXPECT_EQ(made[i], &v.With({"r", std::to_string(i)}));
  EXPECT_EQ(&a, &v.With({"http:/embed", "200"}));

  HistogramVec hv = r.AddHistogramVec("h_seconds", "H.", {1, 2}, {"model"});
  hv.With({"m"}).Observe(1.5);
  GaugeVec gv = r.AddGaugeVec("g", "G.", {"k"});
  gv.With({"v"}).Set(3);
  const std::string text = r.Exposition();
  EXPECT_NE(text.find("h_seconds_bucket{model=\"m\",le=\"2\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("g{k=\"v\"} 3\n"), std::string::npos) << text;
}

TEST(MetricsRegistryDeathTest, MisuseAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry r;
  r.AddCounter("x_total", "");
  EXPECT_DEATH(r.AddGauge("x_total", ""), "another type");
  EXPECT_DEATH(r.AddCounter("1bad", ""), "invalid metric name");
  EXPECT_DEATH(r.AddCounter("ok", "", {{"bad-label", "v"}}), "invalid label name");
  EXPECT_DEATH(r.AddHistogram("h", "", {2, 1}), "strictly increasing");
  EXPECT_DEATH(r.AddHistogram("h2", "", {1}, {{"le", "1"}}), "le");
  CounterVec v = r.AddCounterVec("v_total", "", {"a", "b"});
  EXPECT_DEATH(v.With({"only-one"}), "wrong number of label values");
}

TEST(MetricsRegistry, ConcurrentIncrementsAreExact) {
  MetricsRegistry r;
  Counter& c = r.AddCounter("c_total", "");
  Gauge& g = r.AddGauge("g", "");
  Histogram& h = r.AddHistogram("h", "", {0.5});
  CounterVec vec = r.AddCounterVec("v_total", "", {"route", "code"});
  constexpr int kThreads = 8, kIncrements = 100'000;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kIncrements; ++i) {
        c.Inc();
        g.Inc();
        h.Observe(i % 2);
        // Children created concurrently by several threads, then looked up lock-free.
        vec.With({"r", std::to_string(i % 64)}).Inc();
        if (i % 10'000 == 0) (void)r.Exposition();
      }
      (void)t;
    });
  }
  go = true;
  for (auto& th : threads) th.join();
  EXPECT_EQ(c.Value(), double(kThreads) * kIncrements);
  EXPECT_EQ(g.Value(), double(kThreads) * kIncrements);
  EXPECT_EQ(h.Count(), uint64_t(kThreads) * kIncrements);
  EXPECT_EQ(h.Sum(), double(kThreads) * kIncrements / 2);
  double vec_total = 0;
  for (int i = 0; i < 64; ++i) vec_total += vec.With({"r", std::to_string(i)}).Value();
  EXPECT_EQ(vec_total, double(kThreads) * kIncrements);
}

// ---- latency window ----

struct FakeClock {
  std::chrono::steady_clock::time_point now{};
  LatencyWindow::Clock Fn() {
    return [this] { return now; };
  }
};

TEST(LatencyWindow, ExactNearestRankPercentiles) {
  FakeClock clock;
  LatencyWindow w(LatencyWindow::kDefaultMaxSamples, clock.Fn());
  std::vector<double> values;
  for (int i = 1; i <= 100; ++i) values.push_back(i);
  std::shuffle(values.begin(), values.end(), std::mt19937(1));
  for (double v : values) w.Record(v);
  const LatencySnapshot s = w.Snapshot();
  EXPECT_EQ(s.count, 100);
  EXPECT_DOUBLE_EQ(s.avg_ms, 50.5);
  EXPECT_EQ(s.p50_ms, 50);
  EXPECT_EQ(s.p95_ms, 95);
  EXPECT_EQ(s.p99_ms, 99);
  EXPECT_TRUE(s.exact);
}

TEST(LatencyWindow, NearestRankDefinition) {
  EXPECT_EQ(LatencyWindow::NearestRank({}, 500), 0);
  EXPECT_EQ(LatencyWindow::NearestRank({7}, 990), 7);
  // n = 10: p50 -> rank 5, p95 -> ceil(9.5) = 10, p99 -> 10.
  const std::vector<double> ten = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(LatencyWindow::NearestRank(ten, 500), 5);
  EXPECT_EQ(LatencyWindow::NearestRank(ten, 950), 10);
  // n = 1000 of 1..1000: p99 is exactly 990, p99.9 is 999.
  std::vector<double> thousand(1000);
  for (int i = 0; i < 1000; ++i) thousand[i] = i + 1;
  EXPECT_EQ(LatencyWindow::NearestRank(thousand, 990), 990);
  EXPECT_EQ(LatencyWindow::NearestRank(thousand, 999), 999);
  // Snapshot agrees with the definition on a skewed distribution with duplicates.
  LatencyWindow w;
  std::vector<double> xs;
  std::mt19937 rng(3);
  std::exponential_distribution<double> d(0.1);
  for (int i = 0; i < 12345; ++i) xs.push_back(std::round(d(rng) * 10) / 10);
  for (double x : xs) w.Record(x);
  std::sort(xs.begin(), xs.end());
  const LatencySnapshot s = w.Snapshot();
  EXPECT_EQ(s.p50_ms, LatencyWindow::NearestRank(xs, 500));
  EXPECT_EQ(s.p95_ms, LatencyWindow::NearestRank(xs, 950));
  EXPECT_EQ(s.p99_ms, LatencyWindow::NearestRank(xs, 990));
}

TEST(LatencyWindow, ThroughputAndResetWithFakeClock) {
  FakeClock clock;
  LatencyWindow w(LatencyWindow::kDefaultMaxSamples, clock.Fn());
  EXPECT_EQ(w.Snapshot().count, 0);
  EXPECT_EQ(w.Snapshot().throughput_rps, 0);  // no time has passed: no division by zero
  for (int i = 0; i < 50; ++i) w.Record(10);
  clock.now += std::chrono::seconds(5);
  LatencySnapshot s = w.Snapshot();
  EXPECT_EQ(s.count, 50);
  EXPECT_DOUBLE_EQ(s.throughput_rps, 10.0);
  EXPECT_EQ(s.p99_ms, 10);

  w.Reset();
  s = w.Snapshot();
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.avg_ms, 0);
  EXPECT_EQ(s.p50_ms, 0);
  EXPECT_EQ(s.throughput_rps, 0);
  clock.now += std::chrono::milliseconds(500);
  w.Record(2);
  w.Record(4);
  w.Record(-1);            // ignored
  w.Record(std::nan(""));  // ignored
  s = w.Snapshot();
  EXPECT_EQ(s.count, 2);
  EXPECT_DOUBLE_EQ(s.avg_ms, 3);
  EXPECT_DOUBLE_EQ(s.throughput_rps, 4.0);  // 2 requests in the 0.5 s since Reset
  EXPECT_EQ(s.p50_ms, 2);
  EXPECT_EQ(s.p99_ms, 4);
}

TEST(LatencyWindow, ReservoirBeyondCapacityStaysClose) {
  LatencyWindow w(/*max_samples=*/10'000);
  constexpr int kN = 200'000;  // values 1..kN in random order
  std::vector<double> values(kN);
  for (int i = 0; i < kN; ++i) values[i] = i + 1;
  std::shuffle(values.begin(), values.end(), std::mt19937(7));
  for (double v : values) w.Record(v);
  const LatencySnapshot s = w.Snapshot();
  EXPECT_EQ(s.count, kN);
  EXPECT_FALSE(s.exact);
  EXPECT_DOUBLE_EQ(s.avg_ms, (kN + 1) / 2.0);  // still exact
  // 10k-sample reservoir: quantile std ≈ sqrt(q(1-q)/1e4) ≤ 0.005; allow ±3% of range.
  EXPECT_NEAR(s.p50_ms, 0.50 * kN, 0.03 * kN);
  EXPECT_NEAR(s.p95_ms, 0.95 * kN, 0.03 * kN);
  EXPECT_NEAR(s.p99_ms, 0.99 * kN, 0.03 * kN);
}

TEST(LatencyWindow, ConcurrentRecords) {
  LatencyWindow w;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 1; i <= 10'000; ++i) {
        w.Record(i % 100 + 1);
        if (i % 2'500 == 0) (void)w.Snapshot();
      }
    });
  }
  for (auto& th : threads) th.join();
  const LatencySnapshot s = w.Snapshot();
  EXPECT_EQ(s.count, 40'000);
  EXPECT_EQ(s.p50_ms, 50);
  EXPECT_EQ(s.p99_ms, 99);
}

// ---- process stats ----

TEST(ProcessStats, Sane) {
  EXPECT_GT(ProcessResidentBytes(), 1e6);
  EXPECT_GE(ProcessVirtualBytes(), ProcessResidentBytes());
  EXPECT_GT(ProcessOpenFds(), 2);  // stdin, stdout, stderr at least
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GT(ProcessStartTimeSeconds(), now - 7 * 86400.0);
  EXPECT_LE(ProcessStartTimeSeconds(), now + 1);

  const double before = ProcessCpuSeconds();
  volatile double sink = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (std::chrono::steady_clock::now() < until) {
    for (int i = 0; i < 10'000; ++i) sink = sink + std::sqrt(double(i));
  }
  EXPECT_GT(ProcessCpuSeconds(), before + 0.05);
}

TEST(ProcessStats, RegisteredNames) {
  MetricsRegistry r;
  RegisterProcessMetrics(r);
  const std::string text = r.Exposition();
  for (const char* line :
       {"# TYPE process_cpu_seconds_total counter\n",
        "# TYPE process_resident_memory_bytes gauge\n", "# TYPE process_start_time_seconds gauge\n",
        "# TYPE process_open_fds gauge\n", "\nprocess_open_fds ",
        "\nprocess_resident_memory_bytes "}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

}  // namespace
}  // namespace encserve::server
