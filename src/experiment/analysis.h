// docs/analysis.md: the cross-experiment view. Reads the latest run of every experiment under a
// results root (results/<name>/<UTC timestamp>/results.json), writes a summary table, data-driven
// recommendations and one section per experiment with its charts. No hand-written numbers: the
// page is a pure function of the results files.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/status.h"

namespace encserve::experiment {

// The STS-B Spearman ρ an experiment must reach to be recommended for throughput.
inline constexpr double kMinStsSpearman = 0.818;

struct ExperimentRun {
  std::string name;       // the experiment folder name
  std::string timestamp;  // the run folder name (the latest, by name: timestamps sort as text)
  nlohmann::json results;
  std::string error;  // non-empty: results.json could not be read (results is null)
};

// The latest run of each experiment folder under `results_root`, ordered by name. Folders without
// any <ts>/results.json are skipped. NotFound when results_root is not a folder.
StatusOr<std::vector<ExperimentRun>> LoadLatestRuns(const std::string& results_root);

// The experiment whose latest run gives the page's "Backend comparison" section.
inline constexpr const char* kBackendsCompareName = "backends_compare";

// "## Backend comparison" from the latest run of backends_compare (model.variants): one row per
// variant with its peak, b=32 c=8 and b=1 figures, STS-B ρ, memory, load time and native's peak
// at the same precision ÷ its peak. "" when no such run is among `runs`.
std::string BackendComparisonMarkdown(const std::vector<ExperimentRun>& runs);

// The analysis page; chart images are linked as <charts_link>/<name>/<chart>.svg.
std::string AnalysisMarkdown(const std::vector<ExperimentRun>& runs,
                             const std::string& charts_link);

// The analysis page as one self-contained HTML page (report_html.cc): AnalysisMarkdown's
// content with every chart inlined as SVG, an embedded stylesheet, no external resources.
std::string AnalysisHtml(const std::vector<ExperimentRun>& runs);

// LoadLatestRuns + AnalysisMarkdown into `out_md`, and each experiment's throughput / latency /
// tradeoff charts into `charts_dir`/<name>/ (linked relative to out_md's folder); with a
// non-empty `out_html`, also AnalysisHtml into `out_html`.
Status WriteAnalysis(const std::string& results_root, const std::string& out_md,
                     const std::string& charts_dir, const std::string& out_html = "");

}  // namespace encserve::experiment
