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

// A synthetic model.variants run: native and torch at fp32, mlx at int4 (native has no int4 row
// here) and onnx not available in the build.
json Point(const std::string& variant, int batch, int conc, double items_per_s, double p50,
           double p99) {
  return {{"variant", variant},
          {"batch_size", batch},
          {"concurrency", conc},
          {"rate", nullptr},
          {"max_wait_us", 0},
          {"repeat", 0},
          {"requests", 100},
          {"ok", 100},
          {"errors", 0},
          {"items", 100 * batch},
          {"seconds", 1.0},
          {"items_per_s", items_per_s},
          {"latency_ms", {{"p50", p50}, {"p95", p99 - 0.5}, {"p99", p99}}},
          {"server_batch_size_mean", 1.0}};
}
json Variant(const std::string& backend, const std::string& precision, const std::string& status,
             double rho, double rss, double load) {
  const bool ok = status == "ok";
  return {
      {"label", backend + "-" + precision},
      {"backend", backend},
      {"precision", precision},
      {"status", status},
      {"server", ok ? json{{"backend", backend}, {"precision", precision}} : json::object()},
      {"load_seconds", ok ? json(load) : json(nullptr)},
      {"resident_mb", ok ? json(rss) : json(nullptr)},
      {"quality", {{"sts_b_spearman", ok ? json(rho) : json(nullptr)}, {"dl19_ndcg10", nullptr}}}};
}
json VariantsRun() {
  json r = Load(LatestRun() + "/results.json");
  r["name"] = "backends_compare";
  r["server"] = json::object();
  r["quality"] = {{"sts_b_spearman", nullptr}, {"dl19_ndcg10", nullptr}};
  r["points"] = json::array();
  const char* na = "backend not available: this build has no OpenVINO (run scripts/setup.sh)";
  r["variants"] = {Variant("native", "fp32", "ok", 0.8203, 180.4, 1.5),
                   Variant("torch", "fp32", "ok", 0.8201, 420.0, 3.25),
                   Variant("onnx", "fp32", na, 0, 0, 0), Variant("mlx", "int4", "ok", 0.81, 90, 2)};
  for (const auto& [v, scale] :
       {std::pair{"native-fp32", 2.0}, std::pair{"torch-fp32", 1.0}, std::pair{"mlx-int4", 1.5}}) {
    r["points"].push_back(Point(v, 1, 1, 100 * scale, 4 / scale, 6 / scale));
    r["points"].push_back(Point(v, 32, 8, 200 * scale, 80 / scale, 120 / scale));
  }
  return r;
}

