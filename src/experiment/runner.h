// `encserve experiment FILE`: starts a server with the experiment's settings (a child process
// on free loopback ports), runs the sweep with the load generator, stops the server, measures
// quality (STS-B ρ, DL19 nDCG@10) for the same precision, and writes
// <results_root>/<name>/<UTC timestamp>/ results.json (+ results.md, results.csv, charts).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/status.h"
#include "experiment/experiment_config.h"

namespace encserve::experiment {

struct RunOptions {
  std::string results_root = "results";
  std::string binary;             // the encserve binary that serves (normally this one)
  std::string data_dir;           // shared/data
  std::string source_dir;         // git checkout for provenance
  std::string default_model_dir;  // when the experiment names none
  bool progress = true;           // a line per point on stderr
};

struct RunOutcome {
  std::string dir;  // the run's folder
  nlohmann::ordered_json results;
};

StatusOr<RunOutcome> RunExperiment(const ExperimentConfig& config, const RunOptions& options);

}  // namespace encserve::experiment
