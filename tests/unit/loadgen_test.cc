// The load generator's pieces (src/bench): nearest-rank percentiles, Poisson arrivals, workload
// round-robin, the JSON report, and the runner against a fake in-process client.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "bench/arrival.h"
#include "bench/http_client.h"
#include "bench/latency_stats.h"
#include "bench/load_runner.h"
#include "bench/report.h"
#include "bench/workload.h"
#include "test_util.h"

namespace encserve::bench {
namespace {

// ---- percentiles ----

TEST(LatencyStats, ExactPercentilesOfOneToThousand) {
  std::vector<double> v(1000);
  std::iota(v.begin(), v.end(), 1.0);
  std::shuffle(v.begin(), v.end(), std::mt19937(7));
  const LatencySummary s = Summarize(v);
  EXPECT_EQ(s.count, 1000u);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.p50, 500);
  EXPECT_EQ(s.p90, 900);
  EXPECT_EQ(s.p95, 950);
  EXPECT_EQ(s.p99, 990);
  EXPECT_EQ(s.p999, 999);
  EXPECT_EQ(s.max, 1000);
  EXPECT_DOUBLE_EQ(s.mean, 500.5);
}

TEST(LatencyStats, NearestRankDefinition) {
  const std::vector<double> v = {15, 20, 35, 40, 50};  // sorted
  EXPECT_EQ(NearestRank(v, 0), 15);
  EXPECT_EQ(NearestRank(v, 5), 15);
  EXPECT_EQ(NearestRank(v, 30), 20);
  EXPECT_EQ(NearestRank(v, 40), 20);
  EXPECT_EQ(NearestRank(v, 50), 35);
  EXPECT_EQ(NearestRank(v, 100), 50);
  // Always one of the samples, never an interpolation.
  std::vector<double> w = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(NearestRank(w, 99.9), 10);
  EXPECT_EQ(NearestRank(w, 50), 5);
}

TEST(LatencyStats, SingleSample) {
  std::vector<double> v = {3.25};
  const LatencySummary s = Summarize(v);
  EXPECT_EQ(s.count, 1u);
  for (double x : {s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.p999, s.max}) EXPECT_EQ(x, 3.25);
}

TEST(LatencyStats, EmptyIsAllZero) {
  std::vector<double> v;
  const LatencySummary s = Summarize(v);
  EXPECT_EQ(s.count, 0u);
  for (double x : {s.min, s.mean, s.p50, s.p90, s.p95, s.p99, s.p999, s.max}) EXPECT_EQ(x, 0);
  EXPECT_EQ(NearestRank(v, 50), 0);
}

// ---- Poisson arrivals ----

TEST(Arrivals, MeanInterArrivalIsOneOverRate) {
  for (double rate : {5.0, 250.0, 10000.0}) {
    PoissonArrivals a(rate, 42);
    const int n = 100000;
    double prev = 0, sum = 0, sum_sq = 0;
    for (int i = 0; i < n; ++i) {
      const double t = a.Next();
      ASSERT_GE(t, prev);  // monotonic
      const double gap = t - prev;
      sum += gap;
      sum_sq += gap * gap;
      prev = t;
    }
    const double mean = sum / n;
    EXPECT_NEAR(mean, 1.0 / rate, 0.03 / rate) << "rate " << rate;
    // Exponential gaps: standard deviation equals the mean.
    const double sd = std::sqrt(sum_sq / n - mean * mean);
    EXPECT_NEAR(sd / mean, 1.0, 0.03) << "rate " << rate;
  }
}

TEST(Arrivals, DeterministicWithASeed) {
  const auto a = PoissonSchedule(100, 1000, 7);
  const auto b = PoissonSchedule(100, 1000, 7);
  const auto c = PoissonSchedule(100, 1000, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  PoissonArrivals p(100, 7);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(p.Next(), a[i]);
}

TEST(Arrivals, InjectedUniformSource) {
  PoissonArrivals a(10, [] { return 0.5; });
  EXPECT_DOUBLE_EQ(a.NextGap(), std::log(2.0) / 10);
  PoissonArrivals zero(10, [] { return 0.0; });  // u = 0: a zero gap, never negative
  EXPECT_EQ(zero.Next(), 0);
  EXPECT_EQ(zero.Next(), 0);
}

// ---- workloads ----

// prefix + i (appending, not operator+: GCC 12 -Wrestrict false positive, bug 105329).
std::string Name(const char* prefix, size_t i) {
  std::string s = prefix;
  s.append(std::to_string(i));
  return s;
}

std::vector<std::string> Numbered(int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(Name("t", i));
  return v;
}

TEST(Workload, RoundRobinWithoutRepeatsBeforeTheSetIsExhausted) {
  const int n = 10, batch = 3;
  const Workload w = Workload::FromTexts(Numbered(n));
  std::vector<std::string> seq;
  for (uint64_t r = 0; r < 7; ++r) {
    const Payload p = w.Make(r, batch);
    ASSERT_EQ(p.op, Payload::Op::kEmbed);
    ASSERT_EQ(p.items(), static_cast<size_t>(batch));
    seq.insert(seq.end(), p.texts.begin(), p.texts.end());
  }
  // The first n items are the whole set, each once; then it wraps in the same order.
  EXPECT_EQ(std::set<std::string>(seq.begin(), seq.begin() + n).size(), static_cast<size_t>(n));
  for (size_t i = 0; i < seq.size(); ++i) EXPECT_EQ(seq[i], Name("t", i % n));
}

TEST(Workload, PairsAreRequestsTimesBatch) {
  std::vector<Pair> pairs;
  for (int i = 0; i < 50; ++i) pairs.emplace_back(Name("q", i), Name("p", i));
  const Workload w = Workload::FromPairs(WorkloadKind::kStsB, pairs);
  const int batch = 4, requests = 12;
  std::set<std::string> seen;
  size_t total = 0;
  for (int r = 0; r < requests; ++r) {
    const Payload p = w.Make(r, batch);
    ASSERT_EQ(p.op, Payload::Op::kScore);
    total += p.items();
    for (const auto& [a, b] : p.pairs) {
      EXPECT_EQ(a.substr(1), b.substr(1));  // pairs stay together
      EXPECT_TRUE(seen.insert(a).second) << a << " repeated";
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(requests * batch));
}

TEST(Workload, RerankTakesOneGroupPerRequest) {
  std::vector<RerankGroup> groups = {{"a", {"x", "y"}}, {"b", {"z"}}, {"c", {"u", "v", "w"}}};
  const Workload w = Workload::FromRerank(groups);
  EXPECT_EQ(w.Make(0, 8).query, "a");
  EXPECT_EQ(w.Make(1, 8).items(), 1u);
  EXPECT_EQ(w.Make(2, 8).documents, (std::vector<std::string>{"u", "v", "w"}));
  EXPECT_EQ(w.Make(3, 8).query, "a");
  EXPECT_EQ(w.Make(0, 8).op, Payload::Op::kRerank);
}

TEST(Workload, LoadsTheRealDataSets) {
  const std::string dir = testing::DataDir();
  auto q = Workload::Load(WorkloadKind::kMsMarcoQueries, dir);
  ASSERT_TRUE(q.ok()) << q.status().ToString();
  EXPECT_EQ(q->size(), 6980u);
  EXPECT_EQ(q->Make(872, 8).items(), 8u);  // wraps at 6980 = 872.5 * 8
  auto sts = Workload::Load(WorkloadKind::kStsB, dir);
  ASSERT_TRUE(sts.ok());
  EXPECT_EQ(sts->size(), 1379u);
  auto pairs = Workload::Load(WorkloadKind::kDl19Pairs, dir);
  ASSERT_TRUE(pairs.ok());
  EXPECT_EQ(pairs->size(), 4300u);
  auto rr = Workload::Load(WorkloadKind::kDl19Rerank, dir);
  ASSERT_TRUE(rr.ok());
  EXPECT_EQ(rr->size(), 43u);
  EXPECT_EQ(rr->Make(0, 1).items(), 100u);
  EXPECT_FALSE(Workload::Load(WorkloadKind::kStsB, "/nonexistent").ok());
  EXPECT_FALSE(ParseWorkload("nope").ok());
  EXPECT_EQ(WorkloadName(*ParseWorkload("dl19-rerank")), std::string("dl19-rerank"));
}

TEST(HttpClient, RequestBodies) {
  Payload e;
  e.texts = {"a", "b"};
  EXPECT_EQ(HttpRequestFor(e),
            (std::pair<std::string, std::string>{"/embed", R"({"inputs":["a","b"]})"}));
  Payload s;
  s.op = Payload::Op::kScore;
  s.pairs = {{"q", "p"}};
  EXPECT_EQ(HttpRequestFor(s).first, "/score");
  EXPECT_EQ(nlohmann::json::parse(HttpRequestFor(s).second)["pairs"][0][1], "p");
  Payload r;
  r.op = Payload::Op::kRerank;
  r.query = "q";
  r.documents = {"d1", "d2"};
  auto j = nlohmann::json::parse(HttpRequestFor(r).second);
  EXPECT_EQ(HttpRequestFor(r).first, "/rerank");
  EXPECT_EQ(j["query"], "q");
  EXPECT_EQ(j["texts"].size(), 2u);
}

// ---- the runner, against an in-process client ----

// Completes each request `delay` after it was sent (FIFO, one worker thread); every
// `fail_every`-th request fails with UNAVAILABLE.
class FakeClient : public Client {
 public:
  explicit FakeClient(std::chrono::microseconds delay, int fail_every = 0)
      : delay_(delay), fail_every_(fail_every), worker_([this] { Work(); }) {}
  ~FakeClient() override { Shutdown(); }

  void Send(int slot, std::shared_ptr<const Payload> p, DoneFn done) override {
    std::lock_guard lk(mu_);
    EXPECT_TRUE(busy_slots_.insert(slot).second) << "slot " << slot << " reused while busy";
    max_outstanding_ = std::max(max_outstanding_, busy_slots_.size());
    texts_.insert(texts_.end(), p->texts.begin(), p->texts.end());
    const bool fail = fail_every_ > 0 && ++count_ % fail_every_ == 0;
    queue_.push_back({std::chrono::steady_clock::now() + delay_, slot, fail, std::move(done)});
    cv_.notify_all();
  }
  void Shutdown() override {
    {
      std::lock_guard lk(mu_);
      if (stop_) return;
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  std::string Describe() const override { return "fake"; }

  std::vector<std::string> texts() {
    std::lock_guard lk(mu_);
    return texts_;
  }
  size_t max_outstanding() {
    std::lock_guard lk(mu_);
    return max_outstanding_;
  }

 private:
  struct Item {
    std::chrono::steady_clock::time_point due;
    int slot;
    bool fail;
    DoneFn done;
  };
  void Work() {
    std::unique_lock lk(mu_);
    while (true) {
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      Item it = std::move(queue_.front());
      queue_.pop_front();
      lk.unlock();
      std::this_thread::sleep_until(it.due);
      lk.lock();
      busy_slots_.erase(it.slot);
      lk.unlock();
      CallResult r{!it.fail, it.fail ? "UNAVAILABLE" : "OK", it.fail ? "fake failure" : ""};
      it.done(std::move(r));
      lk.lock();
    }
  }

  std::chrono::microseconds delay_;
  int fail_every_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  std::set<int> busy_slots_;
  size_t max_outstanding_ = 0;
  std::vector<std::string> texts_;
  long count_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

TEST(LoadRunner, ClosedLoopCountsAndExcludesWarmUp) {
  FakeClient client(std::chrono::microseconds(200));
  const Workload w = Workload::FromTexts(Numbered(1000));
  LoadOptions o;
  o.concurrency = 3;
  o.batch = 4;
  o.requests = 50;
  o.warmup_requests = 7;
  o.progress = nullptr;
  const LoadResult r = RunLoad(client, w, o);
  EXPECT_FALSE(r.open_loop);
  EXPECT_EQ(r.sent, 50);
  EXPECT_EQ(r.ok, 50);
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(r.warmup_sent, 7);
  EXPECT_EQ(r.latency.count, 50u);
  EXPECT_EQ(r.items, 50 * 4);
  EXPECT_GT(r.seconds, 0);
  EXPECT_GT(r.requests_per_s, 0);
  EXPECT_NEAR(r.items_per_s, r.requests_per_s * 4, 1e-6);
  EXPECT_GE(r.latency.min, 0.2);
  EXPECT_LE(client.max_outstanding(), 3u);
  // Warm-up and measurement continue one item sequence: 57 requests x 4 distinct texts.
  const auto texts = client.texts();
  ASSERT_EQ(texts.size(), 57u * 4);
  EXPECT_EQ(std::set<std::string>(texts.begin(), texts.end()).size(), texts.size());
}

TEST(LoadRunner, ErrorsAreCountedByCodeAndLeftOutOfLatency) {
  FakeClient client(std::chrono::microseconds(50), /*fail_every=*/5);
  const Workload w = Workload::FromTexts(Numbered(100));
  LoadOptions o;
  o.concurrency = 2;
  o.batch = 1;
  o.requests = 40;
  o.progress = nullptr;
  const LoadResult r = RunLoad(client, w, o);
  EXPECT_EQ(r.sent, 40);
  EXPECT_EQ(r.ok + r.errors, 40);
  EXPECT_EQ(r.errors, 8);
  EXPECT_EQ(r.errors_by_code.at("UNAVAILABLE"), 8);
  EXPECT_EQ(r.first_error.at("UNAVAILABLE"), "fake failure");
  EXPECT_EQ(r.latency.count, 32u);
  EXPECT_EQ(r.items, 32);
}

TEST(LoadRunner, ClosedLoopForADuration) {
  FakeClient client(std::chrono::microseconds(1000));
  const Workload w = Workload::FromTexts(Numbered(10));
  LoadOptions o;
  o.concurrency = 2;
  o.duration_s = 0.2;
  o.progress = nullptr;
  const LoadResult r = RunLoad(client, w, o);
  EXPECT_GT(r.ok, 20);
  EXPECT_GE(r.seconds, 0.19);
  EXPECT_LT(r.seconds, 1.0);
}

TEST(LoadRunner, OpenLoopSendsOnScheduleAndBoundsOutstanding) {
  FakeClient client(std::chrono::microseconds(100));
  const Workload w = Workload::FromTexts(Numbered(100));
  LoadOptions o;
  o.slots = 4;
  o.batch = 2;
  o.requests = 100;
  o.rate = 1000;
  o.progress = nullptr;
  const LoadResult r = RunLoad(client, w, o);
  EXPECT_TRUE(r.open_loop);
  EXPECT_EQ(r.scheduled, 100);
  EXPECT_EQ(r.sent, 100);
  EXPECT_EQ(r.ok, 100);
  EXPECT_EQ(r.not_sent, 0);
  EXPECT_EQ(r.items, 200);
  EXPECT_LE(client.max_outstanding(), 4u);
  EXPECT_GT(r.offered_rate, 500);
}

TEST(LoadRunner, OpenLoopChargesTheWaitForASlot) {
  // One slot, 5 ms per request, 1000 requests/s offered: most arrivals find the slot busy.
  FakeClient client(std::chrono::milliseconds(5));
  const Workload w = Workload::FromTexts(Numbered(100));
  LoadOptions o;
  o.slots = 1;
  o.batch = 1;
  o.requests = 30;
  o.rate = 1000;
  o.progress = nullptr;
  const LoadResult r = RunLoad(client, w, o);
  EXPECT_EQ(r.ok, 30);
  EXPECT_GT(r.late, 10);
  EXPECT_EQ(client.max_outstanding(), 1u);
  // Latency from the scheduled time grows with the backlog, far above the 5 ms service time.
  EXPECT_GT(r.latency.max, 50);
  EXPECT_GT(r.max_send_delay_ms, 40);
}

TEST(LoadRunner, OpenLoopWithADurationDropsWhatCannotBeSent) {
  FakeClient client(std::chrono::milliseconds(20));
  const Workload w = Workload::FromTexts(Numbered(100));
  LoadOptions o;
  o.slots = 1;
  o.batch = 1;
  o.duration_s = 0.2;
  o.rate = 500;
  o.progress = nullptr;
  const LoadResult r = RunLoad(client, w, o);
  EXPECT_GT(r.scheduled, 50);
  EXPECT_GT(r.not_sent, 0);
  EXPECT_EQ(r.sent + r.not_sent, r.scheduled);
  EXPECT_EQ(r.ok, r.sent);
}

// ---- report ----

TEST(Report, JsonHasAllFiguresAndParameters) {
  BenchParams p;
  p.protocol = "grpc";
  p.api = "v1";
  p.target = "127.0.0.1:1234";
  p.workload = "dl19-pairs";
  p.concurrency = 4;
  p.batch = 8;
  p.requests = 200;
  p.warmup_requests = 10;
  p.channels = 1;
  p.client_threads = 2;
  LoadResult r;
  r.sent = 200;
  r.ok = 198;
  r.errors = 2;
  r.errors_by_code["RESOURCE_EXHAUSTED"] = 2;
  r.first_error["RESOURCE_EXHAUSTED"] = "queue full";
  r.items = 198 * 8;
  r.seconds = 2;
  r.requests_per_s = 99;
  r.items_per_s = 792;
  std::vector<double> lat(198);
  std::iota(lat.begin(), lat.end(), 1.0);
  r.latency = Summarize(lat);
  r.warmup_sent = 10;
  const auto j = ReportJson(p, r);
  EXPECT_EQ(j["params"]["protocol"], "grpc");
  EXPECT_EQ(j["params"]["api"], "v1");
  EXPECT_EQ(j["params"]["target"], "127.0.0.1:1234");
  EXPECT_EQ(j["params"]["workload"], "dl19-pairs");
  EXPECT_EQ(j["params"]["concurrency"], 4);
  EXPECT_EQ(j["params"]["batch_size"], 8);
  EXPECT_EQ(j["params"]["requests"], 200);
  EXPECT_EQ(j["params"]["warmup_requests"], 10);
  for (const char* k : {"duration_s", "warmup_s", "rate", "seed", "channels", "client_threads",
                        "timeout_ms", "data_dir", "mode"}) {
    EXPECT_TRUE(j["params"].contains(k)) << k;
  }
  EXPECT_EQ(j["mode"], "closed");
  EXPECT_EQ(j["requests"]["sent"], 200);
  EXPECT_EQ(j["requests"]["ok"], 198);
  EXPECT_EQ(j["requests"]["errors"], 2);
  EXPECT_EQ(j["requests"]["errors_by_code"]["RESOURCE_EXHAUSTED"], 2);
  EXPECT_EQ(j["requests"]["first_error"]["RESOURCE_EXHAUSTED"], "queue full");
  EXPECT_EQ(j["items"], 198 * 8);
  EXPECT_EQ(j["seconds"], 2.0);
  EXPECT_EQ(j["requests_per_s"], 99.0);
  EXPECT_EQ(j["items_per_s"], 792.0);
  const auto& l = j["latency_ms"];
  EXPECT_EQ(l["count"], 198);
  EXPECT_EQ(l["p50_ms"], 99.0);
  EXPECT_EQ(l["p99_ms"], 197.0);
  for (const char* k : {"min_ms", "mean_ms", "p90_ms", "p95_ms", "p99_9_ms", "max_ms"}) {
    EXPECT_TRUE(l.contains(k)) << k;
  }
  EXPECT_EQ(j["warmup"]["sent"], 10);
  EXPECT_FALSE(j.contains("open_loop"));
  // Round-trips through text.
  EXPECT_EQ(nlohmann::json::parse(j.dump())["latency_ms"]["max_ms"], 198.0);

  r.open_loop = true;
  r.scheduled = 210;
  r.late = 7;
  r.not_sent = 10;
  p.rate = 100;
  p.max_outstanding = 64;
  const auto o = ReportJson(p, r);
  EXPECT_EQ(o["mode"], "open");
  EXPECT_EQ(o["params"]["max_outstanding"], 64);
  EXPECT_EQ(o["open_loop"]["scheduled"], 210);
  EXPECT_EQ(o["open_loop"]["late"], 7);
  EXPECT_EQ(o["open_loop"]["not_sent"], 10);
  for (const char* k : {"offered_rate", "mean_send_delay_ms", "max_send_delay_ms"}) {
    EXPECT_TRUE(o["open_loop"].contains(k)) << k;
  }
  const std::string text = ReportText(p, r);
  EXPECT_NE(text.find("p99.9"), std::string::npos);
  EXPECT_NE(text.find("RESOURCE_EXHAUSTED: 2"), std::string::npos);
  EXPECT_NE(text.find("10 not sent"), std::string::npos);
}

}  // namespace
}  // namespace encserve::bench
