// report.html for one run and the analysis page's HTML version: the reports' Markdown rendered
// by markdown_html, with every chart image replaced by the chart's SVG itself, so that each page
// is one self-contained file.
#include <algorithm>

#include "experiment/analysis.h"
#include "experiment/markdown_html.h"
#include "experiment/results_report.h"

namespace encserve::experiment {
namespace {

using nlohmann::json;

// The three charts of a run, by file name ("" for any other name).
std::string ChartSvg(const json& results, const std::string& file) {
  if (file == "throughput.svg") return ThroughputSvg(results);
  if (file == "latency.svg") return LatencySvg(results);
  if (file == "tradeoff.svg") return TradeoffSvg(results);
  return "";
}

// An inline chart: the SVG document in a block that carries the image's alt text.
std::string ChartMarkup(const std::string& svg, const std::string& alt) {
  return std::string("<span class=\"chart\" role=\"img\" aria-label=\"") + HtmlEscape(alt) +
         "\">\n" + svg + "</span>";
}

// A fenced code block whose fence is longer than any backtick run in `text`.
std::string FencedBlock(const std::string& info, const std::string& text) {
  size_t longest = 0, run = 0;
  for (char c : text) {
    run = c == '`' ? run + 1 : 0;
    longest = std::max(longest, run);
  }
  const std::string fence(std::max<size_t>(3, longest + 1), '`');
  return fence + info + "\n" + text + "\n" + fence + "\n";
}

std::string PrettyJson(const json& j) {
  return j.dump(2, ' ', /*ensure_ascii=*/false, json::error_handler_t::replace);
}

// results.md, then the charts (when the run has points) and the recorded provenance and config.
std::string ReportMarkdown(const json& results) {
  std::string md = ResultsMarkdown(results);
  const json& points = Sub(results, "points");
  if (JsonString(results, "status") == "ok" && points.is_array() && !points.empty()) {
    md +=
        "\n## Charts\n\n"
        "![Throughput: items/s vs concurrency](throughput.svg)\n"
        "![Latency: p50 / p95 / p99 vs concurrency](latency.svg)\n"
        "![Throughput vs p50 latency](tradeoff.svg)\n";
  }
  md +=
      "\n## Provenance\n\n"
      "As recorded in results.json: where the run was made (`provenance`) and the resolved "
      "experiment (`config`).\n\n";
  md += FencedBlock("json", PrettyJson(Sub(results, "provenance")));
  md.append("\n").append(FencedBlock("json", PrettyJson(Sub(results, "config"))));
  return md;
}

}  // namespace

std::string ReportHtml(const json& results) {
  MarkdownHtmlOptions options;
  options.image = [&results](const std::string& src,
                             const std::string& alt) -> std::optional<std::string> {
    const std::string svg = ChartSvg(results, src);
    if (svg.empty()) return std::nullopt;
    return ChartMarkup(svg, alt);
  };
  const std::string name = JsonString(results, "name");
  return HtmlPage("Experiment: " + (name.empty() ? "–" : name),
                  MarkdownToHtml(ReportMarkdown(results), options));
}

std::string AnalysisHtml(const std::vector<ExperimentRun>& runs) {
  // Chart links in the Markdown only name the chart; each is replaced by the SVG itself.
  static const std::string kLink = "charts";
  MarkdownHtmlOptions options;
  options.image = [&runs](const std::string& src,
                          const std::string& alt) -> std::optional<std::string> {
    for (const ExperimentRun& r : runs) {
      const std::string prefix = kLink + "/" + r.name + "/";
      if (src.rfind(prefix, 0) != 0) continue;
      const std::string svg = ChartSvg(r.results, src.substr(prefix.size()));
      if (!svg.empty()) return ChartMarkup(svg, alt);
    }
    return std::nullopt;
  };
  return HtmlPage("Experiment analysis", MarkdownToHtml(AnalysisMarkdown(runs, kLink), options));
}

}  // namespace encserve::experiment
