// FallbackChain (backends/fallback.h) with scripted backends: failover of a failed, hung or
// misshapen batch, out of service after consecutive failures and back in after the back-off,
// request errors never failed over, load failures, and every batch answered exactly once under
// concurrency. The real server's fallback is tested in tests/integration/test_fallback.py.
#include "backends/fallback.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "backends/registry.h"
#include "test_util.h"

namespace encserve::backends {
namespace {

// Answers rows filled with `value`; fails the calls `fail(n)` says (n counts from 1).
class Scripted final : public Backend {
 public:
  Scripted(std::string name, float value, std::function<Status(int64_t)> fail = {},
           int hang_ms_every_call = 0)
      : value_(value), fail_(std::move(fail)), hang_ms_(hang_ms_every_call) {
    info_.name = std::move(name);
    info_.hidden_size = 4;
    info_.num_labels = 1;
  }
  const BackendInfo& info() const override { return info_; }
  StatusOr<Embeddings> Run(Task task, const TokenBatch& batch) const override {
    const int64_t n = ++calls_;
    if (hang_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hang_ms_));
    if (fail_) RETURN_IF_ERROR(fail_(n));
    Embeddings e = Embeddings::Zeros(batch.num_seqs(), task == Task::kEmbed ? 4 : 1);
    for (float& x : e.data) x = value_;
    return e;
  }
  int64_t calls() const { return calls_.load(); }

 private:
  BackendInfo info_;
  float value_;
  std::function<Status(int64_t)> fail_;
  int hang_ms_;
  mutable std::atomic<int64_t> calls_{0};
};

TokenBatch Batch(int seqs) {
  TokenBatch b;
  for (int s = 0; s < seqs; ++s) b.Add({101, 2000 + s, 102}, {});
  return b;
}

// Counts what the chain reports.
struct Counts {
  std::mutex mu;
  std::map<std::string, int> batches, failures, fallbacks;
  FallbackObserver Observer() {
    FallbackObserver o;
    o.on_batch = [this](const std::string& b) {
      std::lock_guard<std::mutex> l(mu);
      ++batches[b];
    };
    o.on_failure = [this](const std::string& b, const std::string& r) {
      std::lock_guard<std::mutex> l(mu);
      ++failures[b + "/" + r];
    };
    o.on_fallback = [this](const std::string& f, const std::string& t, const std::string& r) {
      std::lock_guard<std::mutex> l(mu);
      ++fallbacks[f + ">" + t + "/" + r];
    };
    return o;
  }
};

struct Chain {
  std::unique_ptr<FallbackChain> chain;
  const Scripted* a = nullptr;
  const Scripted* b = nullptr;
};

Chain Make(std::unique_ptr<Scripted> a, std::unique_ptr<Scripted> b, FallbackPolicy p,
           Counts* counts) {
  Chain c;
  c.a = a.get();
  c.b = b.get();
  std::vector<std::unique_ptr<Backend>> v;
  v.push_back(std::move(a));
  v.push_back(std::move(b));
  auto chain = FallbackChain::FromBackends(std::move(v), p, counts->Observer());
  EXPECT_TRUE(chain.ok()) << chain.status().ToString();
  c.chain = std::move(chain).value();
  return c;
}

Status FailOn(int64_t n, int64_t every) {
  return n % every == 0 ? Internal("scripted failure " + std::to_string(n)) : Status::Ok();
}

TEST(FallbackChain, AFailedBatchIsAnsweredOnceByTheNextBackend) {
  Counts counts;
  FallbackPolicy p;
  p.max_failures = 1000;
  Chain c = Make(std::make_unique<Scripted>("a", 1.0f, [](int64_t n) { return FailOn(n, 3); }),
                 std::make_unique<Scripted>("b", 2.0f), p, &counts);
  int from_a = 0, from_b = 0;
  for (int i = 0; i < 30; ++i) {
    auto out = c.chain->Run(Task::kEmbed, Batch(2));
    ASSERT_TRUE(out.ok()) << out.status().ToString();
    ASSERT_EQ(out->rows, 2);
    (out->data[0] == 1.0f ? from_a : from_b)++;
  }
  EXPECT_EQ(from_a, 20);
  EXPECT_EQ(from_b, 10);  // calls 3, 6, ..., 30 of a
  EXPECT_EQ(c.a->calls(), 30);
  EXPECT_EQ(c.b->calls(), 10);
  EXPECT_EQ(counts.batches["a"], 20);
  EXPECT_EQ(counts.batches["b"], 10);
  EXPECT_EQ(counts.failures["a/error"], 10);
  EXPECT_EQ(counts.fallbacks["a>b/error"], 10);
}

TEST(FallbackChain, OutOfServiceAfterConsecutiveFailuresThenRetried) {
  Counts counts;
  FallbackPolicy p;
  p.max_failures = 3;
  p.retry_after_ms = 200;
  std::atomic<bool> healthy{false};
  Chain c =
      Make(std::make_unique<Scripted>(
               "a", 1.0f, [&](int64_t) { return healthy ? Status::Ok() : Unavailable("down"); }),
           std::make_unique<Scripted>("b", 2.0f), p, &counts);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.chain->Run(Task::kEmbed, Batch(1)).ok());
  EXPECT_EQ(c.a->calls(), 3) << "taken out after 3 failures in a row";
  EXPECT_EQ(c.b->calls(), 10);
  EXPECT_EQ(c.chain->Serving(), "b");
  EXPECT_FALSE(c.chain->States()[0].in_service);
  // After the back-off one batch tries a again; it still fails: out again, for twice as long.
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  ASSERT_TRUE(c.chain->Run(Task::kEmbed, Batch(1)).ok());
  EXPECT_EQ(c.a->calls(), 4);
  ASSERT_TRUE(c.chain->Run(Task::kEmbed, Batch(1)).ok());
  EXPECT_EQ(c.a->calls(), 4);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  ASSERT_TRUE(c.chain->Run(Task::kEmbed, Batch(1)).ok());
  EXPECT_EQ(c.a->calls(), 4) << "the second back-off is 400 ms";
  // Recovered: back in service at the next retry.
  healthy = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto out = c.chain->Run(Task::kEmbed, Batch(1));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->data[0], 1.0f);
  EXPECT_EQ(c.chain->Serving(), "a");
  EXPECT_TRUE(c.chain->States()[0].in_service);
  EXPECT_EQ(counts.failures["a/error"], 4);
}

