// results.md / results.csv for one run, the point grouping behind the best-of lines, and
// WriteRunOutputs. Charts are in results_report_charts.cc.
#include "experiment/results_report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "backends/backend.h"

namespace encserve::experiment {
namespace {

using nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const json& Sub(const json& j, const char* key) {
  static const json kNull;
  return j.is_object() && j.contains(key) ? j.at(key) : kNull;
}

double Mean(const std::vector<double>& v) {
  if (v.empty()) return kNaN;
  double s = 0;
  for (double x : v) s += x;
  return s / double(v.size());
}

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

void Header(std::ostringstream& o, const json& r) {
  const json& prov = Sub(r, "provenance");
  const json& cfg = Sub(r, "config");
  const json& model = Sub(cfg, "model");
  const json& server_cfg = Sub(cfg, "server");
  const json& batching = Sub(server_cfg, "batching");
  const json& workload = Sub(cfg, "workload");
  const json& server = Sub(r, "server");
  const json& quality = Sub(r, "quality");

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
  std::string q;
  if (!std::isnan(JsonNumber(quality, "sts_b_spearman"))) {
    q += "STS-B ρ " + Cell(JsonNumber(quality, "sts_b_spearman"), 4);
  }
  if (!std::isnan(JsonNumber(quality, "dl19_ndcg10"))) {
    q += (q.empty() ? "" : "; ") + std::string("nDCG@10 ") +
         Cell(JsonNumber(quality, "dl19_ndcg10"), 4);
  }
  o << "- **Quality:** " << (q.empty() ? "not measured" : q) << "\n\n";
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

bool PointFailed(const json& point) {
  const double ok = JsonNumber(point, "ok");
  const double errors = JsonNumber(point, "errors");
  return !(ok > 0) || errors > 0;
}

std::vector<PointGroup> GroupPoints(const json& results) {
  std::vector<PointGroup> groups;
  std::vector<std::vector<const json*>> members;
  const json& points = Sub(results, "points");
  if (!points.is_array()) return groups;
  for (const json& p : points) {
    PointGroup key;
    key.batch_size = int(JsonNumber(p, "batch_size"));
    key.concurrency = int(JsonNumber(p, "concurrency"));
    const double rate = JsonNumber(p, "rate");
    if (!std::isnan(rate) && rate > 0) key.rate = rate;
    const double wait = JsonNumber(p, "max_wait_us");
    key.max_wait_us = std::isnan(wait) ? 0 : long(wait);
    size_t i = 0;
    for (; i < groups.size(); ++i) {
      const PointGroup& g = groups[i];
      if (g.batch_size == key.batch_size && g.concurrency == key.concurrency &&
          g.rate == key.rate && g.max_wait_us == key.max_wait_us) {
        break;
      }
    }
    if (i == groups.size()) {
      groups.push_back(key);
      members.emplace_back();
    }
    members[i].push_back(&p);
  }
  for (size_t i = 0; i < groups.size(); ++i) {
    PointGroup& g = groups[i];
    std::vector<double> ips, p50, p95, p99, sb;
    for (const json* p : members[i]) {
      ++g.repeats;
      const double e = JsonNumber(*p, "errors");
      if (!std::isnan(e)) g.errors += long(e);
      if (PointFailed(*p)) {
        ++g.failed_repeats;
        continue;
      }
      const json& lat = Sub(*p, "latency_ms");
      ips.push_back(JsonNumber(*p, "items_per_s"));
      p50.push_back(JsonNumber(lat, "p50"));
      p95.push_back(JsonNumber(lat, "p95"));
      p99.push_back(JsonNumber(lat, "p99"));
      const double b = JsonNumber(*p, "server_batch_size_mean");
      if (!std::isnan(b)) sb.push_back(b);
    }
    g.items_per_s = Mean(ips);
    g.p50_ms = Mean(p50);
    g.p95_ms = Mean(p95);
    g.p99_ms = Mean(p99);
    g.server_batch_size_mean = Mean(sb);
    g.spread_pct = kNaN;
    if (ips.size() >= 2 && g.items_per_s > 0) {
      const auto [lo, hi] = std::minmax_element(ips.begin(), ips.end());
      g.spread_pct = (*hi - *lo) / g.items_per_s * 100.0;
    }
  }
  return groups;
}

std::optional<PointGroup> BestThroughput(const std::vector<PointGroup>& groups) {
  std::optional<PointGroup> best;
  for (const PointGroup& g : groups) {
    if (g.ok() && g.items_per_s > 0 && (!best || g.items_per_s > best->items_per_s)) best = g;
  }
  return best;
}

std::optional<PointGroup> BestLatency(const std::vector<PointGroup>& groups) {
  std::optional<PointGroup> best;
  for (const PointGroup& g : groups) {
    if (g.ok() && g.p50_ms > 0 && (!best || g.p50_ms < best->p50_ms)) best = g;
  }
  return best;
}

std::optional<PointGroup> BatchOneLatency(const std::vector<PointGroup>& groups) {
  std::vector<PointGroup> b1;
  for (const PointGroup& g : groups) {
    if (g.batch_size == 1 && g.concurrency == 1) b1.push_back(g);
  }
  return BestLatency(b1);
}

std::string GroupLabel(const PointGroup& g) {
  std::string s = "b=" + std::to_string(g.batch_size) + " c=" + std::to_string(g.concurrency);
  if (g.rate) s += " rate=" + FormatTick(*g.rate) + "/s";
  if (g.max_wait_us > 0) s += " wait=" + std::to_string(g.max_wait_us) + "us";
  return s;
}

std::string ResultsMarkdown(const json& results) {
  std::ostringstream o;
  Header(o, results);
  const json& points = Sub(results, "points");
  if (JsonString(results, "status") != "ok" || !points.is_array() || points.empty()) {
    o << "No points were measured (status: " << OrDash(JsonString(results, "status")) << ").\n";
    return o.str();
  }
  o << "## Points\n\n"
    << "| Batch | Conc | Rate | Wait µs | Rep | Requests | Errors | Items | Time s | p50 | p95 "
       "| p99 | items/s | mean server batch |\n"
    << "|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n";
  int failed = 0;
  for (const json& p : points) {
    const bool no_ok = !(JsonNumber(p, "ok") > 0);
    failed += PointFailed(p) ? 1 : 0;
    const json& lat = Sub(p, "latency_ms");
    const double rate = JsonNumber(p, "rate");
    auto lat_cell = [&](const char* k) { return no_ok ? "–" : Cell(JsonNumber(lat, k), 2); };
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
  o << "- **Failed points:** " << failed << " of " << points.size() << "\n";
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
  return WriteTextFile(dir + "/tradeoff.svg", TradeoffSvg(results));
}

}  // namespace encserve::experiment
