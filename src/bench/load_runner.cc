#include "bench/load_runner.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/arrival.h"

namespace encserve::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

struct Phase {
  const char* name = "";
  bool record = false;  // measured (true) or warm-up
  long limit = 0;       // requests to send; 0: no count limit
  double seconds = 0;   // time limit; 0: none
  Clock::time_point start, deadline = Clock::time_point::max();
  long issued = 0, done = 0, errors = 0, items = 0;
  int active = 0;  // slots (closed) or requests (open) still running
};

class Runner {
 public:
  Runner(Client& client, const Workload& workload, const LoadOptions& o)
      : client_(client), workload_(workload), o_(o) {}

  LoadResult Run() {
    std::thread progress;
    if (o_.progress) progress = std::thread([this] { ProgressLoop(); });
    const int warm_slots = std::max(1, o_.concurrency);
    if (o_.warmup_requests > 0 || o_.warmup_s > 0) {
      ClosedPhase("warm-up", o_.warmup_requests, o_.warmup_s, false, warm_slots);
    }
    res_.open_loop = o_.rate > 0;
    if (res_.open_loop) {
      OpenPhase();
    } else {
      ClosedPhase("measure", o_.requests, o_.requests > 0 ? 0 : o_.duration_s, true, warm_slots);
    }
    {
      std::lock_guard lk(mu_);
      finished_ = true;
    }
    cv_.notify_all();
    if (progress.joinable()) progress.join();

    res_.sent = phase_.issued;
    res_.seconds = phase_.done > 0 ? Ms(last_completion_ - phase_.start) / 1000.0 : 0;
    res_.latency = Summarize(latencies_);
    if (res_.seconds > 0) {
      res_.requests_per_s = static_cast<double>(res_.ok) / res_.seconds;
      res_.items_per_s = static_cast<double>(res_.items) / res_.seconds;
    }
    return std::move(res_);
  }

