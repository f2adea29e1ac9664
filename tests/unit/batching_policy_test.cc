// The batching decision with a fake clock: timeouts, limits, length grouping, fairness.
#include "scheduler/batching_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>

namespace encserve::scheduler {
namespace {

using std::chrono::microseconds;
const Clock::time_point T0 = Clock::time_point() + std::chrono::hours(1);

QueuedItem Item(uint64_t request, int tokens, int enqueued_us) {
  return QueuedItem{request, tokens, T0 + microseconds(enqueued_us)};
}

PolicyOptions Opts(int max_items, int max_tokens, int wait_us, bool group = false) {
  PolicyOptions o;
  o.max_batch_size = max_items;
  o.max_batch_tokens = max_tokens;
  o.max_wait = microseconds(wait_us);
  o.group_by_length = group;
  return o;
}

TEST(BatchingPolicy, EmptyQueueDoesNothing) {
  BatchDecision d = DecideBatch({}, T0, Opts(8, 100, 500));
  EXPECT_TRUE(d.take.empty());
  EXPECT_FALSE(d.wake_at.has_value());
}

TEST(BatchingPolicy, WaitsUntilTheOldestItemTimesOut) {
  std::vector<QueuedItem> q = {Item(1, 10, 0), Item(2, 10, 300)};
  BatchDecision d = DecideBatch(q, T0 + microseconds(100), Opts(8, 100, 500));
  EXPECT_TRUE(d.take.empty());
  ASSERT_TRUE(d.wake_at.has_value());
  EXPECT_EQ(*d.wake_at, T0 + microseconds(500));
  // Just before the timeout: still waiting. At the timeout: both go, oldest first.
  EXPECT_TRUE(DecideBatch(q, T0 + microseconds(499), Opts(8, 100, 500)).take.empty());
  d = DecideBatch(q, T0 + microseconds(500), Opts(8, 100, 500));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1}));
}

TEST(BatchingPolicy, FullBatchGoesWithoutWaiting) {
  std::vector<QueuedItem> q;
  for (int i = 0; i < 5; ++i) q.push_back(Item(i, 10, i));
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(4, 1000, 100000));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1, 2, 3}));
  // Token budget reached also counts as full.
  d = DecideBatch(q, T0 + microseconds(10), Opts(64, 30, 100000));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1, 2}));
}

TEST(BatchingPolicy, ZeroWaitIsGreedy) {
  std::vector<QueuedItem> q = {Item(1, 10, 0)};
  BatchDecision d = DecideBatch(q, T0, Opts(8, 100, 0));
  EXPECT_EQ(d.take, (std::vector<size_t>{0}));
}

TEST(BatchingPolicy, TokenBudgetIsRespectedAndSmallerItemsFillTheGap) {
  std::vector<QueuedItem> q = {Item(1, 60, 0), Item(2, 50, 1), Item(3, 30, 2), Item(4, 10, 3)};
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(8, 100, 0));
  int tokens = 0;
  for (size_t i : d.take) tokens += q[i].tokens;
  EXPECT_LE(tokens, 100);
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 2, 3}));  // 60 + 30 + 10; the 50 waits
}

TEST(BatchingPolicy, OversizeItemRunsAlone) {
  std::vector<QueuedItem> q = {Item(1, 500, 0), Item(2, 5, 1)};
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(8, 100, 0));
  EXPECT_EQ(d.take, (std::vector<size_t>{0}));
}

TEST(BatchingPolicy, GroupsSimilarLengthsAroundTheOldest) {
  std::vector<QueuedItem> q = {Item(1, 20, 0), Item(2, 100, 1), Item(3, 22, 2), Item(4, 5, 3),
                               Item(5, 19, 4)};
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(3, 1000, 0, true));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 4, 2}));  // 20, then 19 (|1|), then 22 (|2|)
  // Without grouping: arrival order.
  d = DecideBatch(q, T0 + microseconds(10), Opts(3, 1000, 0, false));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1, 2}));
}