TEST(FallbackChain, AHungCallFailsOverAndItsLateAnswerIsDropped) {
  Counts counts;
  FallbackPolicy p;
  p.max_failures = 1000;
  p.batch_timeout_ms = 50;
  Chain c = Make(std::make_unique<Scripted>("a", 1.0f, nullptr, /*hang_ms=*/300),
                 std::make_unique<Scripted>("b", 2.0f), p, &counts);
  const auto t0 = std::chrono::steady_clock::now();
  auto out = c.chain->Run(Task::kEmbed, Batch(3));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->data[0], 2.0f);
  EXPECT_LT(ms, 250) << "waited for the hung call";
  EXPECT_EQ(counts.fallbacks["a>b/timeout"], 1);
  EXPECT_EQ(counts.batches["a"], 0) << "the late answer is not counted or used";
  EXPECT_EQ(c.a->calls(), 1);
  c.chain.reset();  // joins the hung call (its answer arrives after 300 ms, and is dropped)
}

TEST(FallbackChain, RequestErrorsAndBadShapes) {
  Counts counts;
  FallbackPolicy p;
  // a rejects the request itself: returned as is, never re-run elsewhere.
  Chain c = Make(std::make_unique<Scripted>(
                     "a", 1.0f, [](int64_t) { return InvalidArgument("sequence 0: bad id"); }),
                 std::make_unique<Scripted>("b", 2.0f), p, &counts);
  auto out = c.chain->Run(Task::kEmbed, Batch(1));
  EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.b->calls(), 0);
  EXPECT_TRUE(counts.fallbacks.empty());
}

// Returns one row too few: the chain must not pass it on.
class Short final : public Backend {
 public:
  Short() {
    info_.name = "short";
    info_.hidden_size = 4;
    info_.num_labels = 1;
  }
  const BackendInfo& info() const override { return info_; }
  StatusOr<Embeddings> Run(Task, const TokenBatch& b) const override {
    return Embeddings::Zeros(b.num_seqs() - 1, 4);
  }

 private:
  BackendInfo info_;
};

TEST(FallbackChain, RowsOfTheWrongShapeFailOver) {
  Counts counts;
  std::vector<std::unique_ptr<Backend>> v;
  v.push_back(std::make_unique<Short>());
  v.push_back(std::make_unique<Scripted>("b", 2.0f));
  auto chain = FallbackChain::FromBackends(std::move(v), FallbackPolicy{}, counts.Observer());
  ASSERT_TRUE(chain.ok());
  auto out = (*chain)->Run(Task::kEmbed, Batch(2));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->rows, 2);
  EXPECT_EQ(counts.fallbacks["short>b/bad_output"], 1);
}

