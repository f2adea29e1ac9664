// Cooperative preemption (core/yield_point.h): the batcher's PauseGate blocks a yielding pass
// while interactive work runs; the native backend's forward pass (one thread, and split over two)
// calls the calling thread's hook between its steps, is paused there for real, and its rows
// are the same as without a hook.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/yield_point.h"
#include "eval/datasets.h"
#include "native_pipeline.h"
#include "scheduler/batcher.h"
#include "test_util.h"

namespace encserve {
namespace {

using namespace std::chrono_literals;

class CountingHook final : public core::YieldHook {
 public:
  void Yield() const override { calls.fetch_add(1); }
  mutable std::atomic<int> calls{0};
};

TEST(YieldPoint, ScopedHookIsPerThreadAndRestored) {
  CountingHook a, b;
  EXPECT_EQ(core::CurrentYieldHook(), nullptr);
  {
    core::ScopedYieldHook outer(&a);
    EXPECT_EQ(core::CurrentYieldHook(), &a);
    {
      core::ScopedYieldHook inner(&b);
      EXPECT_EQ(core::CurrentYieldHook(), &b);
      std::async(std::launch::async, [] { EXPECT_EQ(core::CurrentYieldHook(), nullptr); }).get();
    }
    EXPECT_EQ(core::CurrentYieldHook(), &a);
  }
  EXPECT_EQ(core::CurrentYieldHook(), nullptr);
}

TEST(PauseGate, YieldBlocksWhileUrgentWorkRunsAndOnlyThen) {
  scheduler::PauseGate gate;
  gate.Yield();  // nothing urgent: returns at once
  EXPECT_EQ(gate.pauses(), 0u);
  gate.Enter();
  gate.Enter();  // two interactive batches
  auto paused = std::async(std::launch::async, [&] { gate.Yield(); });
  EXPECT_EQ(paused.wait_for(100ms), std::future_status::timeout);
  gate.Leave();
  EXPECT_EQ(paused.wait_for(100ms), std::future_status::timeout);  // one still runs
  gate.Leave();
  EXPECT_EQ(paused.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(gate.pauses(), 1u);
}

class NativeYieldTest : public ::testing::TestWithParam<int> {  // threads
 protected:
  static std::vector<std::string> Queries(int n) {
    auto q = eval::LoadMsMarcoQueries(testing::DataDir() + "/msmarco-dev-small-queries.tsv");
    EXPECT_TRUE(q.ok());
    return std::vector<std::string>(q->begin(), q->begin() + n);
  }
  std::unique_ptr<Pipeline> Load() {
    testing::NativeLoad o;
    o.model_dir = testing::ModelDir();
    o.threads = GetParam();
    auto p = testing::LoadNative(o);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? std::move(p).value() : nullptr;
  }
};

// MiniLM has 6 layers; each yields at least 3 times (before the layer, before the attention
// output projection, before the FFN), in every part of a split batch.
TEST_P(NativeYieldTest, ForwardPassCallsTheHookBetweenItsStepsWithUnchangedRows) {
  auto p = Load();
  ASSERT_NE(p, nullptr);
  const std::vector<std::string> texts = Queries(32);
  auto plain = p->Embed(texts, false);
  ASSERT_TRUE(plain.ok());
  CountingHook hook;
  StatusOr<Embeddings> hooked = Status::Ok();
  {
    core::ScopedYieldHook scoped(&hook);
    hooked = p->Embed(texts, false);
  }
  ASSERT_TRUE(hooked.ok());
  EXPECT_GE(hook.calls.load(), 18);
  EXPECT_EQ(plain->data, hooked->data);  // (bit-identical: the hook only waits)
  // Without a hook nothing is called (the count stays).
  const int calls = hook.calls.load();
  ASSERT_TRUE(p->Embed(texts, false).ok());
  EXPECT_EQ(hook.calls.load(), calls);
}

// A pass under a PauseGate that interactive work holds stops at its next step and goes on, with
// the same rows, once the gate opens.
TEST_P(NativeYieldTest, PassIsPausedWhileTheGateIsHeld) {
  auto p = Load();
  ASSERT_NE(p, nullptr);
  const std::vector<std::string> texts = Queries(16);
  auto plain = p->Embed(texts, false);
  ASSERT_TRUE(plain.ok());
  scheduler::PauseGate gate;
  gate.Enter();
  auto run = std::async(std::launch::async, [&] {
    core::ScopedYieldHook scoped(&gate);
    return p->Embed(texts, false);
  });
  // It reaches its first step and waits there (polled: slow under the sanitizers).
  for (int i = 0; i < 1000 && gate.pauses() == 0; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_GE(gate.pauses(), 1u);
  EXPECT_EQ(run.wait_for(300ms), std::future_status::timeout) << "the pass did not pause";
  gate.Leave();
  ASSERT_EQ(run.wait_for(60s), std::future_status::ready);
  auto out = run.get();
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->data, plain->data);
}

INSTANTIATE_TEST_SUITE_P(Threads, NativeYieldTest, ::testing::Values(1, 2),
                         [](const auto& info) { return "threads" + std::to_string(info.param); });

}  // namespace
}  // namespace encserve
