// The analysis page's "Backend comparison": every variant of the latest backends_compare run
// (model.variants: registry) side by side, with native's peak at the same precision over each.
#include <sstream>

#include "experiment/analysis.h"
#include "experiment/results_report.h"

namespace encserve::experiment {
namespace {

using nlohmann::json;

// How the table names a backend, plus the variant's label when it is not the default one.
std::string BackendCell(const VariantSummary& v) {
  std::string s = v.backend == "onnx" ? "onnx (ONNX model on OpenVINO)" : v.backend;
  if (v.label != v.backend + "-" + v.precision) s += " [" + v.label + "]";
  return CellText(s);
}

// native's peak at this row's precision ÷ this row's peak: "—" when native has no figure at
// that precision, "–" when this row has none.
std::string NativeRatio(const VariantSummary& v, const std::vector<VariantSummary>& all) {
  const VariantSummary* native = nullptr;
  for (const VariantSummary& n : all) {
    if (n.backend == "native" && n.precision == v.precision && n.peak) {
      native = &n;
      break;
    }
  }
  if (native == nullptr) return "—";
  if (!v.peak || !(v.peak->items_per_s > 0)) return "–";
  return FormatFixed(native->peak->items_per_s / v.peak->items_per_s, 2) + "×";
}

void ComparisonTable(std::ostringstream& o, const std::vector<VariantSummary>& variants) {
  o << "| Backend | Precision | Peak items/s | items/s b=32 c=8 | b=1 c=1 p50 ms | b=1 c=1 p99 ms "
       "| STS-B ρ | Resident MB | Load s | ÷ native | Status |\n"
    << "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";
  for (const VariantSummary& v : variants) {
    std::string peak = "–";
    if (v.peak) peak = Cell(v.peak->items_per_s, 1) + " (" + GroupLabel(*v.peak) + ")";
    o << "| " << BackendCell(v) << " | " << CellText(v.precision) << " | " << peak << " | "
      << (v.b32_c8 ? Cell(v.b32_c8->items_per_s, 1) : "–") << " | "
      << (v.b1 ? Cell(v.b1->p50_ms, 2) : "–") << " | " << (v.b1 ? Cell(v.b1->p99_ms, 2) : "–")
      << " | " << Cell(v.sts_b, 4) << " | " << Cell(v.resident_mb, 0) << " | "
      << Cell(v.load_seconds, 2) << " | " << NativeRatio(v, variants) << " | " << CellText(v.status)
      << " |\n";
  }
}

}  // namespace

std::string BackendComparisonMarkdown(const std::vector<ExperimentRun>& runs) {
  const ExperimentRun* run = nullptr;
  for (const ExperimentRun& r : runs) {
    if (r.name == kBackendsCompareName) run = &r;
  }
  if (run == nullptr) return "";
  std::ostringstream o;
  const json& prov = Sub(run->results, "provenance");
  const json& workload = Sub(Sub(run->results, "config"), "workload");
  o << "## Backend comparison\n\n"
    << "From run `" << run->name << "/" << run->timestamp << "` (commit `"
    << CellText(JsonString(prov, "git_commit")) << "`"
    << (JsonString(prov, "git_dirty") == "true" ? ", dirty tree" : "") << ", "
    << CellText(JsonString(prov, "date_utc")) << "): every backend × precision on the same "
    << "sweep and workload (" << CellText(JsonString(workload, "name")) << " over "
    << CellText(JsonString(workload, "protocol")) << "), one server per variant.\n\n";
  const std::string status =
      run->error.empty() ? JsonString(run->results, "status") : "unreadable: " + run->error;
  const std::vector<VariantSummary> variants = SummarizeVariants(run->results);
  if (status != "ok" || variants.empty()) {
    o << "No comparison: " << (status != "ok" ? "status " + CellText(status) : "no variants")
      << ".\n\n";
    return o.str();
  }
  ComparisonTable(o, variants);
  o << "\nPeak: the variant's best setting (mean over the repeats that did not fail). "
       "Resident MB: the server's resident memory right after load, before any request. Load s: "
       "from the server's start to ready. ÷ native: native's peak items/s at the same precision "
       "divided by this row's (above 1: native is faster); — where native has no figure at that "
       "precision. A row whose status is not ok has no figures.\n\n";
  return o.str();
}

}  // namespace encserve::experiment
