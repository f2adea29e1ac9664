// Priorities in the batching decision, with a fake clock: interactive items go before batch
// items, a batch holds one class, batch-only batches respect their cap, a batch item queued
// past the starvation bound goes first; and a simulated run (a saturating batch client beside a
// steady interactive one) that checks both bounds over thousands of decisions.
#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <vector>

#include "scheduler/batching_policy.h"

namespace encserve::scheduler {
namespace {

using std::chrono::microseconds;
const Clock::time_point T0 = Clock::time_point() + std::chrono::hours(1);

QueuedItem Item(uint64_t request, int tokens, int enqueued_us, Priority priority,
                uint64_t client = 0) {
  QueuedItem q{request, tokens, T0 + microseconds(enqueued_us)};
  q.priority = priority;
  q.client_id = client;
  return q;
}
constexpr Priority kI = Priority::kInteractive;
constexpr Priority kB = Priority::kBatch;

PolicyOptions Opts(int max_items, int max_tokens, int bound_us = 2'000'000, int slice_tokens = 0) {
  PolicyOptions o;
  o.max_batch_size = max_items;
  o.max_batch_tokens = max_tokens;
  o.batch_starvation_bound = microseconds(bound_us);
  o.batch_class_max_tokens = slice_tokens;
  return o;
}

TEST(BatchingPriority, InteractiveItemsGoBeforeOlderBatchItemsAndAreNotMixed) {
  std::vector<QueuedItem> q = {Item(1, 10, 0, kB, 1), Item(1, 10, 0, kB, 1), Item(2, 10, 5, kI, 2),
                               Item(3, 10, 6, kI, 3)};
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(8, 1000));
  EXPECT_EQ(d.take, (std::vector<size_t>{2, 3}));  // room for more, but none of the batch class
  // Without interactive items the batch items run (in arrival order here).
  q.erase(q.begin() + 2, q.end());
  d = DecideBatch(q, T0 + microseconds(10), Opts(8, 1000));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1}));
}

TEST(BatchingPriority, BatchOnlyBatchesRespectTheirCapButInteractiveOnesDoNot) {
  std::vector<QueuedItem> q;
  for (int i = 0; i < 6; ++i) q.push_back(Item(1, 10, i, kB));
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(8, 1000, 2'000'000, 25));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1}));  // 20 tokens <= 25 < 30
  // The oldest item always goes, even over the cap.
  q[0].tokens = 40;
  d = DecideBatch(q, T0 + microseconds(10), Opts(8, 1000, 2'000'000, 25));
  EXPECT_EQ(d.take, (std::vector<size_t>{0}));
  // The cap is for the batch class only.
  for (QueuedItem& item : q) item.priority = kI;
  d = DecideBatch(q, T0 + microseconds(10), Opts(8, 1000, 2'000'000, 25));
  EXPECT_EQ(d.take.size(), 6u);
}

TEST(BatchingPriority, ABatchItemPastTheStarvationBoundGoesFirst) {
  std::vector<QueuedItem> q = {Item(1, 10, 0, kB, 1), Item(1, 10, 0, kB, 1),
                               Item(2, 10, 900, kI, 2)};
  // Before the bound: the interactive item alone.
  BatchDecision d = DecideBatch(q, T0 + microseconds(999), Opts(2, 1000, 1000));
  EXPECT_EQ(d.take, (std::vector<size_t>{2}));
  // At the bound the batch items count as interactive, and they are the oldest.
  d = DecideBatch(q, T0 + microseconds(1000), Opts(2, 1000, 1000));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1}));
  // While the batch class is capped (interactive requests around), so are starved items.
  d = DecideBatch(q, T0 + microseconds(1000), Opts(2, 1000, 1000, 15));
  EXPECT_EQ(d.take, (std::vector<size_t>{0}));
}

