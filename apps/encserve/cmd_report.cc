// encserve report: renders experiment results into Markdown, CSV, SVG charts and HTML.
//   encserve report [--results results] [--out docs/analysis.md] [--charts docs/analysis]
//                   [--html] [--html-out PATH]
//       the cross-experiment page from the latest run of every experiment under --results;
//       --html also writes it as one self-contained HTML page (default: --out with .html)
//   encserve report --run results/<name>/<ts>
//       re-renders one run's results.md / results.csv / *.svg / report.html from its
//       results.json
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
  bool html = false;
  std::string html_out;  // "" with --html: out with ".md" replaced by ".html"
};

// --out with its ".md" suffix replaced by ".html" (appended when it has none).
std::string DefaultHtmlPath(const std::string& out_md) {
  const std::string md = ".md";
  if (out_md.size() >= md.size() && out_md.compare(out_md.size() - md.size(), md.size(), md) == 0) {
    return out_md.substr(0, out_md.size() - md.size()) + ".html";
  }
  return out_md + ".html";
}

void Fail(const Status& s) {
  std::cerr << "error: " << s.ToString() << "\n";
  throw CLI::RuntimeError(1);
}

}  // namespace

void RegisterReport(CLI::App& app) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "Render experiment results: docs/analysis.md + charts (+ HTML with --html), or one run "
      "(--run DIR)");
  cmd->add_option("--results", a->results, "Results root: <name>/<UTC timestamp>/results.json")
      ->capture_default_str();
  cmd->add_option("--out", a->out, "Analysis page to write")->capture_default_str();
  cmd->add_option("--charts", a->charts, "Folder for the analysis page's SVG charts")
      ->capture_default_str();
  cmd->add_flag("--html", a->html,
                "Also write the analysis page as one self-contained HTML file (charts inlined), "
                "next to --out with .html instead of .md; the Markdown and charts are written "
                "too");
  cmd->add_option("--html-out", a->html_out, "Where --html writes the HTML page (implies --html)");
  cmd->add_option("--run", a->run,
                  "Re-render one run folder (results.md, results.csv, *.svg, report.html) from "
                  "its results.json instead");
  cmd->callback([a] {
    if (!a->run.empty()) {
      auto results = experiment::ReadJsonFile(a->run + "/results.json");
      if (!results.ok()) Fail(results.status());
      Status s = experiment::WriteRunOutputs(*results, a->run);
      if (!s.ok()) Fail(s);
      std::cout << "wrote " << a->run
                << "/{results.md,results.csv,throughput.svg,latency.svg,tradeoff.svg,"
                   "report.html}\n";
      return;
    }
    std::string html = a->html_out;
    if (html.empty() && a->html) html = DefaultHtmlPath(a->out);
    Status s = experiment::WriteAnalysis(a->results, a->out, a->charts, html);
    if (!s.ok()) Fail(s);
    std::cout << "wrote " << a->out << (html.empty() ? "" : ", " + html) << " and charts under "
              << a->charts << "/\n";
  });
}

}  // namespace encserve::app