TEST(Report, VariantsRunKeepsVariantsApartInTheReport) {
  const json r = VariantsRun();
  const auto groups = GroupPoints(r);
  ASSERT_EQ(groups.size(), 6u);  // b=1 c=1 of native and torch are not repeats of one setting
  EXPECT_EQ(groups[0].variant, "native-fp32");
  EXPECT_EQ(experiment::GroupLabel(groups[1]), "native-fp32 b=32 c=8");
  const auto v = experiment::SummarizeVariants(r);
  ASSERT_EQ(v.size(), 4u);
  ASSERT_TRUE(v[0].peak && v[0].b1 && v[0].b32_c8);
  EXPECT_DOUBLE_EQ(v[0].peak->items_per_s, 400);
  EXPECT_DOUBLE_EQ(v[1].b1->p99_ms, 6);
  EXPECT_FALSE(v[2].ok());
  EXPECT_FALSE(v[2].peak);
  const std::string md = experiment::ResultsMarkdown(r);
  EXPECT_NE(md.find("| Variant | Batch | Conc |"), std::string::npos) << md;
  EXPECT_NE(md.find("| torch-fp32 | 32 | 8 |"), std::string::npos) << md;
  EXPECT_NE(md.find("**Best throughput:** 400.0 items/s at native-fp32 b=32 c=8"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("## Variants"), std::string::npos);
  EXPECT_NE(md.find("| native-fp32 | native | fp32 | 400.0 | b=32 c=8 | 2.00 | 3.00 | 0.8203 | "
                    "180 | 1.50 | ok |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| onnx-fp32 | onnx | fp32 | – | – | – | – | – | – | – | backend not "
                    "available: this build has no OpenVINO"),
            std::string::npos)
      << md;
  EXPECT_NE(experiment::ThroughputSvg(r).find("data-name=\"torch-fp32 b=32\""), std::string::npos);
  // A single-model run shows the server's load figures when it recorded them.
  json single = Load(LatestRun() + "/results.json");
  single["server"]["load_seconds"] = 1.234;
  single["server"]["resident_mb"] = 210.4;
  EXPECT_NE(experiment::ResultsMarkdown(single).find(
                "- **Server load:** 1.23 s from start to ready; resident memory after load 210 MB"),
            std::string::npos);
}

TEST(Report, AnalysisComparesBackendsAgainstNativeAtTheSamePrecision) {
  testing::TempDir tmp;
  fs::create_directories(tmp / "r/backends_compare/20270101T000000Z");
  fs::create_directories(tmp / "r/minilm_int8/1");
  testing::WriteFile(tmp / "r/backends_compare/20270101T000000Z/results.json",
                     VariantsRun().dump());
  fs::copy(LatestRun() + "/results.json", tmp / "r/minilm_int8/1/results.json");
  ASSERT_TRUE(experiment::WriteAnalysis(tmp / "r", tmp / "a.md", tmp / "charts").ok());
  const std::string md = testing::ReadFile(tmp / "a.md");
  EXPECT_NE(md.find("## Backend comparison\n\nFrom run `backends_compare/20270101T000000Z`"),
            std::string::npos)
      << md;
  EXPECT_LT(md.find("## Backend comparison"), md.find("## Experiments"));
  // native ÷ native = 1; native fp32 400 items/s ÷ torch fp32 200 = 2.00×.
  EXPECT_NE(md.find("| native | fp32 | 400.0 (b=32 c=8) | 400.0 | 2.00 | 3.00 | 0.8203 | 180 | "
                    "1.50 | 1.00× | ok |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| torch | fp32 | 200.0 (b=32 c=8) | 200.0 | 4.00 | 6.00 | 0.8201 | 420 | "
                    "3.25 | 2.00× | ok |"),
            std::string::npos)
      << md;
  // No native int4 row: no ratio.
  EXPECT_NE(md.find("| mlx | int4 | 300.0 (b=32 c=8) | 300.0 | 2.67 | 4.00 | 0.8100 | 90 | 2.00 "
                    "| — | ok |"),
            std::string::npos)
      << md;
  // Not available: the reason, never a number.
  EXPECT_NE(md.find("| onnx (ONNX model on OpenVINO) | fp32 | – | – | – | – | – | – | – | – | "
                    "backend not available: this build has no OpenVINO (run scripts/setup.sh) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| backends_compare | 4 variants | – | 400.0 |"), std::string::npos) << md;
  // Recommendations weigh each variant on its own (b=1 p50 2.00 ms beats minilm_int8's 3.10).
  EXPECT_NE(md.find("**Lowest batch-1 latency:** backends_compare (native-fp32), p50 2.00 ms"),
            std::string::npos)
      << md;
  // Without a backends_compare run the page has no such section.
  EXPECT_EQ(experiment::BackendComparisonMarkdown({}), "");
  fs::remove_all(tmp / "r/backends_compare");
  ASSERT_TRUE(experiment::WriteAnalysis(tmp / "r", tmp / "b.md", tmp / "charts").ok());
  EXPECT_EQ(testing::ReadFile(tmp / "b.md").find("Backend comparison"), std::string::npos);
}

TEST(Report, CliRendersARunAndTheAnalysis) {
  testing::TempDir tmp;
  fs::copy(LatestRun() + "/results.json", tmp / "results.json");
  const std::string bin = testing::Binary();
  ASSERT_EQ(std::system((bin + " report --run " + tmp.path() + " > /dev/null").c_str()), 0);
  EXPECT_TRUE(fs::is_regular_file(tmp / "results.md"));
  EXPECT_TRUE(fs::is_regular_file(tmp / "throughput.svg"));
  EXPECT_EQ(testing::ReadFile(tmp / "report.html"),
            experiment::ReportHtml(Load(LatestRun() + "/results.json")));
  const std::string analysis = bin + " report --results " + Fixtures() + "/results --out " +
                               (tmp / "docs/analysis.md") + " --charts " + (tmp / "docs/analysis");
  ASSERT_EQ(std::system((analysis + " > /dev/null").c_str()), 0);
  EXPECT_TRUE(fs::is_regular_file(tmp / "docs/analysis.md"));
  EXPECT_FALSE(fs::exists(tmp / "docs/analysis.html"));  // only with --html
  ASSERT_EQ(std::system((analysis + " --html > /dev/null").c_str()), 0);
  const std::string html = testing::ReadFile(tmp / "docs/analysis.html");
  EXPECT_NE(html.find("<svg "), std::string::npos);
  EXPECT_EQ(html, experiment::AnalysisHtml(*experiment::LoadLatestRuns(Fixtures() + "/results")));
  ASSERT_EQ(std::system((analysis + " --html-out " + (tmp / "page.html") + " > /dev/null").c_str()),
            0);
  EXPECT_EQ(testing::ReadFile(tmp / "page.html"), html);
  EXPECT_NE(std::system((bin + " report --results " + (tmp / "nope") + " 2> /dev/null").c_str()),
            0);
}

}  // namespace
}  // namespace encserve
