#include "server/metrics_registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <utility>

namespace encserve::server {

namespace {

[[noreturn]] void Fatal(std::string_view what, std::string_view name) {
  std::fprintf(stderr, "metrics: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(name.size()), name.data());
  std::abort();
}

bool ValidName(std::string_view s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool ok = alpha || (allow_colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

void CheckLabelName(std::string_view label, std::string_view metric, MetricType type) {
  if (!ValidName(label, false) || label.starts_with("__")) Fatal("invalid label name", label);
  if (type == MetricType::kHistogram && label == "le") Fatal("label `le` on histogram", metric);
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// `a="x",b="y"` (no braces) in label-name order.
std::string LabelText(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k;
    out += "=\"";
    out += EscapeLabelValue(v);
    out += '"';
  }
  return out;
}

// name{labels[,extra]} value\n
void Sample(std::string& out, std::string_view name, std::string_view suffix,
            const std::string& labels, std::string_view extra, double value) {
  out += name;
  out += suffix;
  if (!labels.empty() || !extra.empty()) {
    out += '{';
    out += labels;
    if (!labels.empty() && !extra.empty()) out += ',';
    out += extra;
    out += '}';
  }
  out += ' ';
  out += FormatMetricValue(value);
  out += '\n';
}

}  // namespace

const char* MetricTypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// ---- metrics ----

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  if (!bounds_.empty() && std::isinf(bounds_.back()) && bounds_.back() > 0) bounds_.pop_back();
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (std::isnan(bounds_[i]) || (i > 0 && !(bounds_[i] > bounds_[i - 1]))) {
      Fatal("histogram bounds must be strictly increasing", "");
    }
  }
  counts_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  // First bound >= v; NaN compares false everywhere, so send it to +Inf explicitly.
  const size_t i = std::isnan(v)
                       ? bounds_.size()
                       : static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                             bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::BucketCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

uint64_t Histogram::Count() const {
  uint64_t n = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) n += counts_[i].load(std::memory_order_relaxed);
  return n;
}

// ---- registry internals ----

struct MetricsRegistry::Family {
  struct Child {
    std::unique_ptr<detail::Metric> metric;  // null for callback children
    std::function<double()> callback;
  };
  std::string name, help;
  MetricType type;
  std::vector<double> bounds;             // histograms
  std::map<std::string, Child> children;  // keyed by label text
  std::unique_ptr<detail::VecImpl> vec;   // created by Add*Vec
};

namespace {

using Family = MetricsRegistry::Family;

detail::Metric& GetOrCreateChild(Family& f, const Labels& labels) {
  for (const auto& [k, v] : labels) CheckLabelName(k, f.name, f.type);
  auto& child = f.children[LabelText(labels)];
  if (child.callback) Fatal("labels already used by a callback metric", f.name);
  if (!child.metric) {
    switch (f.type) {
      case MetricType::kCounter:
        child.metric = std::make_unique<Counter>();
        break;
      case MetricType::kGauge:
        child.metric = std::make_unique<Gauge>();
        break;
      case MetricType::kHistogram:
        child.metric = std::make_unique<Histogram>(f.bounds);
        break;
    }
  }
  return *child.metric;
}

uint64_t HashValues(std::span<const std::string_view> values) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a, with a separator byte between values
  for (std::string_view v : values) {
    for (unsigned char c : v) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;
  }
  return h;
}

}  // namespace

namespace detail {

// Open-addressing table (linear probing, load <= 1/2) from label values to child. Slots are
// written once, under the registry mutex, with release stores; readers use acquire loads and no
// lock. A full table is replaced by a bigger copy; old tables live as long as the registry, so
// a reader still probing one is safe (a miss there falls back to the locked path).
struct VecImpl {
  struct Entry {
    std::vector<std::string> values;
    uint64_t hash;
    Metric* metric;
  };
  struct Table {
    explicit Table(size_t cap) : mask(cap - 1), slots(new std::atomic<const Entry*>[cap]) {
      for (size_t i = 0; i < cap; ++i) slots[i].store(nullptr, std::memory_order_relaxed);
    }
    size_t mask;
    size_t size = 0;
    std::unique_ptr<std::atomic<const Entry*>[]> slots;
  };

