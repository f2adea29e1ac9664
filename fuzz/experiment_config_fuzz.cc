// libFuzzer target: experiment files (experiment/experiment_config.h) on arbitrary text through
// ParseExperiment, the from-text twin of LoadExperiment: YAML, the deep merge over the base,
// every section's keys, types, enums and ranges, model.variants.
//
// Input: [mode] text... ; mode bit 0: the text is an experiment over the real
// configs/experiments/base.yaml; else bit 1: the text is "base%%experiment" (split at the first
// kSeparator); else the text is an experiment over the built-in defaults.
// Invariants: errors are INVALID_ARGUMENT or NOT_FOUND (never a crash or an escaped exception);
// a parsed experiment has positive sweep sizes and a resolved document that is a JSON object.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "experiment/experiment_config.h"
#include "fuzz/fuzz_util.h"

namespace {
constexpr const char* kSeparator = "\n%%\n";
const std::string* base_yaml = nullptr;

void CheckExperiment(const encserve::experiment::ExperimentConfig& e) {
  FUZZ_CHECK(e.resolved.is_object(), "resolved is not an object");
  for (int b : e.sweep.batch_sizes) FUZZ_CHECK(b > 0, "batch size " + std::to_string(b));
  for (int c : e.sweep.concurrency_levels) FUZZ_CHECK(c > 0, "concurrency " + std::to_string(c));
  FUZZ_CHECK(e.sweep.repeats > 0, "repeats");
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string path = encserve::fuzz::SourceDir() + "/configs/experiments/base.yaml";
  base_yaml = new std::string(encserve::fuzz::ReadFile(path));
  if (base_yaml->empty()) encserve::fuzz::SetupFailed("cannot read " + path);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace encserve;
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  const std::string_view text = fuzz::AsText(data + 1, size - 1);
  std::string base, over;
  if (mode & 1) {
    base = *base_yaml;
    over = text;
  } else if (mode & 2) {
    std::vector<std::string> parts = fuzz::Split(text, kSeparator, 2);
    base = parts[0];
    over = parts.size() > 1 ? parts[1] : "";
  } else {
    over = text;
  }
  auto e = experiment::ParseExperiment(over, base, "fuzz.yaml");
  if (!e.ok()) {
    const StatusCode code = e.status().code();
    FUZZ_CHECK(code == StatusCode::kInvalidArgument || code == StatusCode::kNotFound,
               e.status().ToString());
    return 0;
  }
  CheckExperiment(*e);
  return 0;
}
