// encserve report: renders experiment results into Markdown, CSV and SVG charts.
//   encserve report [--results results] [--out docs/analysis.md] [--charts docs/analysis]
//       the cross-experiment page from the latest run of every experiment under --results
//   encserve report --run results/<name>/<ts>
//       re-renders one run's results.md / results.csv / *.svg from its results.json
#include <iostream>

#include "common.h"
#include "experiment/analysis.h"
#include "experiment/results_report.h"

namespace encserve::app {
namespace {

struct ReportArgs {
  std::string results = "results";
  std::string out = "docs/analysis.md";
  std::string charts = "docs/analysis";
  std::string run;
};

void Fail(const Status& s) {
  std::cerr << "error: " << s.ToString() << "\n";
  throw CLI::RuntimeError(1);
}

}  // namespace

void RegisterReport(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report", "Render experiment results: docs/analysis.md + charts, or one run (--run DIR)");
  cmd->add_option("--results", a->results, "Results root: <name>/<UTC timestamp>/results.json")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Analysis page to write")->capture_default_str();
  cmd->add_option("--charts", a->charts, "Folder for the analysis page's SVG charts")
      ->capture_default_str();
  cmd->add_option("--run", a->run,
                  "Re-render one run folder (results.md, results.csv, *.svg) from its "
                  "results.json instead");
  cmd->callback([a] {
    if (!a->run.empty()) {
      auto results = experiment::ReadJsonFile(a->run + "/results.json");
      if (!results.ok()) Fail(results.status());
      Status s = experiment::WriteRunOutputs(*results, a->run);
      if (!s.ok()) Fail(s);
      std::cout << "wrote " << a->run
                << "/{results.md,results.csv,throughput.svg,latency.svg,tradeoff.svg}\n";
      return;
    }
    Status s = experiment::WriteAnalysis(a->results, a->out, a->charts);
    if (!s.ok()) Fail(s);
    std::cout << "wrote " << a->out << " and charts under " << a->charts << "/\n";
  });
}

}  // namespace encserve::app
