// Cooperative preemption. A thread that runs work which may be paused for more urgent work
// installs a YieldHook for the duration (ScopedYieldHook); a long computation reads it
// (CurrentYieldHook) where it starts and calls Yield() between its steps, which returns at once
// unless the hook's owner wants the cores, and then blocks until it is done. The batcher pauses
// batch-priority forward passes this way while an interactive one runs (scheduler/batcher.h);
// the native backend passes the hook to the model, which yields between its layers
// (model/bert.cc). Other backends do not yield (their batches are not paused).
#pragma once

namespace encserve::core {

class YieldHook {
 public:
  virtual ~YieldHook() = default;
  virtual void Yield() const = 0;  // may block; called from any thread of the computation
};

// The calling thread's hook (nullptr: none, never pause).
const YieldHook* CurrentYieldHook();

class ScopedYieldHook {
 public:
  explicit ScopedYieldHook(const YieldHook* hook);
  ~ScopedYieldHook();
  ScopedYieldHook(const ScopedYieldHook&) = delete;
  ScopedYieldHook& operator=(const ScopedYieldHook&) = delete;

 private:
  const YieldHook* previous_;
};

}  // namespace encserve::core
