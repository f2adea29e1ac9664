// report.html (one run) and the analysis page's HTML: self-contained pages with the report
// tables' figures, every chart inlined as SVG, provenance, and no way for a name or a status
// message to inject markup. Fixtures: tests/data/experiment_results/.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "experiment/analysis.h"
#include "experiment/results_report.h"
#include "test_util.h"

namespace encserve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string Fixtures() {
  return testing::TestData() + "/experiment_results";
}
json LatestRun() {
  return json::parse(
      testing::ReadFile(Fixtures() + "/results/minilm_int8/20261126T001000Z/results.json"));
}
size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// No attribute of the page makes a browser fetch anything, and no script can run.
void ExpectSelfContained(const std::string& html) {
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n", 0), 0u);
  EXPECT_EQ(html.substr(html.size() - 8), "</html>\n");
  EXPECT_EQ(html.find("<img"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
  const std::regex external(R"re((src|href)\s*=\s*"(https?:)?//)re", std::regex::icase);
  EXPECT_FALSE(std::regex_search(html, external));
  // Balanced blocks (a rough nesting check; tests/integration parses the page for real).
  for (const char* tag : {"table", "thead", "tbody", "tr", "ul", "li", "p", "svg", "g", "text",
                          "span", "pre", "code", "h2", "div"}) {
    EXPECT_EQ(Count(html, std::string("<") + tag + ">") + Count(html, std::string("<") + tag + " "),
              Count(html, std::string("</") + tag + ">"))
        << tag;
  }
}

TEST(ReportHtml, HasTheTablesChartsAndProvenanceOfTheRun) {
  const json r = LatestRun();
  const std::string html = experiment::ReportHtml(r);
  ExpectSelfContained(html);
  EXPECT_NE(html.find("<title>Experiment: minilm_int8</title>"), std::string::npos);
  EXPECT_NE(html.find("<h1 id=\"experiment-minilm-int8\">Experiment: minilm_int8</h1>"),
            std::string::npos);
  // Header, quality, the points table (every point's items/s), best lines.
  EXPECT_NE(html.find("<li><strong>Commit:</strong> <code>abc1234</code>, encserve 0.1.0</li>"),
            std::string::npos)
      << html;
  EXPECT_NE(html.find("<li><strong>Quality:</strong> STS-B ρ 0.8187</li>"), std::string::npos);
  EXPECT_NE(html.find("<th style=\"text-align:right\">items/s</th>"), std::string::npos);
  for (const char* items_per_s :
       {"322.6", "312.5", "666.7", "640.0", "1280.0", "1230.8", "1600.0"}) {
    EXPECT_NE(html.find("<td style=\"text-align:right\">" + std::string(items_per_s) + "</td>"),
              std::string::npos)
        << items_per_s;
  }
  EXPECT_EQ(Count(html, "<tr>"), 1 + r["points"].size());
  EXPECT_NE(html.find("<td>✗ 5 (RESOURCE_EXHAUSTED 5)</td>"), std::string::npos);
  EXPECT_NE(html.find("<strong>Best throughput:</strong> 1255.4 items/s at b=8 c=4"),
            std::string::npos);
  // The three charts, inlined: exactly the SVG files' text.
  EXPECT_EQ(Count(html, "<svg "), 3u);
  for (const std::string& svg :
       {experiment::ThroughputSvg(r), experiment::LatencySvg(r), experiment::TradeoffSvg(r)}) {
    EXPECT_NE(html.find(svg), std::string::npos);
  }
  EXPECT_NE(html.find("<span class=\"chart\" role=\"img\" aria-label=\"Throughput: items/s vs "
                      "concurrency\">\n<svg xmlns="),
            std::string::npos);
  // Provenance and the resolved config, as recorded.
  EXPECT_NE(html.find("<h2 id=\"provenance\">Provenance</h2>"), std::string::npos);
  EXPECT_NE(html.find("&quot;cpu_model&quot;: &quot;Intel(R) Xeon(R) Platinum 8481C&quot;"),
            std::string::npos);
  EXPECT_NE(html.find("&quot;max_batch_tokens&quot;: 8192"), std::string::npos);
  EXPECT_EQ(html, experiment::ReportHtml(r));  // a pure function of results.json
}

TEST(ReportHtml, NamesAndMessagesCannotInjectMarkup) {
  json r = LatestRun();
  r["name"] = "x</title><script>alert(1)</script>";
  r["description"] =
      "<img src=https://evil.example/x.png onerror=alert(1)> [a](javascript:alert(1))";
  r["provenance"]["cpu_model"] = "```\n</code></pre><script>x</script>";
  r["config"]["model"]["precision"] = std::string("bad utf-8 \xff\xfe");
  r["points"][0]["errors_by_code"] = {{"<b>CODE</b>", 1}};
  const std::string html = experiment::ReportHtml(r);
  ExpectSelfContained(html);
  EXPECT_NE(html.find("<title>Experiment: x&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;"),
            std::string::npos);
  EXPECT_NE(html.find("&lt;img src=https://evil.example/x.png onerror=alert(1)&gt;"),
            std::string::npos);
  EXPECT_NE(html.find("<a href=\"#\">a</a>"), std::string::npos);
  EXPECT_NE(html.find("&lt;b&gt;CODE&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(Count(html, "<pre>"), 2u);  // the ``` in a JSON string does not close the block
  EXPECT_NE(html.find("&lt;/code&gt;&lt;/pre&gt;&lt;script&gt;"), std::string::npos);
}

TEST(ReportHtml, RunWithoutPointsHasNoCharts) {
  const json r = json::parse(
      testing::ReadFile(Fixtures() + "/results/onnx_fp32/20261126T010000Z/results.json"));
  const std::string html = experiment::ReportHtml(r);
  ExpectSelfContained(html);
  EXPECT_NE(html.find("<strong>Status:</strong> backend not available"), std::string::npos);
  EXPECT_NE(html.find("No points were measured"), std::string::npos);
  EXPECT_EQ(html.find("<svg"), std::string::npos);
  EXPECT_EQ(html.find("<table>"), std::string::npos);
  EXPECT_NE(html.find("Provenance"), std::string::npos);
}

TEST(ReportHtml, WriteRunOutputsWritesItNextToResultsMd) {
  testing::TempDir tmp;
  const json r = LatestRun();
  ASSERT_TRUE(experiment::WriteRunOutputs(r, tmp / "run").ok());
  EXPECT_EQ(testing::ReadFile(tmp / "run/report.html"), experiment::ReportHtml(r));
  EXPECT_TRUE(fs::is_regular_file(tmp / "run/results.md"));
}

TEST(AnalysisHtml, InlinesEveryChartOfThePage) {
  testing::TempDir tmp;
  const Status s = experiment::WriteAnalysis(Fixtures() + "/results", tmp / "docs/analysis.md",
                                             tmp / "docs/analysis", tmp / "docs/analysis.html");
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::string html = testing::ReadFile(tmp / "docs/analysis.html");
  ExpectSelfContained(html);
  EXPECT_NE(html.find("<title>Experiment analysis</title>"), std::string::npos);
  EXPECT_NE(html.find("<td>minilm_int8</td><td>encserve</td><td>int8</td><td "
                      "style=\"text-align:right\">1255.4</td>"),
            std::string::npos)
      << html;
  // One ok experiment (minilm_int8): its three charts, as SVG; the unavailable one has none.
  EXPECT_EQ(Count(html, "<svg "), 3u);
  const auto runs = experiment::LoadLatestRuns(Fixtures() + "/results");
  ASSERT_TRUE(runs.ok());
  EXPECT_NE(html.find(experiment::TradeoffSvg((*runs)[0].results)), std::string::npos);
  EXPECT_EQ(html, experiment::AnalysisHtml(*runs));
  EXPECT_NE(html.find("<a href=\"experiments.md\">experiments.md</a>"), std::string::npos);
  // The Markdown and its charts are written as before.
  EXPECT_TRUE(fs::is_regular_file(tmp / "docs/analysis/minilm_int8/throughput.svg"));
  EXPECT_EQ(testing::ReadFile(tmp / "docs/analysis.md").find("<svg"), std::string::npos);
  // Without an HTML path nothing else is written.
  ASSERT_TRUE(
      experiment::WriteAnalysis(Fixtures() + "/results", tmp / "b/analysis.md", tmp / "b/charts")
          .ok());
  EXPECT_FALSE(fs::exists(tmp / "b/analysis.html"));
}

}  // namespace
}  // namespace encserve