TEST(BatchingPriority, MaxWaitCountsOnlyTheClassServed) {
  // A lone interactive item waits out max_wait even though batch items would fill a batch.
  std::vector<QueuedItem> q = {Item(1, 10, 0, kB), Item(1, 10, 0, kB), Item(2, 10, 100, kI)};
  PolicyOptions o = Opts(2, 1000);
  o.max_wait = microseconds(500);
  BatchDecision d = DecideBatch(q, T0 + microseconds(200), o);
  EXPECT_TRUE(d.take.empty());
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_EQ(*d.wake_at, T0 + microseconds(600));
  d = DecideBatch(q, T0 + microseconds(600), o);
  EXPECT_EQ(d.take, (std::vector<size_t>{2}));
}

// A worker kept for interactive work (batch_class_blocked) takes no batch items, unless they
// have starved; it still takes interactive ones.
TEST(BatchingPriority, ABlockedWorkerTakesOnlyInteractiveOrStarvedItems) {
  std::vector<QueuedItem> q = {Item(1, 10, 0, kB), Item(1, 10, 0, kB)};
  PolicyOptions o = Opts(8, 1000, 1000);
  o.batch_class_blocked = true;
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), o);
  EXPECT_TRUE(d.take.empty());
  EXPECT_FALSE(d.wake_at.has_value());  // (the batcher wakes it when the window ends)
  q.push_back(Item(2, 10, 5, kI));
  d = DecideBatch(q, T0 + microseconds(10), o);
  EXPECT_EQ(d.take, (std::vector<size_t>{2}));
  q.pop_back();
  d = DecideBatch(q, T0 + microseconds(1000), o);  // starved: they go
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1}));
}

TEST(BatchingPriority, DroppedItemsOfEitherClassAreReported) {
  std::vector<QueuedItem> q = {Item(1, 10, 0, kB), Item(2, 10, 1, kI), Item(3, 10, 2, kB)};
  q[0].cancelled = true;
  q[1].deadline = T0;
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(8, 1000));
  EXPECT_EQ(d.cancelled, (std::vector<size_t>{0}));
  EXPECT_EQ(d.expired, (std::vector<size_t>{1}));
  EXPECT_EQ(d.take, (std::vector<size_t>{2}));
}

// A fake-clock run: one engine at 1 us per token (plus 20 us per batch). A batch client keeps
// 64 texts of 40 tokens queued at all times; an interactive client sends a 12-token query every
// 700 us. Batch-only batches are capped at 200 tokens (what the batcher sets from batch_slice
// while interactive traffic is around). Checked: every interactive query starts within one
// capped batch of arriving (it never waits behind more than the batch running when it came);
// no batch item waits past the starvation bound (plus a batch of the largest size); the batch
// client still gets most of the engine.
TEST(BatchingPriority, SimulatedSaturatingBatchClientBesideInteractiveQueries) {
  constexpr int kTokensPerUs = 1, kOverheadUs = 20, kSlice = 200, kBoundUs = 20'000;
  PolicyOptions o = Opts(32, 8192, kBoundUs, kSlice);
  std::vector<QueuedItem> queue;
  uint64_t next_request = 1;
  auto add_batch_request = [&](Clock::time_point now) {
    const uint64_t id = next_request++;
    for (int i = 0; i < 64; ++i) {
      QueuedItem it{id, 40, now};
      it.priority = kB;
      it.client_id = 1;
      it.offset = 40 * i;
      queue.push_back(it);
    }
  };
  Clock::time_point now = T0;
  Clock::time_point next_query = T0 + microseconds(350);
  int64_t max_interactive_wait_us = 0, max_batch_wait_us = 0, longest_batch_only_us = 0;
  int64_t batch_tokens_run = 0, interactive_served = 0, busy_us = 0;
  const Clock::time_point end = T0 + std::chrono::seconds(2);
  add_batch_request(now);
  while (now < end) {
    while (next_query <= now) {  // queries that arrived while the engine ran
      QueuedItem it{next_request++, 12, next_query};
      it.client_id = 2;
      queue.push_back(it);
      next_query += microseconds(700);
    }
    if (std::none_of(queue.begin(), queue.end(),
                     [](const QueuedItem& i) { return i.priority == kB; })) {
      add_batch_request(now);  // the batch client always has work queued
    }
    BatchDecision d = DecideBatch(queue, now, o);
    ASSERT_FALSE(d.take.empty());  // max_wait 0: something always runs
    int tokens = 0;
    bool batch_only = true;
    for (size_t i : d.take) {
      const QueuedItem& it = queue[i];
      const int64_t waited = std::chrono::duration_cast<microseconds>(now - it.enqueued).count();
      if (it.priority == kI) {
        max_interactive_wait_us = std::max(max_interactive_wait_us, waited);
        ++interactive_served;
        batch_only = false;
      } else {
        max_batch_wait_us = std::max(max_batch_wait_us, waited);
        batch_tokens_run += it.tokens;
      }
      tokens += it.tokens;
    }
    const int64_t run_us = kOverheadUs + tokens / kTokensPerUs;
    if (batch_only) longest_batch_only_us = std::max(longest_batch_only_us, run_us);
    std::vector<size_t> take = d.take;
    std::sort(take.rbegin(), take.rend());
    for (size_t i : take) queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(i));
    now += microseconds(run_us);
    busy_us += run_us;
  }
  EXPECT_GT(interactive_served, 2500);
  // A query waits for at most the batch running when it arrived (capped at the slice).
  EXPECT_LE(longest_batch_only_us, kOverheadUs + kSlice);
  EXPECT_LE(max_interactive_wait_us, longest_batch_only_us);
  // Batch items are never starved past the bound (plus the batch running then).
  EXPECT_LE(max_batch_wait_us, kBoundUs + 8192);
  // The batch client gets the engine whenever no query is queued: over 80 % of it here (the
  // rest: the queries and the per-batch overhead of 200-token slices).
  EXPECT_GT(static_cast<double>(batch_tokens_run) / static_cast<double>(busy_us), 0.8);
}