TEST(BatchingPolicy, DropsExpiredAndCancelledItems) {
  std::vector<QueuedItem> q = {Item(1, 10, 0), Item(2, 10, 1), Item(3, 10, 2)};
  q[0].deadline = T0 + microseconds(50);
  q[1].cancelled = true;
  BatchDecision d = DecideBatch(q, T0 + microseconds(60), Opts(8, 100, 0));
  EXPECT_EQ(d.expired, (std::vector<size_t>{0}));
  EXPECT_EQ(d.cancelled, (std::vector<size_t>{1}));
  EXPECT_EQ(d.take, (std::vector<size_t>{2}));
  // The deadline is exclusive: an item due exactly now is expired.
  q[1].cancelled = false;
  d = DecideBatch(q, T0 + microseconds(50), Opts(8, 100, 0));
  EXPECT_EQ(d.expired, (std::vector<size_t>{0}));
}

TEST(BatchingPolicy, BatchingOffRunsOneRequestAtATime) {
  std::vector<QueuedItem> q = {Item(7, 10, 0), Item(8, 10, 1), Item(7, 10, 2), Item(7, 10, 3)};
  PolicyOptions o = Opts(2, 1000, 100000);
  o.enabled = false;
  BatchDecision d = DecideBatch(q, T0, o);         // no waiting when off
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 2}));  // request 7 only, split at 2 items
}

// Fair order (deficit round robin, quantum = max_batch_tokens). Items of 10 tokens.
QueuedItem FairItem(uint64_t request, uint64_t client, int index, int enqueued_us) {
  QueuedItem it = Item(request, 10, enqueued_us);
  it.client_id = client;
  it.offset = 10 * index;
  return it;
}

// A one-text request behind a 100-text one (same client) runs in the second batch, not after
// the whole large request: once the large one has had its turn (items 0..3 ran), the small
// one's round 0 comes before the large one's round 1.
TEST(BatchingPolicy, SmallRequestIsNotStuckBehindALargeOne) {
  std::vector<QueuedItem> q;
  for (int i = 0; i < 100; ++i) q.push_back(FairItem(1, 7, i, 0));
  q.push_back(FairItem(2, 7, 0, 1));
  BatchDecision d = DecideBatch(q, T0 + microseconds(5), Opts(4, 40, 0));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1, 2, 3}));  // the large request's first turn
  q.erase(q.begin(), q.begin() + 4);                     // those ran
  d = DecideBatch(q, T0 + microseconds(5), Opts(4, 40, 0));
  ASSERT_EQ(d.take.size(), 4u);
  EXPECT_EQ(d.take[0], 0u);   // the oldest item always goes first
  EXPECT_EQ(d.take[1], 96u);  // then the small request (its index in the queue)
}

// Two clients: one with 64 queued items, one with a single item that arrived later. The second
// client's item rides in the first batch after the first client's quantum.
TEST(BatchingPolicy, ClientsTakeTurns) {
  std::vector<QueuedItem> q;
  for (int r = 0; r < 16; ++r) {
    for (int i = 0; i < 4; ++i) q.push_back(FairItem(r, 1, i, r));
  }
  q.push_back(FairItem(100, 2, 0, 50));
  BatchDecision d = DecideBatch(q, T0 + microseconds(60), Opts(8, 80, 0));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7}));  // client 1's turn of 8
  q.erase(q.begin(), q.begin() + 8);  // they ran: client 1 has been served 80 tokens
  for (QueuedItem& it : q) {
    if (it.client_id == 1) it.client_served = 80;
  }
  d = DecideBatch(q, T0 + microseconds(60), Opts(8, 80, 0));
  ASSERT_EQ(d.take.size(), 8u);
  EXPECT_EQ(d.take[0], 0u);            // client 1's oldest item (no starvation)
  EXPECT_EQ(d.take[1], q.size() - 1);  // then client 2's item (round 0; client 1 is in round 1)
  // Without the served count (a client that has not had a turn yet) it would wait.
  for (QueuedItem& it : q) it.client_served = 0;
  d = DecideBatch(q, T0 + microseconds(60), Opts(8, 80, 0));
  EXPECT_EQ(std::find(d.take.begin(), d.take.end(), q.size() - 1), d.take.end());
}

