// Shared pieces of the encserve subcommands: backend flags and loading, small utilities.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pipeline/pipeline.h"

namespace encserve::app {

// --model, --backend, --fallback, --backend-opt, --precision, --threads, --replicas,
// --max-length, and every flag a backend declares in the registry (native: --isa, --no-split,
// --group-size, --int4-recipe).
struct BackendFlags {
  CLI::App* cmd = nullptr;
  std::string model;
  std::string backend = "native";
  std::vector<std::string> fallback;
  std::vector<std::string> backend_opts;  // NAME.KEY=VALUE
  std::string precision = "fp32";
  int threads = 1;
  int replicas = 1;
  int max_length = 0;  // 0: the model's
  // Registry-declared flags, by "backend.key": a value, or a switch that was set.
  std::map<std::string, std::string> values;
  std::map<std::string, bool> switches;
  bool Given(const char* flag) const { return cmd->get_option(flag)->count() > 0; }
};

void AddBackendFlags(CLI::App* cmd, BackendFlags* flags);
// Overlays the flags on `options`: with only_given, just the flags on the command line (serve:
// over server.yaml); otherwise every common setting (their defaults included).
Status ApplyBackendFlags(const BackendFlags& flags, bool only_given, PipelineOptions* options);
// Loads the pipeline (tokenizer + backend chain) or prints the error and returns null.
std::unique_ptr<Pipeline> LoadPipelineOrReport(const BackendFlags& flags);
// "native (int8, kernels amx/amx)" for log lines.
std::string DescribeBackend(const backends::BackendInfo& info);
// Adds backend, precision (with int4's group size and recipe), kernels and quant_kernels: what
// actually ran, for result files.
void AddBackendJson(const Pipeline& pipeline, nlohmann::ordered_json* j);
// A backend option as the pipeline was loaded with it (its default when not set).
std::string BackendOption(const Pipeline& pipeline, const std::string& backend,
                          const std::string& key);
std::string DefaultModelDir();
std::string DefaultDataDir();

// Reads non-empty lines of a text file ("-" = stdin).
StatusOr<std::vector<std::string>> ReadLines(const std::string& path);

inline double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Percentile (nearest-rank on a sorted copy), p in [0, 100].
double Percentile(std::vector<double> values, double p);

void RegisterInfo(CLI::App& app);
void RegisterEmbed(CLI::App& app);
void RegisterScore(CLI::App& app);
void RegisterDemo(CLI::App& app);
void RegisterEvalSts(CLI::App& app);
void RegisterBenchEngine(CLI::App& app);
void RegisterServe(CLI::App& app);
void RegisterExperiment(CLI::App& app);
void RegisterBench(CLI::App& app);
void RegisterReport(CLI::App& app);

}  // namespace encserve::app