// With the interactive client saturating the engine, batch items still run: once past the
// starvation bound they go ahead of every newer item, so the last of 50 starts within the bound
// plus the batches of the older ones (7 batches of 8) and the batch running then.
TEST(BatchingPriority, SimulatedInteractiveFloodDoesNotStarveBatchItemsPastTheBound) {
  constexpr int kBoundUs = 5'000;
  PolicyOptions o = Opts(8, 8192, kBoundUs, 0);
  std::vector<QueuedItem> queue;
  uint64_t next_request = 1;
  Clock::time_point now = T0;
  for (int i = 0; i < 50; ++i) {  // 50 batch items queued at the start
    QueuedItem it{next_request++, 30, now};
    it.priority = kB;
    queue.push_back(it);
  }
  int batch_left = 50;
  int64_t max_batch_wait_us = 0;
  while (batch_left > 0 && now < T0 + std::chrono::seconds(1)) {
    // Interactive items arrive faster than they run: 16 of 30 tokens per 100 us.
    for (int i = 0; i < 16; ++i) queue.push_back(QueuedItem{next_request++, 30, now});
    BatchDecision d = DecideBatch(queue, now, o);
    ASSERT_FALSE(d.take.empty());
    int tokens = 0;
    for (size_t i : d.take) {
      if (queue[i].priority == kB) {
        --batch_left;
        max_batch_wait_us = std::max<int64_t>(
            max_batch_wait_us,
            std::chrono::duration_cast<microseconds>(now - queue[i].enqueued).count());
      }
      tokens += queue[i].tokens;
    }
    std::vector<size_t> take = d.take;
    std::sort(take.rbegin(), take.rend());
    for (size_t i : take) queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(i));
    now += microseconds(tokens);  // 1 us per token: 240 us per batch of 8
  }
  EXPECT_EQ(batch_left, 0);
  EXPECT_LE(max_batch_wait_us, kBoundUs + 8 * 240);
  EXPECT_GE(max_batch_wait_us, kBoundUs);  // (they did wait for the bound: the flood went first)
}

}  // namespace
}  // namespace encserve::scheduler
