// model.variants: `registry` or a list of overrides, expanded to the variants the runner runs.
#include "experiment/experiment_origin.h"
#include "kernels/precision.h"

namespace encserve::experiment::internal {
namespace {

// The experiment's settings (server, batching: all of c->server) with a variant's backend,
// precision and options; its options override model.<backend>'s key by key. No fallback.
Variant MakeVariant(const ServerSettings& base, const std::string& label,
                    const std::string& backend, const std::string& precision,
                    const backends::Sections& sections) {
  Variant v;
  v.server = base;
  v.server.fallback.clear();
  v.server.backend = backend;
  v.server.precision = precision;
  for (const auto& [name, section] : sections) {
    for (const auto& [key, value] : section) v.server.sections[name][key] = value;
  }
  v.label = label.empty() ? backend + "-" + precision : label;
  if (const backends::BackendSpec* spec = backends::FindBackend(backend)) {
    v.unavailable = spec->unavailable;
  }
  return v;
}

}  // namespace

void ExpandVariants(const VariantList& list, ExperimentConfig* c) {
  if (list.registry) {
    for (const backends::BackendSpec& spec : backends::Registry()) {
      if (spec.for_tests || !spec.computes) continue;
      for (kernels::Precision p : spec.precisions) {
        c->variants.push_back(
            MakeVariant(c->server, "", spec.name, std::string(kernels::PrecisionName(p)), {}));
      }
    }
    return;
  }
  for (size_t i = 0; i < list.items.size(); ++i) {
    const VariantItem& item = list.items[i];
    c->variants.push_back(
        MakeVariant(c->server, item.label, item.backend.empty() ? c->server.backend : item.backend,
                    item.precision.empty() ? c->server.precision : item.precision, item.sections));
    nlohmann::json& j = c->resolved["model"]["variants"][i];
    j["label"] = c->variants.back().label;
    j["backend"] = c->variants.back().server.backend;
    j["precision"] = c->variants.back().server.precision;
  }
}

}  // namespace encserve::experiment::internal