  std::mutex* mu;
  Family* family;
  std::vector<std::string> label_names;
  std::atomic<Table*> table{nullptr};
  std::vector<std::unique_ptr<Table>> tables;   // all tables ever made (under *mu)
  std::vector<std::unique_ptr<Entry>> entries;  // (under *mu)

  static Metric* Find(const Table& t, std::span<const std::string_view> values, uint64_t hash) {
    for (size_t i = hash & t.mask;; i = (i + 1) & t.mask) {
      const Entry* e = t.slots[i].load(std::memory_order_acquire);
      if (e == nullptr) return nullptr;
      if (e->hash == hash && std::equal(values.begin(), values.end(), e->values.begin()))
        return e->metric;
    }
  }
  static void Put(Table& t, const Entry* e) {
    size_t i = e->hash & t.mask;
    while (t.slots[i].load(std::memory_order_relaxed) != nullptr) i = (i + 1) & t.mask;
    t.slots[i].store(e, std::memory_order_release);
    ++t.size;
  }
  void Grow(size_t cap) {  // under *mu
    auto t = std::make_unique<Table>(cap);
    for (const auto& e : entries) Put(*t, e.get());
    table.store(t.get(), std::memory_order_release);
    tables.push_back(std::move(t));
  }
};

Metric& VecGetOrCreate(VecImpl& vec, std::span<const std::string_view> values) {
  if (values.size() != vec.label_names.size())
    Fatal("wrong number of label values", vec.family->name);
  const uint64_t hash = HashValues(values);
  if (Metric* m = VecImpl::Find(*vec.table.load(std::memory_order_acquire), values, hash)) {
    return *m;
  }
  std::lock_guard lock(*vec.mu);
  VecImpl::Table* t = vec.table.load(std::memory_order_relaxed);
  if (Metric* m = VecImpl::Find(*t, values, hash)) return *m;
  Labels labels;
  for (size_t i = 0; i < values.size(); ++i) labels.emplace(vec.label_names[i], values[i]);
  auto e = std::make_unique<VecImpl::Entry>();
  e->values.assign(values.begin(), values.end());
  e->hash = hash;
  e->metric = &GetOrCreateChild(*vec.family, labels);
  vec.entries.push_back(std::move(e));
  if ((t->size + 1) * 2 > t->mask + 1) {
    vec.Grow((t->mask + 1) * 2);  // re-inserts every entry, the new one included
  } else {
    VecImpl::Put(*t, vec.entries.back().get());
  }
  return *vec.entries.back()->metric;
}

}  // namespace detail

// ---- registry ----

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Family& MetricsRegistry::GetFamily(std::string_view name, std::string_view help, MetricType type,
                                   const std::vector<double>* bounds) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    if (!ValidName(name, true)) Fatal("invalid metric name", name);
    auto f = std::make_unique<Family>();
    f->name = std::string(name);
    f->help = std::string(help);
    f->type = type;
    if (bounds != nullptr) f->bounds = Histogram(*bounds).bounds();  // validated, +Inf dropped
    it = families_.emplace(f->name, std::move(f)).first;
    return *it->second;
  }
  Family& f = *it->second;
  if (f.type != type) Fatal("registered again with another type", name);
  if (bounds != nullptr && Histogram(*bounds).bounds() != f.bounds) {
    Fatal("histogram registered again with other buckets", name);
  }
  return f;
}

Counter& MetricsRegistry::AddCounter(std::string_view name, std::string_view help,
                                     const Labels& labels) {
  std::lock_guard lock(mu_);
  return static_cast<Counter&>(
      GetOrCreateChild(GetFamily(name, help, MetricType::kCounter, nullptr), labels));
}

Gauge& MetricsRegistry::AddGauge(std::string_view name, std::string_view help,
                                 const Labels& labels) {
  std::lock_guard lock(mu_);
  return static_cast<Gauge&>(
      GetOrCreateChild(GetFamily(name, help, MetricType::kGauge, nullptr), labels));
}

Histogram& MetricsRegistry::AddHistogram(std::string_view name, std::string_view help,
                                         std::vector<double> bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  return static_cast<Histogram&>(
      GetOrCreateChild(GetFamily(name, help, MetricType::kHistogram, &bounds), labels));
}

