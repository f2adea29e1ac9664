// Weight precisions the engine can run a model in.
#pragma once

#include <string>

namespace encserve::kernels {

enum class Precision {
  kF32,   // fp32 weights and compute
  kBF16,  // bf16 weights; AMX-BF16 tiles or AVX512-BF16 dot products (bf16 activations, fp32
          // accumulate) where the CPU has them, else bf16 weights widened to fp32 (fp32 compute)
  kF16,   // fp16 weight storage, widened to fp32 (F16C) with fp32 compute
  kInt8,  // per-channel symmetric int8 weights, dynamic per-row int8 activations
  kInt4,  // group-wise symmetric int4 weights, dynamic per-row int8 activations
};

const char* PrecisionName(Precision p);
bool ParsePrecision(const std::string& name, Precision* out);

}  // namespace encserve::kernels
