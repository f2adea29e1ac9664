// The cross-experiment analysis page (docs/analysis.md) and its charts.
#include "experiment/analysis.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "experiment/results_report.h"

namespace encserve::experiment {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string OrDash(const std::string& s) {
  return s.empty() ? "–" : s;
}

bool IsOk(const ExperimentRun& r) {
  return r.error.empty() && JsonString(r.results, "status") == "ok";
}

std::string StatusOf(const ExperimentRun& r) {
  return r.error.empty() ? OrDash(JsonString(r.results, "status")) : "unreadable: " + r.error;
}

bool HasVariants(const json& r) {
  const json& v = Sub(r, "variants");
  return v.is_array() && !v.empty();
}

// A run with model.variants has many backends and precisions: the summary says how many.
std::string Backend(const json& r) {
  if (HasVariants(r)) return std::to_string(Sub(r, "variants").size()) + " variants";
  std::string b = JsonString(Sub(r, "server"), "backend");
  return b.empty() ? JsonString(Sub(Sub(r, "config"), "model"), "backend") : b;
}

std::string Precision(const json& r) {
  if (HasVariants(r)) return "";
  std::string p = JsonString(Sub(r, "server"), "precision");
  return p.empty() ? JsonString(Sub(Sub(r, "config"), "model"), "precision") : p;
}

double StsRho(const json& r) {
  return JsonNumber(Sub(r, "quality"), "sts_b_spearman");
}

// config.workload.name ("" when absent).
std::string Workload(const json& r) {
  return JsonString(Sub(Sub(r, "config"), "workload"), "name");
}

// "true" / "false" / "" for config.server.batching.enabled.
std::string Batching(const json& r) {
  return JsonString(Sub(Sub(Sub(r, "config"), "server"), "batching"), "enabled");
}

void Summary(std::ostringstream& o, const std::vector<ExperimentRun>& runs) {
  o << "## Summary\n\n"
    << "| Experiment | Backend | Precision | Peak throughput (items/s) | Latency b=1 p50 (ms) "
       "| STS-B ρ | Status | Commit | Date (UTC) |\n"
    << "|---|---|---|---:|---:|---:|---|---|---|\n";
  for (const ExperimentRun& r : runs) {
    const auto groups = GroupPoints(r.results);
    const auto peak = BestThroughput(groups);
    const auto b1 = BatchOneLatency(groups);
    const json& prov = Sub(r.results, "provenance");
    std::string commit = JsonString(prov, "git_commit");
    if (!commit.empty() && JsonString(prov, "git_dirty") == "true") commit += "+dirty";
    o << "| " << CellText(r.name) << " | " << CellText(Backend(r.results)) << " | "
      << CellText(Precision(r.results)) << " | " << (peak ? Cell(peak->items_per_s, 1) : "–")
      << " | " << (b1 ? Cell(b1->p50_ms, 2) : "–") << " | " << Cell(StsRho(r.results), 4) << " | "
      << CellText(StatusOf(r)) << " | " << (commit.empty() ? "–" : "`" + commit + "`") << " | "
      << CellText(JsonString(prov, "date_utc")) << " |\n";
  }
  o << "\nPeak throughput: the best setting's mean over its repeats, failed points left out. "
       "Latency b=1 p50: the best p50 among batch-size-1 points at concurrency 1, else –.\n\n";
}

// What the recommendations weigh: a run, or each good variant of a run with model.variants.
struct Candidate {
  std::string name;  // "minilm_int8", or "backends_compare (native-int8)"
  std::string backend;
  std::optional<PointGroup> peak, b1;
  double rho = 0;
};

std::vector<Candidate> Candidates(const std::vector<ExperimentRun>& runs) {
  std::vector<Candidate> out;
  for (const ExperimentRun& r : runs) {
    if (!IsOk(r)) continue;
    if (!HasVariants(r.results)) {
      const auto groups = GroupPoints(r.results);
      out.push_back({r.name, Backend(r.results), BestThroughput(groups), BatchOneLatency(groups),
                     StsRho(r.results)});
      continue;
    }
    for (const VariantSummary& v : SummarizeVariants(r.results)) {
      if (v.ok()) out.push_back({r.name + " (" + v.label + ")", v.backend, v.peak, v.b1, v.sts_b});
    }
  }
  return out;
}

// The highest throughput that keeps the quality bar, and the lowest batch-1 latency.
void BestOf(std::ostringstream& o, const std::vector<Candidate>& candidates) {
  const Candidate* best = nullptr;
  const Candidate* fastest = nullptr;
  for (const Candidate& c : candidates) {
    if (c.peak && c.rho >= kMinStsSpearman &&
        (!best || c.peak->items_per_s > best->peak->items_per_s)) {
      best = &c;
    }
    if (c.backend == "null") continue;  // no model ran: not a latency claim
    if (c.b1 && (!fastest || c.b1->p50_ms < fastest->b1->p50_ms)) fastest = &c;
  }
  o << "- **Highest throughput with STS-B ρ ≥ " << FormatFixed(kMinStsSpearman, 3) << ":** ";
  if (best) {
    o << best->name << ", " << Cell(best->peak->items_per_s, 1) << " items/s at "
      << GroupLabel(*best->peak) << " (ρ " << Cell(best->rho, 4) << ")\n";
  } else {
    o << "none (no successful experiment reports an STS-B ρ at or above the bar)\n";
  }
  o << "- **Lowest batch-1 latency:** ";
  if (fastest) {
    o << fastest->name << ", p50 " << Cell(fastest->b1->p50_ms, 2) << " ms at b=1 c=1 (p99 "
      << Cell(fastest->b1->p99_ms, 2) << " ms)\n";
  } else {
    o << "none (no successful batch-size-1 point at concurrency 1)\n";
  }
}

// Dynamic batching: batching-on peak ÷ the best batching-off point at the same concurrency,
// between experiments of the same backend and precision. False when no pair was found.
bool BatchingGain(std::ostringstream& o, const std::vector<ExperimentRun>& runs) {
  bool any_pair = false;
  for (const ExperimentRun& on : runs) {
    if (!IsOk(on) || Batching(on.results) != "true" || HasVariants(on.results)) continue;
    const auto peak = BestThroughput(GroupPoints(on.results));
    if (!peak) continue;
    for (const ExperimentRun& off : runs) {
      if (!IsOk(off) || Batching(off.results) != "false" || HasVariants(off.results) ||
          Backend(off.results) != Backend(on.results) ||
          Precision(off.results) != Precision(on.results) ||
          Workload(off.results) != Workload(on.results)) {
        continue;
      }
      std::optional<PointGroup> base;
      for (const PointGroup& g : GroupPoints(off.results)) {
        if (g.ok() && g.concurrency == peak->concurrency && g.batch_size == peak->batch_size &&
            (!base || g.items_per_s > base->items_per_s)) {
          base = g;
        }
      }
      if (!base || !(base->items_per_s > 0)) continue;
      any_pair = true;
      o << "- **Dynamic batching gain:** " << on.name << " over " << off.name << " = "
        << FormatFixed(peak->items_per_s / base->items_per_s, 2) << "× at concurrency "
        << peak->concurrency << " (" << Cell(peak->items_per_s, 1) << " items/s at "
        << GroupLabel(*peak) << " vs " << Cell(base->items_per_s, 1) << " items/s at "
        << GroupLabel(*base) << ")\n";
    }
  }
  return any_pair;
}

// Client capacity: the null backend's peak (no model work) over the best real peak.
void ClientCapacity(std::ostringstream& o, const std::vector<ExperimentRun>& runs,
                    const std::vector<Candidate>& candidates) {
  for (const ExperimentRun& null_run : runs) {
    if (!IsOk(null_run) || Backend(null_run.results) != "null") continue;
    const auto null_peak = BestThroughput(GroupPoints(null_run.results));
    const Candidate* real = nullptr;
    for (const Candidate& c : candidates) {
      if (c.backend != "null" && c.peak && (!real || c.peak->items_per_s > real->peak->items_per_s))
        real = &c;
    }
    if (null_peak && real && real->peak->items_per_s > 0) {
      o << "- **Client capacity:** with the null backend the load generator and server path reach "
        << Cell(null_peak->items_per_s, 1) << " items/s (" << GroupLabel(*null_peak)
        << ") = " << FormatFixed(null_peak->items_per_s / real->peak->items_per_s, 1)
        << "× the best real peak (" << real->name << ", " << Cell(real->peak->items_per_s, 1)
        << " items/s)\n";
    }
  }
}

void Recommendations(std::ostringstream& o, const std::vector<ExperimentRun>& runs) {
  o << "## Recommendations\n\n";
  const std::vector<Candidate> candidates = Candidates(runs);
  BestOf(o, candidates);
  const bool any_pair = BatchingGain(o, runs);
  ClientCapacity(o, runs, candidates);
  if (!any_pair) {
    o << "- **Dynamic batching gain:** not measured (needs a batching-on and a batching-off "
         "experiment of the same backend and precision at the same concurrency)\n";
  }
  std::string missing;
  for (const ExperimentRun& r : runs) {
    if (!IsOk(r)) missing += (missing.empty() ? "" : "; ") + r.name + " (" + StatusOf(r) + ")";
  }
  o << "- **Not available or failed:** " << (missing.empty() ? "none" : missing) << "\n\n";
}

void Detail(std::ostringstream& o, const ExperimentRun& r, const std::string& charts_link) {
  const json& prov = Sub(r.results, "provenance");
  o << "### " << r.name << "\n\n";
  if (!JsonString(r.results, "description").empty()) {
    o << JsonString(r.results, "description") << "\n\n";
  }
  o << "Run `" << r.name << "/" << r.timestamp << "`; status " << StatusOf(r) << "; commit `"
    << OrDash(JsonString(prov, "git_commit")) << "`"
    << (JsonString(prov, "git_dirty") == "true" ? " (dirty tree)" : "") << ", "
    << OrDash(JsonString(prov, "date_utc")) << "; " << OrDash(JsonString(prov, "cpu_model")) << ", "
    << Cell(JsonNumber(prov, "cores"), 0) << " cores; backend " << OrDash(Backend(r.results))
    << ", precision " << OrDash(Precision(r.results)) << ", kernels "
    << OrDash(JsonString(Sub(r.results, "server"), "kernels")) << ", dynamic batching "
    << (Batching(r.results) == "true"    ? "on"
        : Batching(r.results) == "false" ? "off"
                                         : "–")
    << ".\n\n";
  const auto groups = GroupPoints(r.results);
  if (!IsOk(r) || groups.empty()) {
    o << "No points.\n\n";
    return;
  }
  o << "| Setting | Repeats (failed) | items/s | p50 ms | p95 ms | p99 ms | mean server batch "
       "| Errors | Spread % |\n"
    << "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const PointGroup& g : groups) {
    o << "| " << GroupLabel(g) << " | " << g.repeats << " (" << g.failed_repeats << ") | "
      << Cell(g.items_per_s, 1) << " | " << Cell(g.p50_ms, 2) << " | " << Cell(g.p95_ms, 2) << " | "
      << Cell(g.p99_ms, 2) << " | " << Cell(g.server_batch_size_mean, 2) << " | " << g.errors
      << " | " << Cell(g.spread_pct, 1) << " |\n";
  }
  o << "\nMeans over the repeats that did not fail; – where every repeat failed.\n\n";
  const std::string base = charts_link + "/" + r.name + "/";
  o << "![" << r.name << " throughput](" << base << "throughput.svg)\n"
    << "![" << r.name << " latency](" << base << "latency.svg)\n"
    << "![" << r.name << " throughput vs latency](" << base << "tradeoff.svg)\n\n";
}

}  // namespace