detail::VecImpl* MetricsRegistry::GetVec(std::string_view name, std::string_view help,
                                         MetricType type, const std::vector<double>* bounds,
                                         std::vector<std::string> label_names) {
  Family& f = GetFamily(name, help, type, bounds);
  for (const auto& l : label_names) CheckLabelName(l, name, type);
  if (f.vec) {
    if (f.vec->label_names != label_names) Fatal("vec registered again with other labels", name);
    return f.vec.get();
  }
  f.vec = std::make_unique<detail::VecImpl>();
  f.vec->mu = &mu_;
  f.vec->family = &f;
  f.vec->label_names = std::move(label_names);
  f.vec->Grow(16);
  return f.vec.get();
}

CounterVec MetricsRegistry::AddCounterVec(std::string_view name, std::string_view help,
                                          std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return CounterVec(GetVec(name, help, MetricType::kCounter, nullptr, std::move(label_names)));
}

GaugeVec MetricsRegistry::AddGaugeVec(std::string_view name, std::string_view help,
                                      std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return GaugeVec(GetVec(name, help, MetricType::kGauge, nullptr, std::move(label_names)));
}

HistogramVec MetricsRegistry::AddHistogramVec(std::string_view name, std::string_view help,
                                              std::vector<double> bounds,
                                              std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  return HistogramVec(GetVec(name, help, MetricType::kHistogram, &bounds, std::move(label_names)));
}

void MetricsRegistry::AddCallback(std::string_view name, std::string_view help, MetricType type,
                                  const Labels& labels, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  Family& f = GetFamily(name, help, type, nullptr);
  for (const auto& [k, v] : labels) CheckLabelName(k, name, type);
  auto& child = f.children[LabelText(labels)];
  if (child.metric) Fatal("labels already used by a non-callback metric", name);
  child.callback = std::move(fn);
}

void MetricsRegistry::AddCallbackGauge(std::string_view name, std::string_view help,
                                       const Labels& labels, std::function<double()> fn) {
  AddCallback(name, help, MetricType::kGauge, labels, std::move(fn));
}

void MetricsRegistry::AddCallbackCounter(std::string_view name, std::string_view help,
                                         const Labels& labels, std::function<double()> fn) {
  AddCallback(name, help, MetricType::kCounter, labels, std::move(fn));
}

std::vector<MetricsRegistry::FamilySnapshot> MetricsRegistry::Snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<FamilySnapshot> out;
  out.reserve(families_.size());
  for (const auto& [name, f] : families_) {
    if (f->children.empty()) continue;
    FamilySnapshot& fs = out.emplace_back();
    fs.name = name;
    fs.help = f->help;
    fs.type = f->type;
    fs.bounds = f->bounds;
    for (const auto& [labels, child] : f->children) {
      ChildSnapshot& c = fs.children.emplace_back();
      c.labels = labels;
      if (child.callback) {
        c.value = child.callback();
      } else if (f->type == MetricType::kCounter) {
        c.value = static_cast<const Counter&>(*child.metric).Value();
      } else if (f->type == MetricType::kGauge) {
        c.value = static_cast<const Gauge&>(*child.metric).Value();
      } else {
        const auto& h = static_cast<const Histogram&>(*child.metric);
        c.sum = h.Sum();
        c.counts = h.BucketCounts();
      }
    }
  }
  return out;
}

std::string MetricsRegistry::Exposition() const {
  std::string out;
  for (const FamilySnapshot& f : Snapshot()) {
    out += "# HELP " + f.name + ' ' + EscapeHelp(f.help) + '\n';
    out += "# TYPE " + f.name + ' ' + MetricTypeName(f.type) + '\n';
    for (const ChildSnapshot& c : f.children) {
      if (f.type != MetricType::kHistogram || c.counts.empty()) {
        Sample(out, f.name, "", c.labels, "", c.value);
        continue;
      }
      uint64_t cumulative = 0;
      for (size_t i = 0; i < c.counts.size(); ++i) {
        cumulative += c.counts[i];
        const std::string le =
            i < f.bounds.size() ? FormatMetricValue(f.bounds[i]) : std::string("+Inf");
        Sample(out, f.name, "_bucket", c.labels, "le=\"" + le + '"', double(cumulative));
      }
      Sample(out, f.name, "_sum", c.labels, "", c.sum);
      Sample(out, f.name, "_count", c.labels, "", double(cumulative));  // == the +Inf bucket
    }
  }
  return out;
}

}  // namespace encserve::server
