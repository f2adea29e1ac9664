// A linear layer y = x·Wᵀ + b stored in one precision, packed for one kernel table.
#pragma once

#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/precision.h"
#include "kernels/quant.h"

namespace encserve {

struct LinearWeights {
  kernels::Precision precision = kernels::Precision::kF32;
  int n = 0;
  int k = 0;
  kernels::PackedF32 f32;         // kF32
  kernels::PackedHalf half;       // kF16, and kBF16 without AVX512-BF16
  kernels::PackedBf16Pairs bf16;  // kBF16 with AVX512-BF16 dot products or AMX-BF16 tiles
  kernels::PackedS8 s8;           // kInt8
  kernels::PackedS4 s4;           // kInt4
  const kernels::QuantKernelTable* quant =
      nullptr;  // kInt8/kInt4: the kernels s8/s4 are packed for
  // kInt8/kInt4 with activation smoothing: x is multiplied by this [k] vector before it is
  // quantised (W was multiplied by its inverse before packing), see MakeLinear.
  std::vector<float> smooth;
  bool uses_bf16_dot() const { return bf16.n > 0; }
};

struct PrecisionOptions {
  kernels::Precision precision = kernels::Precision::kF32;
  int group_size = 64;  // int4 only: weights per scale along K (32, 64 or 128)
};

// w: [n, k] fp32 (PyTorch layout), bias: [n] or null.
// act_absmax ([k] or null): an estimate of max |x[:, c]| per input channel. For int8/int4 it
// enables SmoothQuant-style smoothing (α = 0.5): s_c = sqrt(act_absmax[c] / max_j |W[j, c]|),
// W[:, c] · s_c is quantised and x[:, c] / s_c at run time, which moves activation outlier
// channels' range into the (per-channel quantised) weights. Exact in real arithmetic.
StatusOr<LinearWeights> MakeLinear(const float* w, const float* bias, int n, int k,
                                   const PrecisionOptions& options,
                                   const kernels::KernelTable& kernels,
                                   const float* act_absmax = nullptr);

namespace ops {
// y[m, n] = epilogue(x[m, k] · Wᵀ + b) in the layer's precision, split over the pool's threads.
void Linear(const kernels::KernelTable& kt, ThreadPool& pool, const float* x, int m,
            const LinearWeights& w, float* y, kernels::Epilogue ep = kernels::Epilogue::kBias);
}  // namespace ops

}  // namespace encserve