StatusOr<std::vector<ExperimentRun>> LoadLatestRuns(const std::string& results_root) {
  std::error_code ec;
  if (!fs::is_directory(results_root, ec)) return NotFound("no results folder " + results_root);
  std::vector<ExperimentRun> runs;
  for (const fs::directory_entry& exp : fs::directory_iterator(results_root, ec)) {
    std::error_code sub_ec;  // an unreadable experiment folder is skipped, not fatal
    if (!exp.is_directory(sub_ec)) continue;
    std::string latest;
    for (const fs::directory_entry& ts : fs::directory_iterator(exp.path(), sub_ec)) {
      const std::string n = ts.path().filename().string();
      if (ts.is_directory(sub_ec) && fs::is_regular_file(ts.path() / "results.json", sub_ec) &&
          n > latest) {
        latest = n;
      }
    }
    if (latest.empty()) continue;
    ExperimentRun run;
    run.name = exp.path().filename().string();
    run.timestamp = latest;
    auto j = ReadJsonFile((exp.path() / latest / "results.json").string());
    if (j.ok()) {
      run.results = std::move(*j);
    } else {
      run.error = j.status().message();
    }
    runs.push_back(std::move(run));
  }
  if (ec) return Internal("cannot list " + results_root + ": " + ec.message());
  std::sort(runs.begin(), runs.end(),
            [](const ExperimentRun& a, const ExperimentRun& b) { return a.name < b.name; });
  return runs;
}

