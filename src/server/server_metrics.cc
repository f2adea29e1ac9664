#include "server/server_metrics.h"

#include <array>
#include <chrono>
#include <cstdio>
#include <mutex>

#include "server/metrics_json.h"
#include "server/metrics_registry.h"
#include "server/process_stats.h"

namespace encserve::server {
namespace {

using SteadyClock = std::chrono::steady_clock;

// Items completed per second over the last 10 whole seconds (a ring of per-second counts).
class RateWindow {
 public:
  void Add(int64_t n) {
    const int64_t sec = NowSec();
    std::lock_guard<std::mutex> lock(mu_);
    Slot& s = slots_[sec % kSlots];
    if (s.sec != sec) s = Slot{sec, 0};
    s.count += n;
  }
  double PerSecond() const {
    const int64_t now = NowSec();
    std::lock_guard<std::mutex> lock(mu_);
    int64_t total = 0;
    for (const Slot& s : slots_) {
      if (s.sec > now - kSlots && s.sec < now) total += s.count;  // whole seconds only
    }
    const int64_t span = std::min<int64_t>(kSlots - 1, std::max<int64_t>(1, now - start_));
    return static_cast<double>(total) / static_cast<double>(span);
  }

 private:
  static constexpr int kSlots = 11;
  struct Slot {
    int64_t sec = -1;
    int64_t count = 0;
  };
  static int64_t NowSec() {
    return std::chrono::duration_cast<std::chrono::seconds>(SteadyClock::now().time_since_epoch())
        .count();
  }
  mutable std::mutex mu_;
  std::array<Slot, kSlots> slots_{};
  int64_t start_ = NowSec();
};

std::vector<double> LatencyBuckets() {  // 50 µs .. ~26 s
  return ExponentialBuckets(50e-6, 2.0, 20);
}

}  // namespace

struct ServerMetrics::Impl {
  MetricsRegistry registry;
  CounterVec requests = registry.AddCounterVec(
      "encserve_requests_total",
      "Finished requests by route and HTTP status code (gRPC codes mapped)", {"route", "code"});
  HistogramVec duration = registry.AddHistogramVec(
      "encserve_request_duration_seconds", "Request time from receipt to response, by route",
      LatencyBuckets(), {"route"});
  HistogramVec queue_time = registry.AddHistogramVec(
      "encserve_queue_time_seconds", "Time an item waited in the batcher queue, by priority class",
      LatencyBuckets(), {"priority"});
  Histogram& queue_interactive = queue_time.With({"interactive"});
  Histogram& queue_batch = queue_time.With({"batch"});
  Histogram& tokenize_time = registry.AddHistogram(
      "encserve_tokenize_seconds", "Tokenisation time per request", LatencyBuckets());
  Histogram& inference_time = registry.AddHistogram(
      "encserve_inference_seconds", "Engine time per batch (forward pass)", LatencyBuckets());
  Histogram& batch_size =
      registry.AddHistogram("encserve_batch_size", "Items (texts or pairs) per batch",
                            {1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 256});
  Histogram& batch_tokens = registry.AddHistogram(
      "encserve_batch_tokens", "Tokens per batch (padding-free)", ExponentialBuckets(16, 2, 12));
  Histogram& padding_ratio = registry.AddHistogram(
      "encserve_batch_padding_ratio",
      "Share of a padded [items x longest] batch that would be padding; the padding-free engine "
      "computes none of it",
      {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9});
  Counter& items =
      registry.AddCounter("encserve_items_total", "Items (texts or pairs) computed by the engine");
  CounterVec refusals = registry.AddCounterVec(
      "encserve_overload_refusals_total",
      "Requests refused for overload (429 / RESOURCE_EXHAUSTED), by stage: before_tokenize "
      "(admission on the text count) or after_tokenize (on the texts' tokens)",
      {"stage"});
  CounterVec dropped = registry.AddCounterVec(
      "encserve_dropped_items_total",
      "Queued items dropped before running, by reason (deadline_exceeded, cancelled, shutdown)",
      {"reason"});
  CounterVec backend_batches = registry.AddCounterVec("encserve_backend_batches_total",
                                                      "Batches answered, by backend", {"backend"});
  CounterVec backend_failures = registry.AddCounterVec(
      "encserve_backend_failures_total",
      "Backend failures by reason: load, error, timeout, bad_output", {"backend", "reason"});
  CounterVec fallbacks = registry.AddCounterVec(
      "encserve_fallbacks_total",
      "Batches (or, reason load, the start-up) passed from one backend to the next after a "
      "failure",
      {"from", "to", "reason"});
  RateWindow rate;
  bool backends_registered = false;
  std::mutex chain_mu;  // never held while calling into the registry
  const backends::FallbackChain* chain = nullptr;
  std::mutex batcher_mu;
  const scheduler::Batcher* batcher = nullptr;

