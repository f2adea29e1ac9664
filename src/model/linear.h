// A linear layer y = x·Wᵀ + b stored in one precision, packed for one kernel table.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
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
  // kInt4 with a rotating recipe: inputs are multiplied by blockdiag(H64) (kt.hadamard64, after
  // the smoothing) and the packed weights are (W · diag(1/smooth)) · blockdiag(H64) / 64, so the
  // product is unchanged in real arithmetic and outliers are spread over 64 channels.
  bool rotated = false;
  bool uses_bf16_dot() const { return bf16.n > 0; }
};

// How int4 weights are chosen at load time (docs/kernels_quant.md, "int4 recipe").
enum class Int4Recipe {
  kRtn,     // each group's affine grid spans its min..max; round to nearest
  kRotate,  // + Hadamard rotation of every GEMM input (blocks of 64) + a clip search per group
  kGptq,    // + GPTQ with the Hessians of calibration sequences (PrecisionOptions::calibration)
};
const char* Int4RecipeName(Int4Recipe r);
// "rtn" | "rotate" | "gptq"; INVALID_ARGUMENT otherwise.
StatusOr<Int4Recipe> ParseInt4Recipe(const std::string& name);

struct PrecisionOptions {
  kernels::Precision precision = kernels::Precision::kF32;
  int group_size = 64;  // int4 only: weights per scale along K (32, 64 or 128)
  Int4Recipe int4_recipe = Int4Recipe::kGptq;
  // kGptq: token id sequences the fp32 model runs on to measure each GEMM's input Hessian
  // (backends/native/calibration.h makes data-free ones from the vocabulary). Empty: kGptq acts as
  // kRotate.
  std::vector<std::vector<int32_t>> calibration;
  // bf16 only: true = bf16 dot products (KernelTable::gemm_bf16_dot, bf16 activations), false =
  // bf16 weights widened to fp32 (gemm_half); unset: the table's preference (kernels::UseBf16Dot).
  std::optional<bool> bf16_dot;
};

// w: [n, k] fp32 (PyTorch layout), bias: [n] or null.
// act_absmax ([k] or null): an estimate of max |x[:, c]| per input channel. For int8/int4 it
// enables SmoothQuant-style smoothing (α = 0.5): s_c = sqrt(act_absmax[c] / max_j |W[j, c]|),
// W[:, c] · s_c is quantised and x[:, c] / s_c at run time, which moves activation outlier
// channels' range into the (per-channel quantised) weights. Exact in real arithmetic.
// hessian ([k, k] or null): XᵀX of calibration inputs x, for GPTQ (int4, recipe kGptq);
// pool: threads for GPTQ (null: the calling thread).
StatusOr<LinearWeights> MakeLinear(const float* w, const float* bias, int n, int k,
                                   const PrecisionOptions& options,
                                   const kernels::KernelTable& kernels,
                                   const float* act_absmax = nullptr,
                                   const std::vector<double>* hessian = nullptr,
                                   ThreadPool* pool = nullptr);

namespace ops {
// GEMMs with fewer multiply-adds (m · n · k) run on the calling thread alone.
inline constexpr long kMinParallelGemmWork = 64 * 1024;

// One Linear's input made ready for its kernels (rounded to bf16, rotated or quantised once, on
// the pool); run(r0, rows, n0, n1) then computes y[r0 : r0 + rows, n0 : n1] and may be called
// from any thread of the pool, concurrently for disjoint blocks, until the next PrepareLinear on
// the same thread (the prepared rows live in that thread's buffers). Column bounds are multiples
// of nr (or n); row blocks start at multiples of mr (mr = m: whole columns only).
struct LinearColumns {
  std::function<void(int r0, int rows, int n0, int n1)> run;
  int m = 0, n = 0, k = 0, nr = 1, mr = 1;
  bool parallel() const { return static_cast<long>(m) * n * k >= kMinParallelGemmWork; }
};
LinearColumns PrepareLinear(const kernels::KernelTable& kt, ThreadPool& pool, const float* x, int m,
                            const LinearWeights& w, float* y,
                            kernels::Epilogue ep = kernels::Epilogue::kBias);
// Runs all of a prepared Linear, split over the pool's threads by column panels (or by row
// blocks when the output is narrow), or on the caller alone when it is small.
void RunLinear(ThreadPool& pool, const LinearColumns& g);

// y[m, n] = epilogue(x[m, k] · Wᵀ + b) in the layer's precision, split over the pool's threads.
void Linear(const kernels::KernelTable& kt, ThreadPool& pool, const float* x, int m,
            const LinearWeights& w, float* y, kernels::Epilogue ep = kernels::Epilogue::kBias);
}  // namespace ops

}  // namespace encserve
