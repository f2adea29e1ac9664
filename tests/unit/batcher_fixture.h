// The fixture the batcher's tests share: the real model (native fp32, one thread per replica,
// two replicas), the first 512 MS MARCO dev-small queries, requests built from them, and a probe
// of one batch's time on this machine and build (a sanitizer build is slower).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "eval/datasets.h"
#include "native_pipeline.h"
#include "scheduler/batcher.h"
#include "test_util.h"

namespace encserve::scheduler {

class BatcherFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ::encserve::testing::NativeLoad o;
    o.model_dir = ::encserve::testing::ModelDir();
    o.threads = 1;
    o.replicas = 2;
    auto e = ::encserve::testing::LoadNative(o);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(e).value().release();
    auto q =
        eval::LoadMsMarcoQueries(::encserve::testing::DataDir() + "/msmarco-dev-small-queries.tsv");
    ASSERT_TRUE(q.ok()) << q.status().ToString();
    queries_ = new std::vector<std::string>(q->begin(), q->begin() + 512);
  }
  static void TearDownTestSuite() {
    delete engine_;
    delete queries_;
    delete reference_;
    engine_ = nullptr;
    queries_ = nullptr;
    reference_ = nullptr;  // (computed again on first use if the suite runs again)
  }

  // The 512 queries embedded in one call, unbatched by the batcher: computed on first use (most
  // tests do not compare rows, and under the sanitizers this is most of a test's time).
  static const Embeddings& Reference() {
    if (reference_ == nullptr) {
      auto ref = engine_->Embed(*queries_, /*normalize=*/false);
      if (!ref.ok()) {
        std::fprintf(stderr, "reference embeddings failed: %s\n", ref.status().ToString().c_str());
        std::abort();
      }
      reference_ = new Embeddings(std::move(ref).value());
    }
    return *reference_;
  }

  // A request of `texts` (tokenised here) from `client`.
  static std::shared_ptr<BatchRequest> TextRequest(const std::vector<std::string>& texts,
                                                   uint64_t client = 0) {
    auto r = std::make_shared<BatchRequest>();
    r->client = client;
    for (const std::string& t : texts) {
      auto e = engine_->tokenizer().Encode(t, engine_->max_length());
      EXPECT_TRUE(e.ok());
      r->inputs.push_back(std::move(e).value());
    }
    return r;
  }
  // A request of the queries at `rows`.
  static std::shared_ptr<BatchRequest> Request(const std::vector<int>& rows, uint64_t client = 0) {
    std::vector<std::string> texts;
    for (int i : rows) texts.push_back((*queries_)[static_cast<size_t>(i) % queries_->size()]);
    return TextRequest(texts, client);
  }
  // A request of `count` queries from row `first` on (wrapping around).
  static std::shared_ptr<BatchRequest> Request(int first, int count, uint64_t client) {
    std::vector<int> rows;
    for (int i = 0; i < count; ++i) rows.push_back(first + i);
    return Request(rows, client);
  }

  // One worker, batches of up to `max_batch` texts, a queue-time budget of `budget_ms`.
  static BatcherOptions BudgetOptions(int max_batch, int budget_ms) {
    BatcherOptions o;
    o.workers = 1;
    o.policy.max_batch_size = max_batch;
    o.queue_budget = std::chrono::milliseconds(budget_ms);
    return o;
  }

  // Submits `r` and waits for it: Submit's refusal, or the request's final status.
  static Status SubmitAndWait(Batcher& batcher, const std::shared_ptr<BatchRequest>& r) {
    std::promise<Status> done;
    r->on_done = [&](const Status& st, const Embeddings&) { done.set_value(st); };
    Status submitted = batcher.Submit(r);
    if (!submitted.ok()) return submitted;
    return done.get_future().get();
  }

  // The slowest of three requests made by `make(i)` (i = 0, 1, 2), each run alone through a
  // batcher with options `o` (its budget dropped): seconds. 0 when one failed (the test's own
  // checks then fail).
  template <typename Make>
  static double SlowestRequestAlone(BatcherOptions o, Make make) {
    o.queue_budget = std::chrono::milliseconds(0);
    double slowest = 0;
    Batcher probe(engine_->backend(), o);
    for (int i = 0; i < 3; ++i) {
      auto r = make(i);
      const auto t0 = Clock::now();
      EXPECT_TRUE(SubmitAndWait(probe, r).ok());
      slowest = std::max(slowest, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return slowest;
  }
  // One batch of 8 queries with options `o` (max_batch_size >= 8): seconds.
  static double SlowestBatchOf8(const BatcherOptions& o) {
    return SlowestRequestAlone(o, [](int i) { return Request(8 * i, 8, 0); });
  }

  static inline Pipeline* engine_ = nullptr;
  static inline std::vector<std::string>* queries_ = nullptr;
  static inline Embeddings* reference_ = nullptr;
};

}  // namespace encserve::scheduler