TEST(FallbackChain, WhenEveryBackendFailsTheErrorNamesEach) {
  Counts counts;
  FallbackPolicy p;
  Chain c = Make(std::make_unique<Scripted>("a", 1.0f, [](int64_t) { return Internal("boom"); }),
                 std::make_unique<Scripted>("b", 2.0f, [](int64_t) { return Internal("bang"); }), p,
                 &counts);
  auto out = c.chain->Run(Task::kEmbed, Batch(1));
  EXPECT_EQ(out.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(out.status().message().find("a: boom"), std::string::npos) << out.status().message();
  EXPECT_NE(out.status().message().find("b: bang"), std::string::npos) << out.status().message();
  // Both out of service after 3 such batches: every backend is still tried, not refused.
  for (int i = 0; i < 5; ++i) (void)c.chain->Run(Task::kEmbed, Batch(1));
  EXPECT_EQ(c.a->calls(), 6);
  EXPECT_EQ(c.b->calls(), 6);
}

TEST(FallbackChain, ConcurrentCallersGetTheirOwnRowsOnce) {
  Counts counts;
  FallbackPolicy p;
  p.max_failures = 1000;
  Chain c = Make(std::make_unique<Scripted>("a", 1.0f, [](int64_t n) { return FailOn(n, 2); }),
                 std::make_unique<Scripted>("b", 2.0f), p, &counts);
  std::atomic<int> ok{0}, rows{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto out = c.chain->Run(Task::kEmbed, Batch(1 + (t + i) % 5));
        if (out.ok() && out->rows == 1 + (t + i) % 5) ++ok;
        rows += out.ok() ? out->rows : 0;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 400);
  EXPECT_EQ(counts.batches["a"] + counts.batches["b"], 400);
  EXPECT_EQ(counts.fallbacks["a>b/error"], counts.failures["a/error"]);
  EXPECT_EQ(c.a->calls(), 400);
  EXPECT_EQ(c.b->calls(), counts.failures["a/error"]);
}

// Through the registry: a backend that fails to load is left out, the next one serves.
TEST(FallbackChain, LoadFailureStartsOnTheNextBackend) {
  Counts counts;
  CommonOptions common;
  common.model_dir = ::encserve::testing::ModelDir();
  Sections sections;
  sections["fault"]["fail_load"] = "true";
  auto chain =
      FallbackChain::Load({"fault", "null"}, common, sections, FallbackPolicy{}, counts.Observer());
  ASSERT_TRUE(chain.ok()) << chain.status().ToString();
  EXPECT_EQ((*chain)->info().name, "null");
  EXPECT_EQ((*chain)->Serving(), "null");
  const auto states = (*chain)->States();
  ASSERT_EQ(states.size(), 2u);
  EXPECT_FALSE(states[0].loaded);
  EXPECT_NE(states[0].load_error.find("injected load failure"), std::string::npos);
  EXPECT_EQ(counts.failures["fault/load"], 1);
  EXPECT_EQ(counts.fallbacks["fault>null/load"], 1);
  // Nothing loads: an error that names every backend.
  // (onnx fails whether it is built — no such file — or not — not available.)
  sections["fault"]["inner"] = "null";
  sections["onnx"]["file"] = "/no/such/model.onnx";
  auto none = FallbackChain::Load({"fault", "onnx"}, common, sections, FallbackPolicy{});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("injected load failure"), std::string::npos);
  EXPECT_NE(none.status().message().find("backend onnx"), std::string::npos)
      << none.status().message();
  // One backend: its own error, unchanged.
  auto one = FallbackChain::Load({"native"}, CommonOptions{"/no/such/model"}, {}, {});
  EXPECT_EQ(one.status().code(), StatusCode::kNotFound);
}

TEST(BackendRegistry, NamesOptionsAndErrorsComeFromTheRegistry) {
  EXPECT_NE(FindBackend("native"), nullptr);
  EXPECT_EQ(FindBackend("tpu"), nullptr);
  // Test doubles are left out of the user-facing list; every other entry is there.
  EXPECT_EQ(BackendNames(false).rfind("native | null", 0), 0u) << BackendNames(false);
  EXPECT_EQ(BackendNames(false).find("fault"), std::string::npos);
  EXPECT_NE(BackendNames(true).find("fault"), std::string::npos);
  Sections s;
  EXPECT_TRUE(ParseBackendOpt("native.isa=avx2", &s).ok());
  EXPECT_EQ(s["native"]["isa"], "avx2");
  EXPECT_FALSE(ParseBackendOpt("isa=avx2", &s).ok());
  EXPECT_FALSE(ParseBackendOpt("tpu.x=1", &s).ok());
  EXPECT_FALSE(ValidateSection(*FindBackend("native"), {{"isa", "avx9"}}).ok());
  EXPECT_FALSE(ValidateSection(*FindBackend("native"), {{"colour", "red"}}).ok());
  EXPECT_FALSE(ValidateSection(*FindBackend("null"), {{"x", "1"}}).ok());
  CommonOptions c;
  c.model_dir = ::encserve::testing::ModelDir();
  auto bad = CreateBackend("native", c, {{"native", {{"group_size", "48"}}}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("native.group_size"), std::string::npos);
  auto fault = CreateBackend("fault", c, {{"fault", {{"fail_every", "x"}, {"inner", "null"}}}});
  EXPECT_NE(fault.status().message().find("fault.fail_every: 'x' is not an integer"),
            std::string::npos)
      << fault.status().message();
}

}  // namespace
}  // namespace encserve::backends
