// results.md / results.csv for one run and WriteRunOutputs. The point grouping behind the
// best-of lines is in results_groups.cc, the per-variant view in results_variants.cc, charts in
// results_report_charts.cc.
#include "experiment/results_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "backends/backend.h"

namespace encserve::experiment {

const nlohmann::json& Sub(const nlohmann::json& j, const char* key) {
  static const nlohmann::json kNull;
  return j.is_object() && j.contains(key) ? j.at(key) : kNull;
}

std::string CellText(std::string s) {
  for (char& c : s) c = c == '|' || c == '\n' ? ' ' : c;
  return s.empty() ? "–" : s;
}

namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// "5 (RESOURCE_EXHAUSTED 3, UNAVAILABLE 2)", with a ✗ in front of failed points.
std::string ErrorsCell(const json& p) {
  const double errors = JsonNumber(p, "errors");
  std::string s = PointFailed(p) ? "✗ " : "";
  s += Cell(std::isnan(errors) ? 0 : errors, 0);
  std::string codes;
  const json& by_code = Sub(p, "errors_by_code");
  if (by_code.is_object()) {
    for (const auto& [code, n] : by_code.items()) {
      if (!n.is_number() || n.get<double>() <= 0) continue;
      codes += (codes.empty() ? "" : ", ") + code + " " + Cell(n.get<double>(), 0);
    }
  }
  if (!codes.empty()) s += " (" + codes + ")";
  return s;
}

std::string RateCell(const std::optional<double>& rate) {
  return rate ? FormatTick(*rate) : "closed";
}

std::string Bytes(double bytes) {
  if (std::isnan(bytes)) return "–";
  return FormatFixed(bytes / (1024.0 * 1024.0 * 1024.0), 1) + " GiB";
}

std::string OrDash(const std::string& s) {
  return s.empty() ? "–" : s;
}

const json& Variants(const json& r) {
  return Sub(r, "variants");
}

bool HasVariants(const json& r) {
  return Variants(r).is_array() && !Variants(r).empty();
}

// "- **Model:** ..." (and the server's load figures): what served the run.
void ModelLines(std::ostringstream& o, const json& r) {
  const json& model = Sub(Sub(r, "config"), "model");
  const json& server = Sub(r, "server");
  if (HasVariants(r)) {
    std::string model_id, labels;
    for (const json& v : Variants(r)) {
      if (model_id.empty()) model_id = JsonString(Sub(v, "server"), "model_id");
      labels += (labels.empty() ? "" : ", ") + JsonString(v, "label");
    }
    o << "- **Model:** " << OrDash(model_id) << "; " << Variants(r).size()
      << " variants, each with the whole sweep: " << labels << " (per-variant figures below)\n";
    return;
  }
  std::string precision = JsonString(server, "precision");
  if (precision.empty()) precision = JsonString(model, "precision");
  // int4 options: model.native.* (strings); results of earlier versions: model.* (numbers).
  std::string group = JsonString(Sub(model, "native"), "group_size");
  if (group.empty() && !std::isnan(JsonNumber(model, "group_size"))) {
    group = Cell(JsonNumber(model, "group_size"), 0);
  }
  std::string recipe = JsonString(Sub(model, "native"), "int4_recipe");
  if (recipe.empty()) recipe = JsonString(model, "int4_recipe");
  if (precision == "int4" && !group.empty()) {
    precision += " (group size " + group + (recipe.empty() ? "" : ", recipe " + recipe) + ")";
  }
  const std::string kernels =
      backends::KernelsName(JsonString(server, "kernels"), JsonString(server, "quant_kernels"));
  std::string backend = JsonString(server, "backend");
  if (backend.empty()) backend = JsonString(model, "backend");
  o << "- **Model:** " << OrDash(JsonString(server, "model_id")) << "; precision "
    << OrDash(precision) << "; kernels " << OrDash(kernels) << "; backend " << OrDash(backend)
    << "\n";
  if (!std::isnan(JsonNumber(server, "load_seconds"))) {
    o << "- **Server load:** " << Cell(JsonNumber(server, "load_seconds"), 2)
      << " s from start to ready; resident memory after load "
      << Cell(JsonNumber(server, "resident_mb"), 0) << " MB\n";
  }
}

void QualityLine(std::ostringstream& o, const json& r) {
  const json& quality = Sub(r, "quality");
  std::string q;
  if (!std::isnan(JsonNumber(quality, "sts_b_spearman"))) {
    q += "STS-B ρ " + Cell(JsonNumber(quality, "sts_b_spearman"), 4);
  }
  if (!std::isnan(JsonNumber(quality, "dl19_ndcg10"))) {
    q += (q.empty() ? "" : "; ") + std::string("nDCG@10 ") +
         Cell(JsonNumber(quality, "dl19_ndcg10"), 4);
  }
  if (q.empty() && HasVariants(r)) q = "per variant (below)";
  o << "- **Quality:** " << (q.empty() ? "not measured" : q) << "\n\n";
}

void Header(std::ostringstream& o, const json& r) {
  const json& prov = Sub(r, "provenance");
  const json& cfg = Sub(r, "config");
  const json& server_cfg = Sub(cfg, "server");
  const json& batching = Sub(server_cfg, "batching");
  const json& workload = Sub(cfg, "workload");

  o << "# Experiment: " << OrDash(JsonString(r, "name")) << "\n\n";
  if (!JsonString(r, "description").empty()) o << JsonString(r, "description") << "\n\n";
  o << "- **Status:** " << OrDash(JsonString(r, "status")) << "\n";
  std::string dirty = JsonString(prov, "git_dirty") == "true" ? " (dirty tree)" : "";
  o << "- **Commit:** `" << OrDash(JsonString(prov, "git_commit")) << "`" << dirty << ", encserve "
    << OrDash(JsonString(prov, "encserve_version")) << "\n";
  o << "- **Date (UTC):** " << OrDash(JsonString(prov, "date_utc")) << "\n";
  o << "- **Machine:** " << OrDash(JsonString(prov, "cpu_model")) << "; "
    << Cell(JsonNumber(prov, "cores"), 0) << " cores; " << Bytes(JsonNumber(prov, "memory_bytes"))
    << " memory; " << OrDash(JsonString(prov, "os")) << "\n";
  ModelLines(o, r);
  o << "- **Server:** threads " << Cell(JsonNumber(server_cfg, "threads"), 0) << ", replicas "
    << Cell(JsonNumber(server_cfg, "replicas"), 0) << ", max client batch "
    << Cell(JsonNumber(server_cfg, "max_client_batch_size"), 0) << "\n";
  o << "- **Dynamic batching:** ";
  if (JsonString(batching, "enabled") == "true") {
    o << "on (max batch " << Cell(JsonNumber(batching, "max_batch_size"), 0) << ", max "
      << Cell(JsonNumber(batching, "max_batch_tokens"), 0) << " tokens, max wait "
      << Cell(JsonNumber(batching, "max_wait_us"), 0) << " µs)\n";
  } else {
    o << (JsonString(batching, "enabled") == "false" ? "off" : "–") << "\n";
  }
  o << "- **Workload:** " << OrDash(JsonString(workload, "name")) << " over "
    << OrDash(JsonString(workload, "protocol")) << " (api " << OrDash(JsonString(workload, "api"))
    << "); items are " << OrDash(JsonString(r, "items_name")) << "\n";
  QualityLine(o, r);
}

}  // namespace

