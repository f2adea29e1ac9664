// The per-variant view of a run with model.variants: each variant's points, status, server and
// quality as a run of its own, its summary figures, and results.md's "Variants" section.
#include <cmath>
#include <sstream>

#include "experiment/results_report.h"

namespace encserve::experiment {
namespace {

using nlohmann::json;

}  // namespace

json VariantResults(const json& results, const json& variant) {
  json out = json::object();
  if (!results.is_object()) return out;
  for (const auto& [key, value] : results.items()) {
    if (key != "points" && key != "variants") out[key] = value;
  }
  out["status"] = Sub(variant, "status");
  out["server"] = Sub(variant, "server");
  out["quality"] = Sub(variant, "quality");
  out["points"] = json::array();
  const std::string label = JsonString(variant, "label");
  const json& points = Sub(results, "points");
  if (!points.is_array()) return out;
  for (const json& p : points) {
    if (JsonString(p, "variant") != label) continue;
    json q = p;
    q.erase("variant");
    out["points"].push_back(std::move(q));
  }
  return out;
}

std::vector<VariantSummary> SummarizeVariants(const json& results) {
  std::vector<VariantSummary> out;
  const json& variants = Sub(results, "variants");
  if (!variants.is_array()) return out;
  for (const json& v : variants) {
    VariantSummary s;
    s.label = JsonString(v, "label");
    s.backend = JsonString(v, "backend");
    s.precision = JsonString(v, "precision");
    s.status = JsonString(v, "status");
    s.sts_b = JsonNumber(Sub(v, "quality"), "sts_b_spearman");
    s.resident_mb = JsonNumber(v, "resident_mb");
    s.load_seconds = JsonNumber(v, "load_seconds");
    if (s.ok()) {  // a variant that failed part-way shows its status, not partial figures
      const std::vector<PointGroup> groups = GroupPoints(VariantResults(results, v));
      s.peak = BestThroughput(groups);
      s.b1 = BatchOneLatency(groups);
      for (const PointGroup& g : groups) {
        if (g.ok() && g.batch_size == 32 && g.concurrency == 8 && !g.rate &&
            (!s.b32_c8 || g.items_per_s > s.b32_c8->items_per_s)) {
          s.b32_c8 = g;
        }
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::string VariantsMarkdown(const json& results) {
  const std::vector<VariantSummary> variants = SummarizeVariants(results);
  if (variants.empty()) return "";
  std::ostringstream o;
  o << "\n## Variants\n\n"
    << "| Variant | Backend | Precision | Peak items/s | at | b=1 c=1 p50 ms | b=1 c=1 p99 ms "
       "| STS-B ρ | RSS MB | Load s | Status |\n"
    << "|---|---|---|---:|---|---:|---:|---:|---:|---:|---|\n";
  for (const VariantSummary& v : variants) {
    o << "| " << CellText(v.label) << " | " << CellText(v.backend) << " | " << CellText(v.precision)
      << " | " << (v.peak ? Cell(v.peak->items_per_s, 1) : "–") << " | "
      << (v.peak ? GroupLabel(*v.peak) : "–") << " | " << (v.b1 ? Cell(v.b1->p50_ms, 2) : "–")
      << " | " << (v.b1 ? Cell(v.b1->p99_ms, 2) : "–") << " | " << Cell(v.sts_b, 4) << " | "
      << Cell(v.resident_mb, 0) << " | " << Cell(v.load_seconds, 2) << " | " << CellText(v.status)
      << " |\n";
  }
  o << "\nEach variant ran the whole sweep on a server of its own. Peak: its best setting (mean "
       "over the repeats that did not fail). RSS: the server's resident memory right after load, "
       "before any request. Load s: from the server's start to ready (load and warm-up). A "
       "variant whose status is not ok has no figures.\n";
  return o.str();
}

}  // namespace encserve::experiment
