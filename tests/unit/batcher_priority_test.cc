// Priorities in the batcher on the real model: an interactive request overtakes queued batch
// work, batch work runs in short slices while interactive requests are around (and in full
// batches otherwise), admission counts for an interactive request only the interactive work
// ahead of it, and every request of both classes gets its own rows.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "batcher_fixture.h"
#include "scheduler/batcher.h"

namespace encserve::scheduler {
namespace {

class BatcherPriorityTest : public BatcherFixture {
 protected:
  // Checks every row of `out` (from `first`, `count` queries) against the unbatched reference.
  static int Mismatches(const Embeddings& out, int first, int count) {
    const Embeddings& reference = Reference();
    int bad = 0;
    for (int j = 0; j < count; ++j) {
      if (::encserve::testing::MaxAbsDiff(out.row(j), reference.row((first + j) % 512), out.dim) >
          1e-4f) {
        ++bad;
      }
    }
    return bad;
  }
};

struct BatchLog {
  std::mutex mu;
  std::vector<int> items;  // per batch, in the order they ran
  BatcherObserver Observer() {
    BatcherObserver o;
    o.on_batch = [this](int n, int, int, double) {
      std::lock_guard<std::mutex> lock(mu);
      items.push_back(n);
    };
    return o;
  }
  size_t count() {
    std::lock_guard<std::mutex> lock(mu);
    return items.size();
  }
};

// One worker, batches of 8. Sixteen batch clients queue 16 queries each (32 batches), then an
// interactive query from a new client: it runs in the next batch or so. (By the fair order
// alone, it would go after the first turn of every batch client: about 16 batches.)
TEST_F(BatcherPriorityTest, InteractiveRequestOvertakesQueuedBatchWork) {
  (void)Reference();
  BatchLog log;
  BatcherOptions o;
  o.workers = 1;
  o.policy.max_batch_size = 8;
  Batcher batcher(engine_->backend(), o, log.Observer());
  std::vector<std::shared_ptr<BatchRequest>> bulk;
  std::atomic<int> bulk_ok{0};
  std::promise<void> all_bulk;
  for (int c = 0; c < 16; ++c) {
    bulk.push_back(Request(c * 16, 16, 100 + c));
    bulk.back()->priority = Priority::kBatch;
    bulk.back()->on_done = [&, c](const Status& st, const Embeddings& out) {
      EXPECT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(Mismatches(out, c * 16, 16), 0);
      if (++bulk_ok == 16) all_bulk.set_value();
    };
  }
  auto query = Request({300}, 2);
  std::promise<size_t> query_done;
  query->on_done = [&](const Status& st, const Embeddings& out) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_EQ(Mismatches(out, 300, 1), 0);
    query_done.set_value(log.count());
  };
  for (auto& r : bulk) ASSERT_TRUE(batcher.Submit(r).ok());
  ASSERT_TRUE(batcher.Submit(query).ok());
  const size_t query_after = query_done.get_future().get();
  all_bulk.get_future().wait();
  // The batch running when it came (or two, had the worker taken the next meanwhile), then its.
  EXPECT_LE(query_after, 3u) << "batches run before the interactive query was answered";
  EXPECT_GE(log.count(), 33u);
}

// Before any interactive request, batch work runs in full batches; after one, in slices of
// about batch_slice of measured work (far fewer than 64 texts here), until the window passes.
TEST_F(BatcherPriorityTest, BatchWorkRunsInSlicesWhileInteractiveRequestsAreAround) {
  BatchLog log;
  BatcherOptions o;
  o.workers = 1;
  o.policy.max_batch_size = 64;
  o.batch_slice = std::chrono::microseconds(500);
  o.interactive_window = std::chrono::milliseconds(60'000);
  Batcher batcher(engine_->backend(), o, log.Observer());
  auto bulk = Request(0, 64, 1);
  bulk->priority = Priority::kBatch;
  ASSERT_TRUE(SubmitAndWait(batcher, bulk).ok());
  ASSERT_EQ(log.count(), 1u);                                  // one full batch
  ASSERT_TRUE(SubmitAndWait(batcher, Request({70}, 2)).ok());  // interactive
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // (the cost is recorded)
  const size_t before = log.count();
  auto bulk2 = Request(100, 64, 1);
  bulk2->priority = Priority::kBatch;
  ASSERT_TRUE(SubmitAndWait(batcher, bulk2).ok());
  std::lock_guard<std::mutex> lock(log.mu);
  EXPECT_GE(log.items.size() - before, 4u) << "64 texts should have run in slices";
  for (size_t i = before; i < log.items.size(); ++i) EXPECT_LT(log.items[i], 32);
}

// With a queue-time budget and a backlog of batch work far over it, an interactive request is
// admitted (only interactive work is ahead of it), a batch request is refused.
TEST_F(BatcherPriorityTest, AdmissionCountsOnlyInteractiveWorkForAnInteractiveRequest) {
  Batcher batcher(engine_->backend(), BudgetOptions(8, 20));
  ASSERT_TRUE(SubmitAndWait(batcher, Request(0, 8, 9)).ok());  // the cost per token is measured
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  // Batch requests from many clients (each under the per-client half), until refused.
  std::vector<std::shared_ptr<BatchRequest>> reqs;
  for (int i = 0; i < 200; ++i) {
    reqs.push_back(Request(i * 8, 8, 100 + i));
    reqs.back()->priority = Priority::kBatch;
  }
  std::atomic<int> answered{0};
  int accepted = 0;
  bool refused = false;
  for (auto& r : reqs) {
    r->on_done = [&](const Status&, const Embeddings&) { answered++; };
    Status st = batcher.Submit(r);
    if (st.ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(st.code(), StatusCode::kResourceExhausted) << st.ToString();
      refused = true;
      break;
    }
  }
  ASSERT_TRUE(refused) << "the batch backlog never reached the budget";
  // Right after the refusal over 20 ms of batch work is queued: an interactive request counts
  // none of it, a batch request all of it.
  const double interactive_s = batcher.ExpectedWaitSeconds(5, 1, Priority::kInteractive);
  const double batch_s = batcher.ExpectedWaitSeconds(5, 1, Priority::kBatch);
  EXPECT_TRUE(batcher.Admit(5, 1, Priority::kInteractive).ok());
  EXPECT_LT(interactive_s, batch_s);
  if (batch_s > 0.020) {
    EXPECT_EQ(batcher.Admit(5, 1, Priority::kBatch).code(), StatusCode::kResourceExhausted);
  }
  auto query = Request({450}, 5);
  EXPECT_TRUE(SubmitAndWait(batcher, query).ok());
  batcher.Shutdown(Clock::now() + std::chrono::seconds(60));
  EXPECT_EQ(answered.load(), accepted);
}

// Both classes from many threads at once: every request answered once, with its own rows.
TEST_F(BatcherPriorityTest, MixedClassesUnderConcurrencyGetTheirOwnRows) {
  (void)Reference();
  BatcherOptions o;
  o.workers = 2;
  o.policy.max_batch_size = 16;
  o.batch_slice = std::chrono::microseconds(300);
  Batcher batcher(engine_->backend(), o);
  std::atomic<int> mismatches{0}, failures{0}, done{0};
  std::vector<std::thread> threads;
  for (int c = 0; c < 8; ++c) {
    threads.emplace_back([&, c] {
      for (int k = 0; k < 6; ++k) {
        const int first = (c * 61 + k * 17) % 512, count = c % 2 == 0 ? 24 : 1 + k % 3;
        auto r = Request(first, count, 1000 + c);
        r->priority = c % 2 == 0 ? Priority::kBatch : Priority::kInteractive;
        std::promise<void> finished;
        r->on_done = [&](const Status& st, const Embeddings& out) {
          if (!st.ok()) {
            failures++;
          } else {
            mismatches += Mismatches(out, first, count);
          }
          done++;
          finished.set_value();
        };
        ASSERT_TRUE(batcher.Submit(r).ok());
        finished.get_future().wait();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), 48);
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace encserve::scheduler
