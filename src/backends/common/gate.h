// A gate that lets at most `limit` callers compute at once (a backend's replicas); the others
// wait. Backends whose library runs one batch on all its threads use it to bound concurrency.
#pragma once

#include <condition_variable>
#include <mutex>

namespace encserve::backends {

class ConcurrencyGate {
 public:
  explicit ConcurrencyGate(int limit) : free_(limit) {}
  class Pass {
   public:
    explicit Pass(ConcurrencyGate* g) : g_(g) {}
    Pass(const Pass&) = delete;
    Pass& operator=(const Pass&) = delete;
    ~Pass() { g_->Release(); }

   private:
    ConcurrencyGate* g_;
  };
  // Blocks until a slot is free; the slot is returned when the Pass is destroyed.
  [[nodiscard]] Pass Enter() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return free_ > 0; });
    --free_;
    return Pass(this);
  }

 private:
  void Release() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++free_;
    }
    cv_.notify_one();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  int free_;
};

}  // namespace encserve::backends
