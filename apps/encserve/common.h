// Shared pieces of the encserve subcommands: engine flags and loading, small utilities.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace encserve::app {

struct EngineFlags {
  std::string model;
  int threads = 1;
  int replicas = 1;
  bool no_split = false;  // --no-split: intra-op parallelism for every batch
  std::string isa;        // empty: auto
  int max_length = 0;     // 0: the model's
  std::string precision = "fp32";
  int group_size = 64;
  std::string int4_recipe = "gptq";
};

// Adds --model/--threads/--replicas/--isa/--max-length to a subcommand.
void AddEngineFlags(CLI::App* cmd, EngineFlags* flags);
// Loads the engine or prints the error to stderr and returns null.
std::unique_ptr<Engine> LoadEngineOrReport(const EngineFlags& flags);
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