double JsonNumber(const json& j, const char* key) {
  const json& v = Sub(j, key);
  return v.is_number() ? v.get<double>() : kNaN;
}

std::string JsonString(const json& j, const char* key) {
  const json& v = Sub(j, key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return "";
  return v.dump();
}

std::string Cell(double value, int decimals) {
  return std::isnan(value) ? "–" : FormatFixed(value, decimals);
}

namespace {

// The points table of a run (a Variant column first when the run has variants).
int PointsTable(std::ostringstream& o, const json& points, bool variants) {
  o << "## Points\n\n"
    << (variants ? "| Variant " : "")
    << "| Batch | Conc | Rate | Wait µs | Rep | Requests | Errors | Items | Time s | p50 | p95 "
       "| p99 | items/s | mean server batch |\n"
    << (variants ? "|---" : "")
    << "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
  int failed = 0;
  for (const json& p : points) {
    const bool no_ok = !(JsonNumber(p, "ok") > 0);
    failed += PointFailed(p) ? 1 : 0;
    const json& lat = Sub(p, "latency_ms");
    const double rate = JsonNumber(p, "rate");
    auto lat_cell = [&](const char* k) { return no_ok ? "–" : Cell(JsonNumber(lat, k), 2); };
    if (variants) o << "| " << OrDash(JsonString(p, "variant")) << " ";
    o << "| " << Cell(JsonNumber(p, "batch_size"), 0) << " | "
      << Cell(JsonNumber(p, "concurrency"), 0) << " | "
      << RateCell(std::isnan(rate) || rate <= 0 ? std::nullopt : std::optional<double>(rate))
      << " | " << Cell(JsonNumber(p, "max_wait_us"), 0) << " | " << Cell(JsonNumber(p, "repeat"), 0)
      << " | " << Cell(JsonNumber(p, "requests"), 0) << " | " << ErrorsCell(p) << " | "
      << Cell(JsonNumber(p, "items"), 0) << " | " << Cell(JsonNumber(p, "seconds"), 2) << " | "
      << lat_cell("p50") << " | " << lat_cell("p95") << " | " << lat_cell("p99") << " | "
      << (no_ok ? "–" : Cell(JsonNumber(p, "items_per_s"), 1)) << " | "
      << Cell(JsonNumber(p, "server_batch_size_mean"), 2) << " |\n";
  }
  o << "\nLatencies are client-side per request, in ms. Rate \"closed\" = closed loop. ✗ marks a "
       "failed point (no successful request, or any error); failed points are left out of the "
       "lines below and the charts.\n\n";
  return failed;
}

void BestLines(std::ostringstream& o, const json& results, int failed, size_t n_points) {
  const std::vector<PointGroup> groups = GroupPoints(results);
  auto repeats_note = [](const PointGroup& g) {
    const int good = g.repeats - g.failed_repeats;
    return good > 1 ? "mean of " + std::to_string(good) + " repeats; " : std::string();
  };
  const auto best = BestThroughput(groups);
  const auto fastest = BestLatency(groups);
  if (best) {
    o << "- **Best throughput:** " << Cell(best->items_per_s, 1) << " items/s at "
      << GroupLabel(*best) << " (" << repeats_note(*best) << "p50 " << Cell(best->p50_ms, 2)
      << " ms)\n";
  } else {
    o << "- **Best throughput:** – (every point failed)\n";
  }
  if (fastest) {
    o << "- **Best latency (p50):** " << Cell(fastest->p50_ms, 2) << " ms at "
      << GroupLabel(*fastest) << " (" << repeats_note(*fastest) << Cell(fastest->items_per_s, 1)
      << " items/s)\n";
  } else {
    o << "- **Best latency (p50):** – (every point failed)\n";
  }
  if (best && !std::isnan(best->spread_pct)) {
    o << "- **Repeat spread at the peak point** (" << GroupLabel(*best)
      << "): items/s (max − min) / mean = " << Cell(best->spread_pct, 1) << "% over "
      << best->repeats - best->failed_repeats << " repeats\n";
  }
  o << "- **Failed points:** " << failed << " of " << n_points << "\n";
}

}  // namespace

std::string ResultsMarkdown(const json& results) {
  std::ostringstream o;
  Header(o, results);
  const json& points = Sub(results, "points");
  if (JsonString(results, "status") != "ok" || !points.is_array() || points.empty()) {
    o << "No points were measured (status: " << OrDash(JsonString(results, "status")) << ").\n";
  } else {
    const int failed = PointsTable(o, points, HasVariants(results));
    BestLines(o, results, failed, points.size());
  }
  o << VariantsMarkdown(results);
  return o.str();
}

std::string ResultsCsv(const json& results) {
  static const char* kCols[] = {"batch_size",     "concurrency", "rate",   "max_wait_us", "repeat",
                                "requests",       "ok",          "errors", "items",       "seconds",
                                "requests_per_s", "items_per_s"};
  static const char* kLat[] = {"mean", "p50", "p90", "p95", "p99", "p99_9", "max"};
  std::ostringstream o;
  o << "name";
  for (const char* c : kCols) o << "," << c;
  for (const char* c : kLat) o << ",latency_" << c << "_ms";
  o << ",server_batch_size_mean,failed\n";
  const json& points = Sub(results, "points");
  if (!points.is_array()) return o.str();
  auto num = [](const json& j, const char* k) {
    const json& v = Sub(j, k);
    return v.is_number() ? v.dump() : std::string();
  };
  std::string name = JsonString(results, "name");
  if (name.find_first_of(",\"\n") != std::string::npos) {
    std::string q = "\"";
    for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
    name = q + "\"";
  }
  for (const json& p : points) {
    o << name;
    for (const char* c : kCols) o << "," << num(p, c);
    for (const char* c : kLat) o << "," << num(Sub(p, "latency_ms"), c);
    o << "," << num(p, "server_batch_size_mean") << "," << (PointFailed(p) ? 1 : 0) << "\n";
  }
  return o.str();
}

StatusOr<json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path);
  json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLoss("not valid JSON: " + path);
  return j;
}

Status WriteTextFile(const std::string& path, const std::string& bytes) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) return Internal("cannot create " + p.parent_path().string() + ": " + ec.message());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  out.close();
  if (!out) return Internal("cannot write " + path);
  return Status::Ok();
}

Status WriteRunOutputs(const json& results, const std::string& dir) {
  RETURN_IF_ERROR(WriteTextFile(dir + "/results.md", ResultsMarkdown(results)));
  RETURN_IF_ERROR(WriteTextFile(dir + "/results.csv", ResultsCsv(results)));
  RETURN_IF_ERROR(WriteTextFile(dir + "/throughput.svg", ThroughputSvg(results)));
  RETURN_IF_ERROR(WriteTextFile(dir + "/latency.svg", LatencySvg(results)));
  RETURN_IF_ERROR(WriteTextFile(dir + "/tradeoff.svg", TradeoffSvg(results)));
  return WriteTextFile(dir + "/report.html", ReportHtml(results));
}

}  // namespace encserve::experiment
