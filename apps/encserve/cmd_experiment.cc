// encserve experiment FILE: one YAML experiment end to end (docs/experiments.md).
#include <unistd.h>

#include <climits>
#include <iostream>

#include "common.h"
#include "experiment/experiment_config.h"
#include "experiment/results_report.h"
#include "experiment/runner.h"

namespace encserve::app {
namespace {

struct ExperimentArgs {
  std::string file;
  std::string base;
  std::string results = "results";
  bool quiet = false;
};

std::string SelfPath() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "encserve";
}

}  // namespace

void RegisterExperiment(CLI::App& app) {
  auto a = std::make_shared<ExperimentArgs>();
  CLI::App* cmd = app.add_subcommand(
      "experiment",
      "Run a YAML experiment: server child process, sweep, quality, results/<name>/<time>/");
  cmd->add_option("file", a->file, "experiment file, e.g. configs/experiments/minilm_int8.yaml")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--base", a->base, "base file merged under it (default: base.yaml beside FILE)");
  cmd->add_option("--results", a->results, "results root folder")->capture_default_str();
  cmd->add_flag("-q,--quiet", a->quiet, "no progress lines");
  cmd->callback([a] {
    auto config = experiment::LoadExperiment(a->file, a->base);
    if (!config.ok()) {
      std::cerr << "error: " << config.status().message() << "\n";
      throw CLI::RuntimeError(2);
    }
    experiment::RunOptions o;
    o.results_root = a->results;
    o.binary = SelfPath();
    o.data_dir = DefaultDataDir();
    o.source_dir = ENCSERVE_SOURCE_DIR;
    o.default_model_dir = DefaultModelDir();
    o.progress = !a->quiet;
    auto outcome = experiment::RunExperiment(*config, o);
    if (!outcome.ok()) {
      std::cerr << "error: " << outcome.status().ToString() << "\n";
      throw CLI::RuntimeError(1);
    }
    std::cout << experiment::ResultsMarkdown(outcome->results) << "\n"
              << "results: " << outcome->dir << "\n";
  });
}

}  // namespace encserve::app
