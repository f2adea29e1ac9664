// Experiment reports: results.md golden, best-of lines skip failed points, CSV, SVG charts,
// the cross-experiment analysis page (latest run per experiment) and `encserve report`.
// Goldens live in tests/data/experiment_results/; regenerate them deliberately with
// ENCSERVE_REGENERATE_GOLDEN=1 and review the diff.
#include <filesystem>

#include "experiment/analysis.h"
#include "experiment/results_report.h"
#include "experiment/svg_chart.h"
#include "test_util.h"

namespace encserve {
namespace {

namespace fs = std::filesystem;
using experiment::GroupPoints;
using nlohmann::json;

std::string Fixtures() {
  return testing::TestData() + "/experiment_results";
}
std::string LatestRun() {
  return Fixtures() + "/results/minilm_int8/20261126T001000Z";
}
json Load(const std::string& path) {
  return json::parse(testing::ReadFile(path));
}
size_t Count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}
// Compares with a committed golden file, or rewrites it under ENCSERVE_REGENERATE_GOLDEN=1.
void ExpectGolden(const std::string& actual, const std::string& golden) {
  if (std::getenv("ENCSERVE_REGENERATE_GOLDEN") != nullptr) testing::WriteFile(golden, actual);
  EXPECT_EQ(actual, testing::ReadFile(golden)) << "golden " << golden << " differs";
}

TEST(Report, MarkdownMatchesGolden) {
  const json r = Load(LatestRun() + "/results.json");
  ExpectGolden(experiment::ResultsMarkdown(r), Fixtures() + "/minilm_int8.md");
}

TEST(Report, BestLinesSkipFailedPoints) {
  const json r = Load(LatestRun() + "/results.json");
  const auto groups = GroupPoints(r);
  ASSERT_EQ(groups.size(), 4u);  // 8 points, 2 repeats each
  EXPECT_FALSE(groups[3].ok());  // b=32: one repeat with errors, one with no ok at all
  EXPECT_EQ(groups[3].failed_repeats, 2);
  const auto best = experiment::BestThroughput(groups);
  ASSERT_TRUE(best);
  EXPECT_EQ(best->batch_size, 8);
  EXPECT_EQ(best->concurrency, 4);
  EXPECT_NEAR(best->items_per_s, (1280.0 + 1230.769) / 2, 1e-3);
  EXPECT_NEAR(best->spread_pct, (1280.0 - 1230.769) / best->items_per_s * 100, 1e-3);
  const auto fastest = experiment::BestLatency(groups);
  ASSERT_TRUE(fastest);
  EXPECT_NEAR(fastest->p50_ms, 3.1, 1e-9);  // never the 0 ms failed point
  const std::string md = experiment::ResultsMarkdown(r);
  EXPECT_NE(md.find("**Best latency (p50):** 3.10 ms at b=1 c=1"), std::string::npos) << md;
  EXPECT_NE(md.find("**Best throughput:** 1255.4 items/s at b=8 c=4"), std::string::npos) << md;
  EXPECT_NE(md.find("Repeat spread at the peak point"), std::string::npos);
  EXPECT_EQ(md.find("0.00 ms"), std::string::npos);

  json all_failed = r;
  for (json& p : all_failed["points"]) p["errors"] = 1;
  const std::string md2 = experiment::ResultsMarkdown(all_failed);
  EXPECT_NE(md2.find("**Best throughput:** – (every point failed)"), std::string::npos) << md2;
  EXPECT_NE(md2.find("**Best latency (p50):** – (every point failed)"), std::string::npos);
}

TEST(Report, NotAvailableRunHasHeaderAndNoPoints) {
  const json r = Load(Fixtures() + "/results/onnx_fp32/20261126T010000Z/results.json");
  const std::string md = experiment::ResultsMarkdown(r);
  EXPECT_NE(md.find("**Status:** backend not available"), std::string::npos) << md;
  EXPECT_NE(md.find("No points were measured"), std::string::npos);
  EXPECT_EQ(md.find("| Batch |"), std::string::npos);
  EXPECT_NE(md.find("**Quality:** not measured"), std::string::npos);
}

TEST(Report, CsvHasOneRowPerPointPlusHeader) {
  const json r = Load(LatestRun() + "/results.json");
  const std::string csv = experiment::ResultsCsv(r);
  EXPECT_EQ(Count(csv, "\n"), r["points"].size() + 1);
  EXPECT_EQ(csv.rfind("name,batch_size,concurrency,rate,", 0), 0u);
  const json na = Load(Fixtures() + "/results/onnx_fp32/20261126T010000Z/results.json");
  EXPECT_EQ(Count(experiment::ResultsCsv(na), "\n"), 1u);
}

TEST(Report, ChartsAreSvgWithTheSeries) {
  const json r = Load(LatestRun() + "/results.json");
  for (const std::string& svg :
       {experiment::ThroughputSvg(r), experiment::LatencySvg(r), experiment::TradeoffSvg(r)}) {
    EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
    EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
    EXPECT_EQ(Count(svg, "<g "), Count(svg, "</g>"));
    EXPECT_EQ(Count(svg, "<text"), Count(svg, "</text>"));
    EXPECT_NE(svg.find("data-name=\"b=8"), std::string::npos);
    EXPECT_NE(svg.find("data-name=\"b=1"), std::string::npos);
    EXPECT_EQ(svg.find("b=32"), std::string::npos);  // every b=32 repeat failed
  }
  EXPECT_NE(experiment::LatencySvg(r).find("b=8 p99"), std::string::npos);
  EXPECT_EQ(experiment::ThroughputSvg(r), experiment::ThroughputSvg(r));
}

TEST(Report, SvgChartAxesAndEscaping) {
  experiment::ChartOptions o;
  o.title = "a < b & c";
  o.log_x = true;
  const std::string svg =
      experiment::RenderLineChart(o, {{"s\"1", {{1, 10}, {2, 20}, {32, 5}, {0, 7}}}});
  EXPECT_NE(svg.find("a &lt; b &amp; c"), std::string::npos);
  EXPECT_NE(svg.find("data-name=\"s&quot;1\""), std::string::npos);
  EXPECT_EQ(Count(svg, "<circle"), 3u);                  // x = 0 dropped on a log axis
  EXPECT_NE(svg.find(">20</text>"), std::string::npos);  // log ticks 1 2 5 10 20
  EXPECT_NE(experiment::RenderLineChart({}, {}).find("no data"), std::string::npos);
  EXPECT_EQ(experiment::FormatTick(2.5000), "2.5");
  EXPECT_EQ(experiment::FormatFixed(-0.0001, 2), "0.00");
}

TEST(Report, WriteRunOutputsWritesEveryFile) {
  testing::TempDir tmp;
  const json r = Load(LatestRun() + "/results.json");
  ASSERT_TRUE(experiment::WriteRunOutputs(r, tmp / "run").ok());
  for (const char* f :
       {"results.md", "results.csv", "throughput.svg", "latency.svg", "tradeoff.svg"}) {
    EXPECT_TRUE(fs::is_regular_file(tmp / ("run/" + std::string(f)))) << f;
  }
  EXPECT_EQ(testing::ReadFile(tmp / "run/results.md"), experiment::ResultsMarkdown(r));
}

TEST(Report, AnalysisUsesTheLatestRunAndMatchesGolden) {
  testing::TempDir tmp;
  const Status s = experiment::WriteAnalysis(Fixtures() + "/results", tmp / "docs/analysis.md",
                                             tmp / "docs/analysis");
  ASSERT_TRUE(s.ok()) << s.ToString();
  const std::string md = testing::ReadFile(tmp / "docs/analysis.md");
  EXPECT_NE(md.find("`abc1234`"), std::string::npos);
  EXPECT_EQ(md.find("0ld0001"), std::string::npos);  // the older run is ignored
  EXPECT_NE(md.find("| minilm_int8 | encserve | int8 | 1255.4 | 3.10 | 0.8187 | ok | `abc1234` | "
                    "2026-11-26T00:10:00Z |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| onnx_fp32 | onnxruntime | fp32 | – | – | – | backend not available"),
            std::string::npos);
  EXPECT_NE(md.find("](analysis/minilm_int8/throughput.svg)"), std::string::npos);
  EXPECT_TRUE(fs::is_regular_file(tmp / "docs/analysis/minilm_int8/tradeoff.svg"));
  EXPECT_FALSE(fs::exists(tmp / "docs/analysis/onnx_fp32"));
  ExpectGolden(md, Fixtures() + "/analysis.md");
}

TEST(Report, AnalysisReportsTheDynamicBatchingGain) {
  testing::TempDir tmp;
  json off = Load(LatestRun() + "/results.json");
  json on = off;
  on["name"] = "minilm_int8_batching";
  on["config"]["server"]["batching"]["enabled"] = true;
  for (json& p : on["points"]) p["items_per_s"] = p["items_per_s"].get<double>() * 2;
  fs::create_directories(tmp / "r/off/1");
  fs::create_directories(tmp / "r/on/1");
  testing::WriteFile(tmp / "r/off/1/results.json", off.dump());
  testing::WriteFile(tmp / "r/on/1/results.json", on.dump());
  ASSERT_TRUE(experiment::WriteAnalysis(tmp / "r", tmp / "a.md", tmp / "charts").ok());
  const std::string md = testing::ReadFile(tmp / "a.md");
  EXPECT_NE(md.find("**Dynamic batching gain:** on over off = 2.00× at concurrency 4"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("](charts/on/latency.svg)"), std::string::npos);
  EXPECT_FALSE(experiment::WriteAnalysis(tmp / "missing", tmp / "b.md", tmp / "c").ok());
}

// Recommendations compare like with like: no batching gain across different workloads, no
// latency claim from the null backend, and the null backend's peak is reported as the client
// capacity ratio over the best real peak.
TEST(Report, AnalysisComparesLikeWithLikeAndReportsClientCapacity) {
  testing::TempDir tmp;
  json off = Load(LatestRun() + "/results.json");
  json on = off;
  on["config"]["server"]["batching"]["enabled"] = true;
  on["config"]["workload"]["name"] = "dl19-pairs";  // another workload: no pairing
  for (json& p : on["points"]) p["items_per_s"] = p["items_per_s"].get<double>() * 2;
  json null_run = off;
  null_run["server"]["backend"] = "null";
  for (json& p : null_run["points"]) {
    p["items_per_s"] = p["items_per_s"].get<double>() * 10;
    p["latency_ms"]["p50"] = 0.01;
  }
  for (const char* d : {"r/off/1", "r/on/1", "r/null/1"}) fs::create_directories(tmp / d);
  testing::WriteFile(tmp / "r/off/1/results.json", off.dump());
  testing::WriteFile(tmp / "r/on/1/results.json", on.dump());
  testing::WriteFile(tmp / "r/null/1/results.json", null_run.dump());
  ASSERT_TRUE(experiment::WriteAnalysis(tmp / "r", tmp / "a.md", tmp / "charts").ok());
  const std::string md = testing::ReadFile(tmp / "a.md");
  EXPECT_EQ(md.find("on over off"), std::string::npos) << md;
  EXPECT_NE(md.find("**Dynamic batching gain:** not measured"), std::string::npos) << md;
  EXPECT_EQ(md.find("**Lowest batch-1 latency:** null"), std::string::npos) << md;
  EXPECT_NE(md.find("**Client capacity:**"), std::string::npos) << md;
  EXPECT_NE(md.find("= 5.0× the best real peak (on,"), std::string::npos) << md;
}

TEST(Report, CliRendersARunAndTheAnalysis) {
  testing::TempDir tmp;
  fs::copy(LatestRun() + "/results.json", tmp / "results.json");
  const std::string bin = testing::Binary();
  ASSERT_EQ(std::system((bin + " report --run " + tmp.path() + " > /dev/null").c_str()), 0);
  EXPECT_TRUE(fs::is_regular_file(tmp / "results.md"));
  EXPECT_TRUE(fs::is_regular_file(tmp / "throughput.svg"));
  ASSERT_EQ(std::system((bin + " report --results " + Fixtures() + "/results --out " +
                         (tmp / "docs/analysis.md") + " --charts " + (tmp / "docs/analysis") +
                         " > /dev/null")
                            .c_str()),
            0);
  EXPECT_TRUE(fs::is_regular_file(tmp / "docs/analysis.md"));
  EXPECT_NE(std::system((bin + " report --results " + (tmp / "nope") + " 2> /dev/null").c_str()),
            0);
}

}  // namespace
}  // namespace encserve
