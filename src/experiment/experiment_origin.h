// Internal to the experiment-file reader (experiment_config.cc, experiment_validate.cc,
// experiment_variants.cc): which file an error belongs to, model.variants as written, and the
// checks of the merged document.
#pragma once

#include <yaml-cpp/yaml.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/status.h"
#include "experiment/experiment_config.h"

namespace encserve::experiment::internal {

// Which file an error belongs to: the experiment file if it sets the key path, else the base if
// it does, else (a required key nobody set, a check across keys) the experiment file.
class Origin {
 public:
  Origin(YAML::Node experiment, YAML::Node base, std::string where, std::string base_where)
      : experiment_(std::move(experiment)),
        base_(std::move(base)),
        where_(std::move(where)),
        base_where_(std::move(base_where)) {}

  // "file: message", where `path` ("a.b.c" or "a.b[2]") is the key the message is about.
  Status Error(const std::string& path, const std::string& message) const {
    const bool from_base = !Sets(experiment_, path) && Sets(base_, path);
    return InvalidArgument((from_base ? base_where_ : where_) + ": " + message);
  }
  // An error that involves several keys: the experiment file.
  Status Error(const std::string& message) const {
    return InvalidArgument(where_ + ": " + message);
  }

 private:
  static bool Sets(YAML::Node node, const std::string& path) {
    std::stringstream ss(path.substr(0, path.find('[')));
    for (std::string key; std::getline(ss, key, '.');) {
      if (!node.IsMap()) return false;
      const YAML::Node child = static_cast<const YAML::Node&>(node)[key];
      if (!child.IsDefined() || child.IsNull()) return false;
      // reset(), not operator=: assigning a yaml-cpp node would overwrite the tree it refers to.
      node.reset(child);
    }
    return true;
  }

  YAML::Node experiment_, base_;
  std::string where_, base_where_;
};

// model.variants as written: `registry`, or a list of overrides of model.* ("" = model.*'s).
struct VariantItem {
  std::string label, backend, precision;
  backends::Sections sections;
};
struct VariantList {
  bool registry = false;
  std::vector<VariantItem> items;
};

// model.variants -> c->variants (after c->server is read): each the experiment's settings with
// the variant's backend, precision and options; list entries get their final label, backend and
// precision in c->resolved, so that parsing it again gives the same variants.
void ExpandVariants(const VariantList& list, ExperimentConfig* c);

// Range, enum and cross-key checks of the merged document; errors name the key path.
Status Validate(const ExperimentConfig& c, const Origin& o);

}  // namespace encserve::experiment::internal
