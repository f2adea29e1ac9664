// Internal to the experiment runner (runner.cc, runner_points.cc): the server's command line,
// one measured load point, the sweep's shapes and the in-process quality step.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "bench/workload.h"
#include "core/status.h"
#include "experiment/experiment_config.h"
#include "experiment/server_process.h"

namespace encserve::experiment::internal {

// `encserve serve` arguments for these settings (ports and --ready-file are ServerProcess's).
std::vector<std::string> ServeArgs(const ServerSettings& s, int max_wait_us,
                                   const std::string& yaml);

struct Point {
  int batch = 0, conc = 0, wait = 0, rep = 0;
  double rate = 0;
};

// One load point against the running server: its JSON, and a progress line.
StatusOr<nlohmann::ordered_json> RunPoint(const ExperimentConfig& c, const ServerProcess& server,
                                          const bench::Workload& workload, const Point& pt,
                                          std::string* line);

// The (concurrency, rate) shapes of one batch size: closed-loop levels, then open-loop rates at
// the highest concurrency.
std::vector<std::pair<int, double>> Shapes(const SweepSettings& w);

// STS-B ρ / DL19 nDCG@10 of `s`'s backend chain in-process, into *out (nulls when not asked or
// the backend does not compute the model's answers).
Status Quality(const ExperimentConfig& c, const ServerSettings& s, const std::string& model_dir,
               const std::string& data, nlohmann::ordered_json* out);

}  // namespace encserve::experiment::internal
