// The dynamic batcher on the real model: results scattered to the right request and row under
// concurrency (batching on and off), real batches form, bounds, cancellation, deadlines,
// shutdown (every request answered exactly once).
#include "scheduler/batcher.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "batcher_fixture.h"

namespace encserve::scheduler {
namespace {

class BatcherTest : public BatcherFixture {
 protected:
  // Runs `clients` threads, each sending `per_client` requests of 1..max_texts distinct
  // queries, and checks every row against the unbatched reference.
  void RunConcurrent(Batcher& batcher, int clients, int per_client, int max_texts) {
    const Embeddings& reference = Reference();  // (before the threads)
    std::atomic<int> mismatches{0}, failures{0}, done{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        for (int k = 0; k < per_client; ++k) {
          const int n = 1 + (c * 7 + k) % max_texts;
          std::vector<int> rows;
          for (int j = 0; j < n; ++j) rows.push_back((c * 31 + k * 13 + j * 5) % 512);
          auto req = Request(rows);
          std::promise<void> finished;
          req->on_done = [&, rows](const Status& st, const Embeddings& out) {
            if (!st.ok()) {
              failures++;
            } else {
              for (size_t j = 0; j < rows.size(); ++j) {
                if (::encserve::testing::MaxAbsDiff(out.row(static_cast<int>(j)),
                                                    reference.row(rows[j]), out.dim) > 1e-4f) {
                  mismatches++;
                }
              }
            }
            done++;
            finished.set_value();
          };
          ASSERT_TRUE(batcher.Submit(req).ok());
          finished.get_future().wait();
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(done.load(), clients * per_client);
    EXPECT_EQ(failures.load(), 0);
    EXPECT_EQ(mismatches.load(), 0);
  }
};

struct BatchStats {
  std::atomic<int> batches{0}, items{0}, max_items{0};
  BatcherObserver Observer() {
    BatcherObserver o;
    o.on_batch = [this](int n, int, int, double) {
      batches++;
      items += n;
      int m = max_items.load();
      while (n > m && !max_items.compare_exchange_weak(m, n)) {
      }
    };
    return o;
  }
};

TEST_F(BatcherTest, ConcurrentClientsGetTheirOwnRowsWithBatching) {
  BatchStats stats;
  BatcherOptions o;
  o.workers = 2;
  o.policy.max_batch_size = 32;
  Batcher batcher(engine_->backend(), o, stats.Observer());
  RunConcurrent(batcher, 32, 8, 5);
  EXPECT_GT(stats.max_items.load(), 5);  // requests were merged into larger batches
}

TEST_F(BatcherTest, ConcurrentClientsGetTheirOwnRowsWithoutBatching) {
  BatchStats stats;
  BatcherOptions o;
  o.workers = 2;
  o.policy.enabled = false;
  Batcher batcher(engine_->backend(), o, stats.Observer());
  RunConcurrent(batcher, 16, 8, 5);
  EXPECT_LE(stats.max_items.load(), 5);  // a batch never holds more than one request
}

TEST_F(BatcherTest, LargeRequestIsSplitAcrossBatchesInOrder) {
  BatchStats stats;
  BatcherOptions o;
  o.policy.max_batch_size = 16;
  Batcher batcher(engine_->backend(), o, stats.Observer());
  std::vector<int> rows;
  for (int i = 0; i < 100; ++i) rows.push_back(511 - i);
  auto req = Request(rows);
  const Clock::time_point before = Clock::now();
  ASSERT_TRUE(SubmitAndWait(batcher, req).ok());
  const Clock::time_point after = Clock::now();
  EXPECT_GE(stats.batches.load(), 7);
  EXPECT_LE(stats.max_items.load(), 16);
  // When its first batch started (the queue and inference times of request_trace.h): after it
  // was queued, before its answer.
  const Clock::time_point first{Clock::duration(req->first_batch_ticks.load())};
  EXPECT_GE(first, req->enqueued);
  EXPECT_GE(req->enqueued, before);
  EXPECT_LT(first, after);
  for (int j = 0; j < 100; ++j) {
    EXPECT_LT(
        ::encserve::testing::MaxAbsDiff(req->out.row(j), Reference().row(rows[j]), req->out.dim),
        1e-4f);
  }
}

TEST_F(BatcherTest, SingleTextClientsFormRealBatches) {
  BatchStats stats;
  BatcherOptions o;
  o.workers = 1;
  o.policy.max_batch_size = 64;
  o.policy.max_wait = std::chrono::microseconds(2000);
  Batcher batcher(engine_->backend(), o, stats.Observer());
  RunConcurrent(batcher, 64, 4, 1);
  const double mean = static_cast<double>(stats.items.load()) / stats.batches.load();
  EXPECT_GT(mean, 4.0) << stats.batches.load() << " batches";
}

TEST_F(BatcherTest, QueueBoundsRefuseWork) {
  BatcherOptions o;
  o.max_queue_items = 8;
  Batcher batcher(engine_->backend(), o);
  EXPECT_EQ(batcher.Submit(Request({0, 1, 2, 3, 4, 5, 6, 7, 8})).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(batcher.Submit(std::make_shared<BatchRequest>()).code(), StatusCode::kInvalidArgument);
}

TEST_F(BatcherTest, BurstBeyondTheBoundIsRefusedAndTheRestIsAnswered) {
  BatcherOptions o;
  o.workers = 1;
  o.max_queue_items = 16;
  o.policy.max_batch_size = 4;
  Batcher batcher(engine_->backend(), o);
  std::atomic<int> ok{0}, answered{0};
  int accepted = 0, refused = 0;
  std::vector<std::shared_ptr<BatchRequest>> reqs;
  for (int i = 0; i < 200; ++i) {
    auto req = Request({i, i + 1});
    req->on_done = [&](const Status& st, const Embeddings&) {
      if (st.ok()) ok++;
      answered++;
    };
    Status st = batcher.Submit(req);
    if (st.ok()) {
      accepted++;
    } else {
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
      refused++;
    }
  }
  batcher.Shutdown(Clock::now() + std::chrono::seconds(60));
  EXPECT_GT(refused, 0);
  EXPECT_EQ(answered.load(), accepted);
  EXPECT_EQ(ok.load(), accepted);
}

// The queue-time budget: once a batch has measured the cost per token, work that would wait
// longer than the budget is refused (RESOURCE_EXHAUSTED, before and at Submit), and every
// admitted request is answered.
TEST_F(BatcherTest, QueueBudgetRefusesWorkThatWouldWaitTooLong) {
  Batcher batcher(engine_->backend(), BudgetOptions(4, 2));
  EXPECT_TRUE(batcher.Admit().ok());  // nothing measured, nothing queued
  ASSERT_TRUE(SubmitAndWait(batcher, Request({0, 1, 2, 3})).ok());
  // (The cost is recorded right after the first request's callback: give it a moment.)
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::atomic<int> answered{0}, ok{0};
  int accepted = 0, refused = 0;
  // Built first, then submitted back to back: the queue outgrows the budget whatever the speed
  // of the machine (tokenising in the loop could let the worker keep up).
  std::vector<std::shared_ptr<BatchRequest>> reqs;
  for (int i = 0; i < 400; ++i) {
    reqs.push_back(Request({i % 512, (i + 1) % 512, (i + 2) % 512, (i + 3) % 512}));
  }
  for (auto& req : reqs) {
    req->on_done = [&](const Status& st, const Embeddings&) {
      if (st.ok()) ok++;
      answered++;
    };
    Status st = batcher.Submit(req);
    if (st.ok()) {
      accepted++;
    } else {
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
      EXPECT_NE(st.message().find("queue budget"), std::string::npos) << st.message();
      refused++;
    }
  }
  // While the queue is over budget, Admit (the pre-tokenisation check) refuses too.
  if (batcher.ExpectedWaitSeconds() * 1e3 > 2.0) {
    EXPECT_EQ(batcher.Admit().code(), StatusCode::kResourceExhausted);
  }
  batcher.Shutdown(Clock::now() + std::chrono::seconds(60));
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(answered.load(), accepted);
  EXPECT_EQ(ok.load(), accepted);
  EXPECT_EQ(batcher.ExpectedWaitSeconds(), 0.0);  // all queued work ran
}

// A request into an idle batcher (nothing queued or running) is admitted whatever its size, the
// budget and the calibration factor: refusing it could not shorten any wait.
TEST_F(BatcherTest, QueueBudgetAdmitsAnyRequestIntoAnIdleQueue) {
  Batcher batcher(engine_->backend(), BudgetOptions(64, 1));
  // (The second round with a measured cost: one text of the model's whole length is then over
  // the 1-ms budget's batch token cap, and 64 texts are too. The third with the factor at 4,
  // as after a stall: the estimate of the request's own first batch, up to half the budget,
  // scaled by 4 is then twice the budget; only the idle-queue rule admits it.)
  std::string long_text;
  for (int i = 0; i < 600; ++i) long_text += (*queries_)[i % 512] + " ";
  for (int round = 0; round < 3; ++round) {
    if (round == 2) {
      batcher.AddWaitRatiosForTest(10.0, 256);
      ASSERT_EQ(batcher.wait_factor(), 4.0);
      ASSERT_GT(batcher.ExpectedWaitSeconds(0, 64) * 1e3, 1.0);  // over the budget
    }
    std::vector<int> rows;
    for (int i = 0; i < 64; ++i) rows.push_back((i * 7 + round) % 512);
    EXPECT_TRUE(batcher.Admit(0, 64).ok()) << round;
    auto r = Request(rows);
    auto e = engine_->tokenizer().Encode(long_text, engine_->max_length());
    ASSERT_TRUE(e.ok());
    r->inputs.insert(r->inputs.begin(), std::move(e).value());  // its first item: the long one
    ASSERT_TRUE(SubmitAndWait(batcher, r).ok()) << round;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the cost is recorded
  }
}

// A client that sends its next request as soon as it has the answer finds the worker free:
// admission does not count the batch that produced the answer as still running (it did, and
// with a cost per token above the batch's actual time it refused the client on an idle server).
TEST_F(BatcherTest, QueueBudgetSeesTheWorkerFreeOnceTheAnswerIsOut) {
  Batcher batcher(engine_->backend(), BudgetOptions(64, 1));
  int refused = 0;
  for (int k = 0; k < 40; ++k) {
    std::vector<int> rows;
    // Alternately 32 texts and 1: the cost per token of one batch misjudges the next one's.
    for (int i = 0; i < (k % 2 == 0 ? 32 : 1); ++i) rows.push_back((k * 37 + i) % 512);
    auto r = Request(rows);
    std::promise<Status> done;
    r->on_done = [&](const Status& st, const Embeddings&) {
      if (!batcher.Admit(0, 8).ok()) ++refused;  // what the next request would be told now
      done.set_value(st);
    };
    ASSERT_TRUE(batcher.Submit(r).ok()) << k;
    ASSERT_TRUE(done.get_future().get().ok()) << k;
  }
  EXPECT_EQ(refused, 0);
}

// The budget is per client: behind a large request that has had its turn, another client's
// request is admitted at once, while more work from the large request's client is refused.
TEST_F(BatcherTest, QueueBudgetAdmitsOtherClientsBehindALargeRequest) {
  BatcherOptions o;
  o.workers = 1;
  o.policy.max_batch_size = 8;
  // The budget: two batches of 8 on this machine and build (a sanitizer build is slower), so
  // that another client's one-text request fits (what is left of the running batch, then its
  // own text), though not a whole second batch: the batch it joins is not its own work.
  const double batch_s = SlowestBatchOf8(o);
  o.queue_budget = std::chrono::milliseconds(std::max<int64_t>(4, int64_t(2e3 * batch_s)));
  const double budget_s = static_cast<double>(o.queue_budget.count()) * 1e-3;
  Batcher batcher(engine_->backend(), o);
  {
    auto first = Request({0, 1, 2, 3, 4, 5, 6, 7});
    first->client = 1;
    ASSERT_TRUE(SubmitAndWait(batcher, first).ok());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the cost is recorded
  // What is checked here is whose work counts, not the calibration: a full window of exact
  // estimates keeps the factor at 1 whatever a noisy first batch measures (under a sanitizer
  // with other tests beside it, one slow batch set the factor to 2 and the one-text request of
  // another client was refused in CI).
  batcher.AddWaitRatiosForTest(1.0, 256);
  std::vector<int> rows;  // (many times the budget: 50 batches of 8)
  for (int i = 0; i < 400; ++i) rows.push_back(i);
  auto large = Request(rows);
  large->client = 1;
  std::promise<void> large_done;
  large->on_done = [&](const Status& st, const Embeddings&) {
    EXPECT_TRUE(st.ok());
    large_done.set_value();
  };
  ASSERT_TRUE(batcher.Submit(large).ok());                             // the queue was empty
  while (batcher.queued_items() > 400 - 8) std::this_thread::yield();  // its first turn ran
  if (batcher.queued_items() > 100) {  // (the machine may have run it all already)
    ASSERT_EQ(batcher.wait_factor(), 1.0);
    EXPECT_TRUE(batcher.Admit(2, 1).ok());
    EXPECT_EQ(batcher.Admit(1, 1).code(), StatusCode::kResourceExhausted);
    EXPECT_GT(batcher.ExpectedWaitSeconds(1, 1), budget_s);
    EXPECT_LT(batcher.ExpectedWaitSeconds(2, 1), budget_s);
  }
  large_done.get_future().wait();
}

// One client may hold at most half the budget of queued work as admission expects it to take
// (scaled by the calibration factor). With the factor at 4 and a budget of 40 batches, a client
// that queues request after request (one batch each) is refused for its own share (at 5 batches
// of measured work) before the budget check proper would refuse it (at about 10, less the batch
// running and its own), and another client is still admitted. With the share unscaled (20
// batches), the budget check refused it first.
TEST_F(BatcherTest, QueueBudgetClientShareIsScaledByTheCalibrationFactor) {
  BatcherOptions o = BudgetOptions(8, 0);
  const double batch_s = SlowestBatchOf8(o);  // on this machine and build
  o.queue_budget = std::chrono::milliseconds(std::max<int64_t>(20, int64_t(40e3 * batch_s)));
  Batcher batcher(engine_->backend(), o);
  ASSERT_TRUE(SubmitAndWait(batcher, Request({0, 1, 2, 3, 4, 5, 6, 7})).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the cost is recorded
  batcher.AddWaitRatiosForTest(10.0, 256);
  ASSERT_EQ(batcher.wait_factor(), 4.0);
  std::vector<std::shared_ptr<BatchRequest>> reqs;  // built first, submitted back to back
  for (int k = 0; k < 200; ++k) {
    std::vector<int> rows;
    for (int i = 0; i < 8; ++i) rows.push_back((k * 8 + i) % 512);
    reqs.push_back(Request(rows));
    reqs.back()->client = 1;
  }
  std::atomic<int> answered{0};
  int accepted = 0;
  Status refusal;
  for (auto& r : reqs) {
    r->on_done = [&](const Status&, const Embeddings&) { answered++; };
    refusal = batcher.Submit(r);
    if (!refusal.ok()) break;
    ++accepted;
  }
  EXPECT_EQ(refusal.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(refusal.message().find("this connection already has"), std::string::npos)
      << refusal.message() << " (budget " << o.queue_budget.count() << " ms)";
  EXPECT_TRUE(batcher.Admit(2, 1).ok()) << "another client's one text";
  batcher.Shutdown(Clock::now() + std::chrono::seconds(60));
  EXPECT_EQ(answered.load(), accepted);
}

// A small request submitted right behind a large one (same client) runs long before the large
// one finishes: the fair order gives it the second batch.
TEST_F(BatcherTest, SmallRequestOvertakesALargeOne) {
  const Embeddings& reference = Reference();  // (before the worker's callbacks use it)
  BatcherOptions o;
  o.workers = 1;
  o.policy.max_batch_size = 8;
  Batcher batcher(engine_->backend(), o);
  std::vector<int> rows;
  for (int i = 0; i < 256; ++i) rows.push_back(i);
  auto large = Request(rows);
  auto small = Request({300});
  std::atomic<int> order{0};
  int large_done_at = -1, small_done_at = -1;
  std::promise<void> both;
  std::atomic<int> left{2};
  large->on_done = [&](const Status& st, const Embeddings&) {
    EXPECT_TRUE(st.ok());
    large_done_at = order++;
    if (--left == 0) both.set_value();
  };
  small->on_done = [&](const Status& st, const Embeddings& out) {
    EXPECT_TRUE(st.ok());
    EXPECT_LE(::encserve::testing::MaxAbsDiff(out.row(0), reference.row(300), out.dim), 1e-4f);
    small_done_at = order++;
    if (--left == 0) both.set_value();
  };
  ASSERT_TRUE(batcher.Submit(large).ok());
  ASSERT_TRUE(batcher.Submit(small).ok());
  both.get_future().wait();
  EXPECT_EQ(small_done_at, 0);
  EXPECT_EQ(large_done_at, 1);
}

TEST_F(BatcherTest, CancelledAndExpiredRequestsAreDropped) {
  std::atomic<int> dropped{0};
  BatcherObserver obs;
  obs.on_dropped = [&](StatusCode, int n) { dropped += n; };
  BatcherOptions o;
  Batcher batcher(engine_->backend(), o, obs);
  auto cancelled = Request({1, 2, 3});
  cancelled->cancelled = std::make_shared<std::atomic<bool>>(true);
  auto expired = Request({4, 5});
  expired->deadline = Clock::now() - std::chrono::milliseconds(1);
  std::promise<Status> p1, p2;
  cancelled->on_done = [&](const Status& st, const Embeddings&) { p1.set_value(st); };
  expired->on_done = [&](const Status& st, const Embeddings&) { p2.set_value(st); };
  ASSERT_TRUE(batcher.Submit(cancelled).ok());
  ASSERT_TRUE(batcher.Submit(expired).ok());
  EXPECT_EQ(p1.get_future().get().code(), StatusCode::kCancelled);
  EXPECT_EQ(p2.get_future().get().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(dropped.load(), 5);
}

TEST_F(BatcherTest, ShutdownAnswersEveryRequestExactlyOnce) {
  BatcherOptions o;
  o.workers = 1;
  o.policy.max_batch_size = 2;
  auto batcher = std::make_unique<Batcher>(engine_->backend(), o);
  std::atomic<int> calls{0}, ok{0}, unavailable{0};
  for (int i = 0; i < 300; ++i) {
    auto req = Request({i});
    req->on_done = [&](const Status& st, const Embeddings&) {
      calls++;
      if (st.ok()) ok++;
      if (st.code() == StatusCode::kUnavailable) unavailable++;
    };
    ASSERT_TRUE(batcher->Submit(req).ok());
  }
  batcher->Shutdown(Clock::now());  // no grace: what has not started fails UNAVAILABLE
  EXPECT_EQ(calls.load(), 300);
  EXPECT_EQ(ok.load() + unavailable.load(), 300);
  EXPECT_GT(unavailable.load(), 0);
  EXPECT_EQ(batcher->Submit(Request({1})).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace encserve::scheduler
