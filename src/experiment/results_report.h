// Reports for one experiment run: results.md (header + every point + best lines), results.csv,
// SVG charts and report.html, all rendered from the run's results.json (schema 1, written by
// `encserve experiment`). Rendering is a pure function of the JSON: re-running `encserve report
// --run DIR` reproduces the same files byte for byte.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "experiment/svg_chart.h"

namespace encserve::experiment {

// Shared by the report writers: the value at `key`, or null when `j` is not an object or lacks
// it; and a Markdown table cell ('|' and newlines become spaces, "" becomes "–").
const nlohmann::json& Sub(const nlohmann::json& j, const char* key);
std::string CellText(std::string s);

// A point is failed when no request succeeded or any request failed; failed points never count
// for the best-of lines or the charts.
bool PointFailed(const nlohmann::json& point);

// The points of one sweep setting (variant, batch size, concurrency, rate, max wait) over its
// repeats.
// Figures are means over the repeats that did not fail; NaN when every repeat failed.
struct PointGroup {
  std::string variant;  // the point's "variant" label (model.variants); "" for single-model runs
  int batch_size = 0;
  int concurrency = 0;
  std::optional<double> rate;  // requests/s (open loop); nullopt: closed loop
  long max_wait_us = 0;
  int repeats = 0;         // points in the group
  int failed_repeats = 0;  // of which failed
  double items_per_s = 0;
  double p50_ms = 0, p95_ms = 0, p99_ms = 0;
  double server_batch_size_mean = 0;
  long errors = 0;  // summed over all repeats
  // (max - min) / mean of items/s over the good repeats, in %; NaN with fewer than 2.
  double spread_pct = 0;
  bool ok() const { return repeats > failed_repeats; }
};

// Groups in order of first appearance in results["points"].
std::vector<PointGroup> GroupPoints(const nlohmann::json& results);
// The good group with the highest mean items/s / the lowest mean p50; nullopt if none.
std::optional<PointGroup> BestThroughput(const std::vector<PointGroup>& groups);
std::optional<PointGroup> BestLatency(const std::vector<PointGroup>& groups);
// Lowest mean p50 among good groups with batch_size 1 and concurrency 1; nullopt if none.
std::optional<PointGroup> BatchOneLatency(const std::vector<PointGroup>& groups);
// "b=8 c=4" (+ " rate=100/s", " wait=500us" when set; "native-int8 " in front for a variant's
// point): how reports name a setting.
std::string GroupLabel(const PointGroup& g);

// Runs with model.variants (results["variants"]): one entry per variant, in run order.
// The run as if it had only this variant: its points (without their "variant" key), and the
// variant's status, server and quality in place of the run's.
nlohmann::json VariantResults(const nlohmann::json& results, const nlohmann::json& variant);
struct VariantSummary {
  std::string label, backend, precision, status;
  std::optional<PointGroup> peak;    // BestThroughput
  std::optional<PointGroup> b1;      // BatchOneLatency (b=1 c=1)
  std::optional<PointGroup> b32_c8;  // the good closed-loop b=32 c=8 group with the most items/s
  double sts_b = 0, resident_mb = 0, load_seconds = 0;  // NaN when not recorded
  bool ok() const { return status == "ok"; }
};
// One per results["variants"] entry; empty for a single-model run.
std::vector<VariantSummary> SummarizeVariants(const nlohmann::json& results);
// results.md's per-variant section ("" for a single-model run).
std::string VariantsMarkdown(const nlohmann::json& results);

// Markdown for one run (see docs/experiments.md, "Results and reports").
std::string ResultsMarkdown(const nlohmann::json& results);
// One row per point plus a header row; numbers as JSON writes them, null as an empty cell.
std::string ResultsCsv(const nlohmann::json& results);

// The three charts of a run: items/s vs concurrency, p50/p95/p99 vs concurrency, items/s vs p50.
// One series per batch size (and rate / max wait when the sweep varies them).
std::string ThroughputSvg(const nlohmann::json& results);
std::string LatencySvg(const nlohmann::json& results);
std::string TradeoffSvg(const nlohmann::json& results);

// report.html: one self-contained page (embedded stylesheet, no external resources) with
// results.md's content, the three charts as inline SVG, and the recorded provenance and
// resolved config. Rendered by markdown_html.h; all text is escaped.
std::string ReportHtml(const nlohmann::json& results);

// Writes results.md, results.csv, throughput.svg, latency.svg, tradeoff.svg and report.html
// into `dir` (created if missing). results.json itself is the runner's.
Status WriteRunOutputs(const nlohmann::json& results, const std::string& dir);

// Small shared helpers (also used by analysis.cc).
// results[key] as a number, NaN when missing or null.
double JsonNumber(const nlohmann::json& j, const char* key);
// results[key] as a string ("" when missing; numbers and booleans printed).
std::string JsonString(const nlohmann::json& j, const char* key);
// FormatFixed, or "–" for NaN.
std::string Cell(double value, int decimals);
// Reads and parses a JSON file.
StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);
// Writes `bytes` to `path`, creating parent folders.
Status WriteTextFile(const std::string& path, const std::string& bytes);

}  // namespace encserve::experiment