  template <typename T>
  double FromBatcher(T (scheduler::Batcher::*fn)() const) {
    std::lock_guard<std::mutex> lock(batcher_mu);
    return batcher ? static_cast<double>((batcher->*fn)()) : 0.0;
  }
};

ServerMetrics::ServerMetrics() : impl_(std::make_unique<Impl>()) {
  Impl* m = impl_.get();
  m->registry.AddCallbackGauge("encserve_queue_items", "Items waiting in the batcher queue", {},
                               [m] { return m->FromBatcher(&scheduler::Batcher::queued_items); });
  m->registry.AddCallbackGauge("encserve_queue_tokens", "Tokens waiting in the batcher queue", {},
                               [m] { return m->FromBatcher(&scheduler::Batcher::queued_tokens); });
  m->registry.AddCallbackGauge("encserve_items_in_flight", "Items in batches being computed", {},
                               [m] { return m->FromBatcher(&scheduler::Batcher::running_items); });
  m->registry.AddCallbackGauge(
      "encserve_admission_wait_factor",
      "Factor by which admission scales its queue-budget estimates (how far they fell short)", {},
      [m] { return m->FromBatcher(&scheduler::Batcher::wait_factor); });
  m->registry.AddCallbackGauge(
      "encserve_queue_budget_seconds",
      "Queue-time budget admission holds requests to (queue.budget_ms; 0: no time bound)", {}, [m] {
        std::lock_guard<std::mutex> lock(m->batcher_mu);
        return m->batcher ? 1e-3 * static_cast<double>(m->batcher->options().queue_budget.count())
                          : 0.0;
      });
  m->registry.AddCallbackGauge("encserve_items_per_second",
                               "Items computed per second over the last 10 s", {},
                               [m] { return m->rate.PerSecond(); });
  RegisterProcessMetrics(m->registry);
}

ServerMetrics::~ServerMetrics() = default;

void ServerMetrics::RecordRequest(std::string_view route, int http_code, double seconds) {
  const std::string code = std::to_string(http_code);
  impl_->requests.With({route, code}).Inc();
  impl_->duration.With({route}).Observe(seconds);
}

void ServerMetrics::CountRefusal(bool after_tokenize) {
  impl_->refusals.With({after_tokenize ? "after_tokenize" : "before_tokenize"}).Inc();
}

void ServerMetrics::SetQuality(const std::string& model, double min_cosine, bool passed) {
  impl_->registry
      .AddGauge("encserve_quality_min_cosine",
                "Lowest cosine of the start-up self-check's embeddings to the golden set's fp32 "
                "references",
                {{"model", model}})
      .Set(min_cosine);
  impl_->registry
      .AddGauge("encserve_quality_check_passed",
                "1 when the start-up self-check reached its threshold, else 0", {{"model", model}})
      .Set(passed ? 1.0 : 0.0);
}

void ServerMetrics::ObserveTokenize(double seconds) {
  impl_->tokenize_time.Observe(seconds);
}

scheduler::BatcherObserver ServerMetrics::BatcherHooks() {
  Impl* m = impl_.get();
  scheduler::BatcherObserver o;
  o.on_batch = [m](int items, int tokens, int max_len, double seconds) {
    m->batch_size.Observe(items);
    m->batch_tokens.Observe(tokens);
    const double padded = static_cast<double>(items) * max_len;
    m->padding_ratio.Observe(padded > 0 ? 1.0 - tokens / padded : 0.0);
    m->inference_time.Observe(seconds);
    m->items.Inc(items);
    m->rate.Add(items);
  };
  o.on_queue_time = [m](double seconds, scheduler::Priority priority) {
    (priority == scheduler::Priority::kBatch ? m->queue_batch : m->queue_interactive)
        .Observe(seconds);
  };
  o.on_dropped = [m](StatusCode reason, int n) {
    const char* name = reason == StatusCode::kDeadlineExceeded ? "deadline_exceeded"
                       : reason == StatusCode::kCancelled      ? "cancelled"
                                                               : "shutdown";
    m->dropped.With({name}).Inc(n);
  };
  return o;
}

backends::FallbackObserver ServerMetrics::BackendHooks() {
  Impl* m = impl_.get();
  backends::FallbackObserver o;
  o.on_batch = [m](const std::string& b) { m->backend_batches.With({b}).Inc(); };
  o.on_failure = [m](const std::string& b, const std::string& reason) {
    m->backend_failures.With({b, reason}).Inc();
  };
  o.on_fallback = [m](const std::string& from, const std::string& to, const std::string& reason) {
    m->fallbacks.With({from, to, reason}).Inc();
  };
  o.log = [](const std::string& line) {
    std::fprintf(stderr, "[backend] %s\n", line.c_str());
    std::fflush(stderr);
  };
  return o;
}

void ServerMetrics::AttachBackends(const backends::FallbackChain* chain) {
  Impl* m = impl_.get();
  {
    std::lock_guard<std::mutex> lock(m->chain_mu);
    m->chain = chain;
    if (chain == nullptr || m->backends_registered) return;
    m->backends_registered = true;
  }
  const std::vector<backends::MemberState> states = chain->States();
  for (size_t k = 0; k < states.size(); ++k) {
    const backends::MemberState& s = states[k];
    const std::string name = s.name;
    m->registry.AddCallbackGauge(
        "encserve_backend_in_service",
        "1 while the backend is loaded and not taken out of service after failures",
        {{"backend", name}}, [m, name] {
          std::lock_guard<std::mutex> l(m->chain_mu);
          if (m->chain == nullptr) return 0.0;
          for (const backends::MemberState& x : m->chain->States()) {
            if (x.name == name) return x.in_service ? 1.0 : 0.0;
          }
          return 0.0;
        });
    const backends::BackendInfo* i = s.info;
    m->registry
        .AddGauge("encserve_backend_info",
                  "What each backend of the chain computes with (value 1; loaded 0/1)",
                  {{"backend", name},
                   {"role", k == 0 ? "primary" : "fallback"},
                   {"loaded", s.loaded ? "1" : "0"},
                   {"device", i ? i->device : ""},
                   {"precision", i ? i->precision : ""},
                   {"fp32_kernels", i ? i->fp32_kernels : ""},
                   {"quant_kernels", i ? i->quant_kernels : ""}})
        .Set(1);
  }
}

void ServerMetrics::AttachBatcher(const scheduler::Batcher* batcher) {
  std::lock_guard<std::mutex> lock(impl_->batcher_mu);
  impl_->batcher = batcher;
}

std::string ServerMetrics::Text() const {
  return impl_->registry.Exposition();
}

std::string ServerMetrics::Json() const {
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return MetricsJson(impl_->registry.Snapshot(), now);
}

}  // namespace encserve::server
