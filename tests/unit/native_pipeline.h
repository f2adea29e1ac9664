// Tests: load a Pipeline on the native backend from the flat settings tests use.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "kernels/cpu_features.h"
#include "model/linear.h"
#include "pipeline/pipeline.h"

namespace encserve::testing {

struct NativeLoad {
  std::string model_dir;
  int threads = 1;
  bool split_batches = true;
  int replicas = 1;
  std::optional<kernels::Isa> isa;
  kernels::Precision precision = kernels::Precision::kF32;
  int group_size = 64;
  Int4Recipe int4_recipe = Int4Recipe::kGptq;
  int max_batch_size = 64;
  int max_batch_tokens = 8192;
  std::optional<int> max_length;
  std::string backend = "native";
};

inline PipelineOptions ToPipelineOptions(const NativeLoad& n) {
  PipelineOptions o;
  o.backend = n.backend;
  o.common.model_dir = n.model_dir;
  o.common.threads = n.threads;
  o.common.replicas = n.replicas;
  o.common.precision = n.precision;
  o.max_length = n.max_length;
  o.max_batch_size = n.max_batch_size;
  o.max_batch_tokens = n.max_batch_tokens;
  backends::Section& s = o.sections["native"];
  s["split_batches"] = n.split_batches ? "true" : "false";
  s["group_size"] = std::to_string(n.group_size);
  s["int4_recipe"] = Int4RecipeName(n.int4_recipe);
  if (n.isa) s["isa"] = kernels::IsaName(*n.isa);
  return o;
}

inline StatusOr<std::unique_ptr<Pipeline>> LoadNative(const NativeLoad& n) {
  return Pipeline::Load(ToPipelineOptions(n));
}

}  // namespace encserve::testing
