#include <algorithm>
#include <cctype>
#include <iomanip>
#include <sstream>

#include "experiment/experiment_origin.h"
#include "kernels/precision.h"

namespace encserve::experiment::internal {
namespace {

constexpr int kMaxBatch = 4096;         // sweep.batch_sizes, server.max_client_batch_size
constexpr int kMaxConcurrency = 4096;   // sweep.concurrency_levels
constexpr int kMaxWaitUs = 10'000'000;  // 10 s
constexpr int kRerankDocuments = 100;   // dl19-rerank: passages per request

bool OneOf(const std::string& v, std::initializer_list<const char*> options, std::string* list) {
  bool found = false;
  for (const char* o : options) {
    *list += (list->empty() ? "" : ", ") + std::string(o);
    found = found || v == o;
  }
  return found;
}

// Backend names and options from the registry; the precision must be one the backend has.
// `prefix` is where the settings come from: "model." or "model.variants[2].".
Status ValidateModel(const ServerSettings& s, const std::string& prefix, const Origin& o) {
  kernels::Precision p;
  if (!kernels::ParsePrecision(s.precision, &p)) {
    return o.Error(prefix + "precision", prefix + "precision: unknown value '" + s.precision +
                                             "' (fp32, bf16, fp16, int8, int4)");
  }
  std::vector<std::pair<std::string, std::string>> names{{prefix + "backend", s.backend}};
  for (size_t i = 0; i < s.fallback.size(); ++i) {
    names.emplace_back(prefix + "fallback[" + std::to_string(i) + "]", s.fallback[i]);
  }
  for (const auto& [path, name] : names) {
    const backends::BackendSpec* spec = backends::FindBackend(name);
    if (spec == nullptr) {
      return o.Error(path,
                     path + ": unknown value '" + name + "' (" + backends::BackendNames() + ")");
    }
    if (spec->unavailable.empty() && !backends::SupportsPrecision(*spec, p)) {
      return o.Error(prefix + "precision",
                     prefix + "precision: backend " + name + " does not support " + s.precision);
    }
  }
  for (const auto& [name, section] : s.sections) {
    Status st = backends::ValidateSection(*backends::FindBackend(name), section);
    if (!st.ok()) return o.Error(prefix + name, prefix + st.message());
  }
  return Status::Ok();
}

bool LabelChar(char ch) {
  return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.' ||
         ch == '+';
}

// model.variants: each entry's backend, precision and options as model.* would be checked, a
// label that can name it in tables, no repeated label, no fallback (a variant's numbers are its
// own backend's).
Status ValidateVariants(const ExperimentConfig& c, const Origin& o) {
  if (c.variants.empty()) return Status::Ok();
  if (!c.server.fallback.empty()) {
    return o.Error("model.fallback",
                   "model.fallback: not used with model.variants (each variant runs its own "
                   "backend alone, so that no figure is another backend's); remove one of them");
  }
  const bool quality = c.quality.sts_b || c.quality.dl19_ndcg;
  for (size_t i = 0; i < c.variants.size(); ++i) {
    const Variant& v = c.variants[i];
    const std::string path = "model.variants[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(ValidateModel(v.server, path + ".", o));
    if (v.label.empty() || !std::all_of(v.label.begin(), v.label.end(), LabelChar)) {
      return o.Error(
          path + ".label",
          path + ".label: '" + v.label + "' must be non-empty and use only A-Z, a-z, 0-9, _ - . +");
    }
    for (size_t j = 0; j < i; ++j) {
      if (c.variants[j].label == v.label) {
        return o.Error(path + ".label", path + ".label: '" + v.label +
                                            "' is already the label of "
                                            "model.variants[" +
                                            std::to_string(j) +
                                            "] (set label: to tell them apart)");
      }
    }
    if (quality && !backends::FindBackend(v.server.backend)->computes) {
      return o.Error(path + ".backend", path + ".backend: " + v.server.backend +
                                            " does not compute the model's answers: set "
                                            "quality.sts_b and quality.dl19_ndcg to false");
    }
  }
  return Status::Ok();
}

// Range, enum and list checks whose errors name the key path (and the file that set it).
struct Checks {
  const Origin& o;
  Status Range(const std::string& path, double v, double lo, double hi) const {
    auto num = [](double x) {  // integers without an exponent
      std::ostringstream out;
      out << std::setprecision(15) << x;
      return out.str();
    };
    if (v >= lo && v <= hi) return Status::Ok();
    return o.Error(path, path + ": must be " + num(lo) + ".." + num(hi) + ", got " + num(v));
  }
  Status Enumerated(const std::string& path, const std::string& v,
                    std::initializer_list<const char*> options) const {
    std::string list;
    if (OneOf(v, options, &list)) return Status::Ok();
    return o.Error(path, path + ": unknown value '" + v + "' (" + list + ")");
  }
  template <typename T>
  Status List(const std::string& path, const std::vector<T>& values, double lo, double hi,
              bool may_be_empty) const {
    if (values.empty() && !may_be_empty) return o.Error(path, path + ": must not be empty");
    for (size_t i = 0; i < values.size(); ++i) {
      RETURN_IF_ERROR(Range(path + "[" + std::to_string(i) + "]", values[i], lo, hi));
    }
    return Status::Ok();
  }
};

Status ValidateServer(const ServerSettings& s, const Checks& k) {
  RETURN_IF_ERROR(ValidateModel(s, "model.", k.o));
  RETURN_IF_ERROR(k.Range("server.threads", s.threads, 0, 1024));
  RETURN_IF_ERROR(k.Range("server.replicas", s.replicas, 1, 64));
  RETURN_IF_ERROR(k.Range("server.max_client_batch_size", s.max_client_batch_size, 1, kMaxBatch));
  RETURN_IF_ERROR(k.Range("server.batching.max_batch_size", s.max_batch_size, 1, kMaxBatch));
  RETURN_IF_ERROR(k.Range("server.batching.max_batch_tokens", s.max_batch_tokens, 1, 1 << 20));
  return k.Range("server.batching.max_wait_us", s.max_wait_us, 0, kMaxWaitUs);
}

Status ValidateWorkload(const WorkloadSettings& wl, const Checks& k) {
  RETURN_IF_ERROR(k.Enumerated("workload.name", wl.name,
                               {"msmarco-queries", "dl19-pairs", "dl19-rerank", "sts-b"}));
  RETURN_IF_ERROR(k.Enumerated("workload.protocol", wl.protocol, {"grpc", "http"}));
  RETURN_IF_ERROR(k.Enumerated("workload.api", wl.api, {"seed", "v1"}));
  if (wl.api == "seed" && wl.name != "msmarco-queries") {
    return k.o.Error(
        "workload.api: seed (inference.InferenceService/Infer) only embeds texts; "
        "workload.name " +
        wl.name + " needs workload.api: v1");
  }
  return Status::Ok();
}

Status ValidateSweep(const SweepSettings& w, const Checks& k) {
  RETURN_IF_ERROR(k.List("sweep.batch_sizes", w.batch_sizes, 1, kMaxBatch, false));
  RETURN_IF_ERROR(
      k.List("sweep.concurrency_levels", w.concurrency_levels, 1, kMaxConcurrency, false));
  for (size_t i = 0; i < w.rates.size(); ++i) {
    if (w.rates[i] <= 0) {
      const std::string path = "sweep.rates[" + std::to_string(i) + "]";
      return k.o.Error(path, path + ": must be > 0 requests/s");
    }
  }
  RETURN_IF_ERROR(k.List("sweep.max_wait_us", w.max_wait_us, 0, kMaxWaitUs, true));
  RETURN_IF_ERROR(k.Range("sweep.duration_s", w.duration_s, 0, 3600));
  if (w.duration_s == 0) {
    if (w.requests_per_point < 1) {
      return k.o.Error("sweep.requests_per_point",
                       "sweep.requests_per_point: must be >= 1 (or set sweep.duration_s > 0), "
                       "got " +
                           std::to_string(w.requests_per_point));
    }
  } else {
    RETURN_IF_ERROR(k.Range("sweep.requests_per_point", w.requests_per_point, 0, 1e9));
  }
  RETURN_IF_ERROR(k.Range("sweep.warmup_requests", w.warmup_requests, 0, 1e6));
  return k.Range("sweep.repeats", w.repeats, 1, 20);
}

// Cross-key checks: a point the server would reject, or a setting that could not matter.
Status ValidateTogether(const ExperimentConfig& c, const Origin& o) {
  const ServerSettings& s = c.server;
  const SweepSettings& w = c.sweep;
  if (c.workload.name != "dl19-rerank") {
    for (int b : w.batch_sizes) {
      if (b > s.max_client_batch_size) {
        return o.Error("sweep.batch_sizes: " + std::to_string(b) +
                       " exceeds server.max_client_batch_size " +
                       std::to_string(s.max_client_batch_size));
      }
    }
  } else if (s.max_client_batch_size < kRerankDocuments) {
    return o.Error("server.max_client_batch_size: dl19-rerank sends 100 documents per request");
  }
  if (!w.max_wait_us.empty() && !s.batching) {
    return o.Error("sweep.max_wait_us needs server.batching.enabled: true");
  }
  if (!backends::FindBackend(s.backend)->computes && (c.quality.sts_b || c.quality.dl19_ndcg)) {
    return o.Error("model.backend " + s.backend +
                   " does not compute the model's answers: set quality.sts_b and "
                   "quality.dl19_ndcg to false");
  }
  return Status::Ok();
}

}  // namespace

Status Validate(const ExperimentConfig& c, const Origin& o) {
  if (c.name.empty()) return o.Error("name", "name: required (a non-empty [A-Za-z0-9_-] string)");
  for (char ch : c.name) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') {
      return o.Error("name", "name: '" + c.name + "' may contain only A-Z, a-z, 0-9, _ and -");
    }
  }
  const Checks k{o};
  RETURN_IF_ERROR(ValidateServer(c.server, k));
  RETURN_IF_ERROR(ValidateWorkload(c.workload, k));
  RETURN_IF_ERROR(ValidateSweep(c.sweep, k));
  RETURN_IF_ERROR(ValidateVariants(c, o));
  return ValidateTogether(c, o);
}

}  // namespace encserve::experiment::internal
