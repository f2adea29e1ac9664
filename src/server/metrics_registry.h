// A small thread-safe Prometheus metrics registry (text exposition format 0.0.4).
//
// Families are keyed by metric name and hold one HELP/TYPE block; children of a family are keyed
// by their label set. Updating a metric (Counter::Inc, Gauge::Set, Histogram::Observe) is
// lock-free; registering a family or creating a child takes the registry's mutex. Every returned
// reference stays valid for the registry's lifetime.
//
// Defining metrics wrongly is a programming error and aborts with a message on stderr: an invalid
// metric or label name, the same name registered with another type, another bucket set or (for
// *Vec) other label names, non-increasing or NaN bucket bounds, a wrong number of label values.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace encserve::server {

// Label name -> value. The map keeps names sorted, which is the order they are printed in.
using Labels = std::map<std::string, std::string, std::less<>>;

enum class MetricType { kCounter, kGauge, kHistogram };
// "counter", "gauge", "histogram": the TYPE line of the exposition and /stats' "type".
const char* MetricTypeName(MetricType t);

namespace detail {
// Base of every metric object a registry owns.
class Metric {
 public:
  virtual ~Metric() = default;
};
struct VecImpl;
Metric& VecGetOrCreate(VecImpl& vec, std::span<const std::string_view> values);
}  // namespace detail

// Monotonic counter. Inc with a negative or NaN amount is ignored (counters never decrease).
class Counter final : public detail::Metric {
 public:
  void Inc(double v = 1.0) {
    if (v > 0) value_.fetch_add(v, std::memory_order_relaxed);
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge final : public detail::Metric {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Dec(double v = 1.0) { value_.fetch_sub(v, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Fixed finite upper bounds (strictly increasing) plus the implicit +Inf bucket. An observation
// v lands in the first bucket with v <= bound (Prometheus `le` semantics); NaN lands in +Inf only.
class Histogram final : public detail::Metric {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket (not cumulative) counts, bounds().size() + 1 entries, the last one +Inf's.
  std::vector<uint64_t> BucketCounts() const;
  // Number of observations: the sum of BucketCounts().
  uint64_t Count() const;
  double Sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0.0};
};

// The children of one family picked at run time by label values, given in the order of the
// family's label names, e.g. requests.With({"http:/embed", "200"}). Lookups of an existing child
// are lock-free (an open-addressing table published with release/acquire; no allocation); only
// creating a new child takes the registry's mutex. A handle is a pointer: copy it freely.
template <typename M>
class MetricVec {
 public:
  M& With(std::initializer_list<std::string_view> values) {
    return With(std::span<const std::string_view>(values.begin(), values.size()));
  }
  M& With(std::span<const std::string_view> values) {
    return static_cast<M&>(detail::VecGetOrCreate(*impl_, values));
  }

 private:
  friend class MetricsRegistry;
  explicit MetricVec(detail::VecImpl* impl) : impl_(impl) {}
  detail::VecImpl* impl_;
};
using CounterVec = MetricVec<Counter>;
using GaugeVec = MetricVec<Gauge>;
using HistogramVec = MetricVec<Histogram>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Get-or-create the child of family `name` with these labels (help and bounds are taken from
  // the first registration of the family).
  Counter& AddCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& AddGauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& AddHistogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                          const Labels& labels = {});

  // Families whose children are chosen by label values at run time (see MetricVec; a cheap
  // copyable handle, valid for the registry's lifetime). Registering the same name again gives a
  // handle to the same family; children may also be added with Add*.
  CounterVec AddCounterVec(std::string_view name, std::string_view help,
                           std::vector<std::string> label_names);
  GaugeVec AddGaugeVec(std::string_view name, std::string_view help,
                       std::vector<std::string> label_names);
  HistogramVec AddHistogramVec(std::string_view name, std::string_view help,
                               std::vector<double> bounds, std::vector<std::string> label_names);

  // Children whose value is fn() evaluated at exposition time (queue depth, RSS, CPU time).
  // Re-adding the same name and labels replaces the function. fn runs under the registry's
  // mutex: it must be thread-safe and must not call into this registry.
  void AddCallbackGauge(std::string_view name, std::string_view help, const Labels& labels,
                        std::function<double()> fn);
  void AddCallbackCounter(std::string_view name, std::string_view help, const Labels& labels,
                          std::function<double()> fn);

  // One reading of every family with children (sorted by name; children by their label text):
  // what Exposition() prints and /stats serves (metrics_json.h), so both show the same values.
  struct ChildSnapshot {
    std::string labels;            // label text: name="value",... (values escaped), "" if none
    double value = 0;              // counters and gauges
    std::vector<uint64_t> counts;  // histograms: per bucket, bounds.size() + 1 (the last: +Inf)
    double sum = 0;                // histograms
  };
  struct FamilySnapshot {
    std::string name, help;
    MetricType type = MetricType::kGauge;
    std::vector<double> bounds;  // histograms
    std::vector<ChildSnapshot> children;
  };
  std::vector<FamilySnapshot> Snapshot() const;

  // Prometheus text format 0.0.4 of Snapshot().
  std::string Exposition() const;

  struct Family;  // internal

 private:
  Family& GetFamily(std::string_view name, std::string_view help, MetricType type,
                    const std::vector<double>* bounds);
  void AddCallback(std::string_view name, std::string_view help, MetricType type,
                   const Labels& labels, std::function<double()> fn);
  detail::VecImpl* GetVec(std::string_view name, std::string_view help, MetricType type,
                          const std::vector<double>* bounds, std::vector<std::string> label_names);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
};

// `count` bounds start, start*factor, start*factor^2, ... (start > 0, factor > 1, count >= 1).
std::vector<double> ExponentialBuckets(double start, double factor, int count);
// `count` bounds start, start+width, ... (width > 0, count >= 1).
std::vector<double> LinearBuckets(double start, double width, int count);

// Number text Prometheus parses: "+Inf", "-Inf", "NaN", integers without exponent where exact
// (|v| < 2^53), otherwise the shortest round-trip form (e.g. 0.005, 1.5e-07).
std::string FormatMetricValue(double v);
// Label value with `\`, `"` and newline escaped.
std::string EscapeLabelValue(std::string_view v);

}  // namespace encserve::server