// Requests of at most a quantum, each from its own client: plain arrival order (fairness
// changes nothing for the common case).
TEST(BatchingPolicy, SmallRequestsFromDistinctClientsKeepArrivalOrder) {
  std::vector<QueuedItem> q;
  for (int r = 0; r < 6; ++r) {
    for (int i = 0; i < 3; ++i) q.push_back(FairItem(r, 10 + r, i, r));
  }
  BatchDecision d = DecideBatch(q, T0 + microseconds(10), Opts(9, 90, 0));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1, 2, 3, 4, 5, 6, 7, 8}));
}

// Due times first: an item past its due time goes ahead of the fair order, earliest due first.
TEST(BatchingPolicy, ItemsPastTheirDueTimeGoFirst) {
  std::vector<QueuedItem> q;
  for (int i = 0; i < 8; ++i) q.push_back(FairItem(1, 1, i, 0));            // one large request
  for (int r = 0; r < 3; ++r) q.push_back(FairItem(10 + r, 2 + r, 0, 10));  // three light clients
  q[5].due = T0 + microseconds(50);  // items 5 and 6 of the large request are late
  q[6].due = T0 + microseconds(40);
  BatchDecision d = DecideBatch(q, T0 + microseconds(100), Opts(4, 40, 0));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 6, 5, 1}));
  // Not late yet: the fair order (the large request's turn of 4 items).
  d = DecideBatch(q, T0 + microseconds(20), Opts(4, 40, 0));
  EXPECT_EQ(d.take, (std::vector<size_t>{0, 1, 2, 3}));
}

// Fairness: under a steady stream of new short items, a long item with an odd length is never
// starved even with length grouping: once it is the oldest it goes first.
TEST(BatchingPolicy, NoStarvationUnderContinuousArrivals) {
  std::mt19937 rng(1);
  std::deque<QueuedItem> queue;
  Clock::time_point now = T0;
  uint64_t next_id = 0;
  std::vector<int> waited_batches(10000, -1);
  std::vector<int> arrival_batch(10000, 0);
  int batch_no = 0;
  for (; batch_no < 2000; ++batch_no) {
    for (int k = 0; k < 5; ++k) {  // 5 arrivals per batch, 4 taken per batch => backlog grows
      int tokens = (next_id % 7 == 0) ? 200 : 8 + static_cast<int>(rng() % 4);
      if (next_id < arrival_batch.size()) arrival_batch[next_id] = batch_no;
      queue.push_back(QueuedItem{next_id++, tokens, now});
      now += microseconds(10);
    }
    std::vector<QueuedItem> view(queue.begin(), queue.end());
    BatchDecision d = DecideBatch(view, now, Opts(4, 100000, 0, true));
    ASSERT_FALSE(d.take.empty());
    EXPECT_EQ(d.take[0], 0u);  // the oldest always goes
    std::vector<size_t> taken = d.take;
    std::sort(taken.rbegin(), taken.rend());
    for (size_t i : taken) {
      uint64_t id = queue[i].request_id;
      if (id < waited_batches.size()) waited_batches[id] = batch_no - arrival_batch[id];
      queue.erase(queue.begin() + static_cast<long>(i));
    }
  }
  // Everything that arrived in the first 1000 batches has run, in bounded time.
  for (uint64_t id = 0; id < 4000; ++id) EXPECT_GE(waited_batches[id], 0) << "item " << id;
}

}  // namespace
}  // namespace encserve::scheduler