 private:
  void BeginPhase(const char* name, long limit, double seconds, bool record) {
    std::lock_guard lk(mu_);
    phase_ = Phase{};
    phase_.name = name;
    phase_.record = record;
    phase_.limit = limit;
    phase_.seconds = seconds;
    phase_.start = Clock::now();
    if (seconds > 0) {
      phase_.deadline = phase_.start + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(seconds));
    }
  }

  void WaitIdle() {
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return phase_.active == 0; });
  }

  // ---- closed loop ----
  void ClosedPhase(const char* name, long limit, double seconds, bool record, int slots) {
    BeginPhase(name, limit, seconds, record);
    {
      std::lock_guard lk(mu_);
      phase_.active = slots;
    }
    for (int s = 0; s < slots; ++s) Issue(s);
    WaitIdle();
  }

  void Issue(int slot) {
    {
      std::lock_guard lk(mu_);
      const bool stop = (phase_.limit > 0 && phase_.issued >= phase_.limit) ||
                        (phase_.seconds > 0 && Clock::now() >= phase_.deadline) ||
                        (phase_.limit <= 0 && phase_.seconds <= 0);
      if (stop) {
        if (--phase_.active == 0) cv_.notify_all();
        return;
      }
      ++phase_.issued;
    }
    auto payload = std::make_shared<const Payload>(workload_.Make(next_index_++, o_.batch));
    const size_t items = payload->items();
    const auto sent = Clock::now();
    client_.Send(slot, std::move(payload), [this, slot, sent, items](CallResult r) {
      Record(sent, items, std::move(r));
      Issue(slot);
    });
  }

  // ---- open loop ----
  void OpenPhase() {
    const int slots = std::max(o_.slots > 0 ? o_.slots : o_.concurrency, 1);
    const bool timed = o_.requests <= 0;
    BeginPhase("measure", timed ? 0 : o_.requests, timed ? o_.duration_s : 0, true);
    {
      std::lock_guard lk(mu_);
      free_slots_.clear();
      for (int s = slots - 1; s >= 0; --s) free_slots_.push_back(s);
    }
    PoissonArrivals arrivals(o_.rate, o_.seed);
    const Clock::time_point t0 = phase_.start, end = phase_.deadline;
    double last_t = 0, delay_sum = 0;
    for (long k = 0;; ++k) {
      if (!timed && k >= o_.requests) break;
      const double t = arrivals.Next();
      if (timed && t > o_.duration_s) break;
      last_t = t;
      const auto sched =
          t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t));
      std::this_thread::sleep_until(sched);
      int slot;
      {
        std::unique_lock lk(mu_);
        ++res_.scheduled;
        const bool waited = free_slots_.empty();
        if (waited) {
          auto has_slot = [&] { return !free_slots_.empty(); };
          if (timed ? !cv_.wait_until(lk, end, has_slot) : (cv_.wait(lk, has_slot), false)) {
            ++res_.not_sent;
            continue;
          }
          ++res_.late;
        }
        slot = free_slots_.back();
        free_slots_.pop_back();
        ++phase_.issued;
        ++phase_.active;
      }
      auto payload = std::make_shared<const Payload>(workload_.Make(next_index_++, o_.batch));
      const size_t items = payload->items();
      const double delay = Ms(Clock::now() - sched);
      delay_sum += delay;
      res_.max_send_delay_ms = std::max(res_.max_send_delay_ms, delay);
      client_.Send(slot, std::move(payload), [this, slot, sched, items](CallResult r) {
        Record(sched, items, std::move(r));
        std::lock_guard lk(mu_);
        free_slots_.push_back(slot);
        --phase_.active;
        cv_.notify_all();
      });
    }
    WaitIdle();
    const long sent = res_.scheduled - res_.not_sent;
    res_.mean_send_delay_ms = sent > 0 ? delay_sum / static_cast<double>(sent) : 0;
    const double span = timed ? o_.duration_s : last_t;
    res_.offered_rate = span > 0 ? static_cast<double>(res_.scheduled) / span : 0;
  }

  // Latency runs from `start`: the send (closed loop) or the scheduled send (open loop).
  void Record(Clock::time_point start, size_t items, CallResult r) {
    const auto now = Clock::now();
    std::lock_guard lk(mu_);
    ++phase_.done;
    if (!phase_.record) {
      ++res_.warmup_sent;
      if (!r.ok) ++res_.warmup_errors;
      return;
    }
    last_completion_ = std::max(last_completion_, now);
    if (r.ok) {
      ++res_.ok;
      res_.items += static_cast<long>(items);
      phase_.items += static_cast<long>(items);
      latencies_.push_back(Ms(now - start));
    } else {
      ++res_.errors;
      ++phase_.errors;
      ++res_.errors_by_code[r.code];
      res_.first_error.emplace(r.code, r.message);
    }
  }

  // ---- progress ----
  void ProgressLoop() {
    long prev_done = 0, prev_items = 0;
    size_t prev_samples = 0;
    const char* prev_name = "";
    std::unique_lock lk(mu_);
    while (!cv_.wait_for(lk, std::chrono::seconds(1), [&] { return finished_; })) {
      const Phase& p = phase_;
      if (p.name != prev_name) prev_done = prev_items = 0, prev_samples = 0, prev_name = p.name;
      const double elapsed = Ms(Clock::now() - p.start) / 1000.0;
      std::vector<double> recent(latencies_.begin() + static_cast<long>(prev_samples),
                                 latencies_.end());
      std::sort(recent.begin(), recent.end());
      double eta = 0;
      const double rate = elapsed > 0 ? static_cast<double>(p.done) / elapsed : 0;
      if (p.limit > 0) {
        eta = rate > 0 ? static_cast<double>(p.limit - p.done) / rate : 0;
      } else if (p.seconds > 0) {
        eta = std::max(0.0, p.seconds - elapsed);
      }
      std::fprintf(o_.progress,
                   "[%s %6.1fs] %ld%s%s req  %.1f req/s  %.1f items/s  p50 %.2f ms  p99 %.2f ms  "
                   "errors %ld  ETA %.0fs\n",
                   p.name, elapsed, p.done, p.limit > 0 ? "/" : "",
                   p.limit > 0 ? std::to_string(p.limit).c_str() : "",
                   static_cast<double>(p.done - prev_done),
                   static_cast<double>(p.items - prev_items), NearestRank(recent, 50),
                   NearestRank(recent, 99), p.errors, eta);
      std::fflush(o_.progress);
      prev_done = p.done;
      prev_items = p.items;
      prev_samples = latencies_.size();
    }
  }

  Client& client_;
  const Workload& workload_;
  const LoadOptions o_;
  std::mutex mu_;
  std::condition_variable cv_;
  Phase phase_;
  std::vector<double> latencies_;
  std::vector<int> free_slots_;
  LoadResult res_;
  std::atomic<uint64_t> next_index_{0};
  Clock::time_point last_completion_{};
  bool finished_ = false;
};

}  // namespace

LoadResult RunLoad(Client& client, const Workload& workload, const LoadOptions& options) {
  return Runner(client, workload, options).Run();
}

}  // namespace encserve::bench
