// The figures of a load run for people (stdout summary) and programs (--json).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "bench/load_runner.h"

namespace encserve::bench {

// The run's parameters, echoed in the report.
struct BenchParams {
  std::string protocol = "grpc";  // grpc | http
  std::string api = "seed";       // gRPC: seed | v1
  std::string target;
  std::string workload;
  std::string data_dir;
  int concurrency = 1;
  int max_outstanding = 0;  // open loop
  int batch = 8;
  long requests = 0;
  double duration_s = 0;
  long warmup_requests = 0;
  double warmup_s = 0;
  double rate = 0;
  uint64_t seed = 1;
  int channels = 0;        // gRPC channels
  int client_threads = 0;  // completion-queue / io threads
  int timeout_ms = 0;
};

// {"params": {...}, "mode", "requests": {sent, ok, errors, errors_by_code}, "items",
//  "seconds", "requests_per_s", "items_per_s", "latency_ms": {...}, "warmup": {...},
//  "open_loop": {...} (open loop only)}
nlohmann::ordered_json ReportJson(const BenchParams& params, const LoadResult& result);

// A few lines for stdout.
std::string ReportText(const BenchParams& params, const LoadResult& result);

}  // namespace encserve::bench
