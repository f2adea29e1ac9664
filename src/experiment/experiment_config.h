// Experiment files (configs/experiments/*.yaml): one server configuration, one workload and a
// sweep of client load points, plus the quality checks to run. Every key, default and meaning
// is documented in docs/experiments.md.
//
// An experiment file is deep-merged over a base file (configs/experiments/base.yaml): mappings
// merge key by key, recursively; lists and scalars replace the base's value; a key given with no
// value (null) keeps the base's value. Unknown keys, wrong types, unknown enum values and values
// out of range are errors that name the file and the key path (e.g.
// "configs/experiments/x.yaml: unknown key sweep.batch_size (known: batch_sizes, ...)").
//
// Notes for the runner:
// - workload dl19-rerank sends one query with its 100 passages per request: the batch size is
//   ignored (run one point per concurrency level / rate, whatever sweep.batch_sizes says).
// - api applies to gRPC; the seed API (inference.InferenceService/Infer) only embeds, so it is
//   accepted only with workload msmarco-queries.
// - model.backend names a registered backend (backends/registry.h); one the registry lists as
//   not available in this build (onnx today) is valid, and the runner reports the experiment
//   as "backend not available" (never as a 0 ms result).
// - model.variants (non-empty): the whole experiment (server start, sweep, quality) runs once
//   per variant, in order; a variant whose backend is not in this build is reported with its
//   reason, never measured.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/registry.h"
#include "core/status.h"

namespace encserve::experiment {

struct ServerSettings {
  std::string model_dir;              // "" = the default model
  std::string precision = "fp32";     // fp32|bf16|fp16|int8|int4
  std::string backend = "native";     // a registry name (native, null, ...)
  std::vector<std::string> fallback;  // backends tried when `backend` fails
  backends::Sections sections;        // model.<backend>: that backend's options
  int threads = 0;                    // 0 = all cores
  int replicas = 1;
  bool batching = true;
  int max_batch_size = 32;
  int max_batch_tokens = 8192;
  int max_wait_us = 0;
  int max_client_batch_size = 1024;
};

struct WorkloadSettings {
  std::string name = "msmarco-queries";  // msmarco-queries|dl19-pairs|dl19-rerank|sts-b
  std::string protocol = "grpc";         // grpc|http
  std::string api = "seed";              // gRPC: seed|v1
};

struct SweepSettings {
  std::vector<int> batch_sizes{1, 8, 32};
  std::vector<int> concurrency_levels{1, 4, 8};
  std::vector<double> rates;     // optional open-loop points (requests/s), run at each batch size
  std::vector<int> max_wait_us;  // optional: sweep the server's max_wait (restart per value)
  int requests_per_point = 200;  // or duration_s > 0
  double duration_s = 0;
  int warmup_requests = 20;
  int repeats = 1;
};

struct QualitySettings {
  bool sts_b = true;
  bool dl19_ndcg = false;
};

// One entry of model.variants: the experiment's settings with another backend, precision and
// backend options.
struct Variant {
  std::string label;        // "<backend>-<precision>" unless the file names it
  ServerSettings server;    // model.* with the variant's overrides; never a fallback
  std::string unavailable;  // non-empty: the registry's reason the backend is not in this build
};

struct ExperimentConfig {
  std::string name, description;
  ServerSettings server;
  // model.variants: empty = the one model in `server`. `registry` expands to every registered
  // backend that computes answers and is not a test double x every precision it supports, in
  // registry order.
  std::vector<Variant> variants;
  WorkloadSettings workload;
  SweepSettings sweep;
  QualitySettings quality;
  nlohmann::json resolved;  // the merged document, every key with its final value (for provenance)
};

// base_path "" = "base.yaml" in the same folder as `path` (if it exists; a missing default base
// means no base). An explicit base_path must exist. The experiment file is deep-merged over the
// base (maps merge recursively; lists and scalars replace).
StatusOr<ExperimentConfig> LoadExperiment(const std::string& path,
                                          const std::string& base_path = "");

// The same from text: `where` names the experiment in error messages (errors in the base text
// name "base"). base_yaml_text may be empty (the built-in defaults above apply).
StatusOr<ExperimentConfig> ParseExperiment(const std::string& yaml_text,
                                           const std::string& base_yaml_text,
                                           const std::string& where);

}  // namespace encserve::experiment