std::string AnalysisMarkdown(const std::vector<ExperimentRun>& runs,
                             const std::string& charts_link) {
  std::ostringstream o;
  o << "# Experiment analysis\n\n"
    << "Generated by `encserve report` from the latest run of each experiment (" << runs.size()
    << " found); every figure comes from those runs' results.json. Do not edit by hand: re-run "
       "`encserve report` after new runs. Method and schema: "
       "[experiments.md](experiments.md).\n\n";
  Summary(o, runs);
  Recommendations(o, runs);
  o << BackendComparisonMarkdown(runs);
  o << "## Experiments\n\n";
  for (const ExperimentRun& r : runs) Detail(o, r, charts_link);
  return o.str();
}

Status WriteAnalysis(const std::string& results_root, const std::string& out_md,
                     const std::string& charts_dir, const std::string& out_html) {
  ASSIGN_OR_RETURN(std::vector<ExperimentRun> runs, LoadLatestRuns(results_root));
  for (const ExperimentRun& r : runs) {
    if (!IsOk(r)) continue;
    const std::string dir = charts_dir + "/" + r.name;
    RETURN_IF_ERROR(WriteTextFile(dir + "/throughput.svg", ThroughputSvg(r.results)));
    RETURN_IF_ERROR(WriteTextFile(dir + "/latency.svg", LatencySvg(r.results)));
    RETURN_IF_ERROR(WriteTextFile(dir + "/tradeoff.svg", TradeoffSvg(r.results)));
  }
  const fs::path md_dir = fs::absolute(out_md).lexically_normal().parent_path();
  std::string link = fs::absolute(charts_dir).lexically_normal().lexically_relative(md_dir);
  if (!link.empty() && link.back() == '/') link.pop_back();
  if (link.empty()) link = ".";
  RETURN_IF_ERROR(WriteTextFile(out_md, AnalysisMarkdown(runs, link)));
  if (out_html.empty()) return Status::Ok();
  return WriteTextFile(out_html, AnalysisHtml(runs));
}

}  // namespace encserve::experiment
