// Weights of a linear layer y = x·Wᵀ + b pre-packed for the GEMM micro-kernels: W [n, k]
// (PyTorch layout) becomes ceil(n / nr) column panels, each k rows of nr contiguous floats,
// zero-padded past n. The bias is padded to the same width.
#pragma once

#include <cstdint>

#include "core/aligned_buffer.h"

namespace encserve::kernels {

struct PackedF32 {
  int n = 0;
  int k = 0;
  int nr = 0;
  AlignedBuffer<float> panels;  // num_panels() × k × nr
  AlignedBuffer<float> bias;    // num_panels() × nr (zeros when the layer has no bias)

  int num_panels() const { return nr == 0 ? 0 : (n + nr - 1) / nr; }
  const float* panel(int p) const { return panels.data() + static_cast<size_t>(p) * k * nr; }
};

// w: [n, k] row-major; bias: [n] or nullptr.
PackedF32 PackF32(const float* w, const float* bias, int n, int k, int nr);

// 16-bit weights in the same panel layout as PackedF32, widened to fp32 by the kernels.
enum class HalfFormat { kF16, kBF16 };
struct PackedHalf {
  int n = 0;
  int k = 0;
  int nr = 0;
  HalfFormat format = HalfFormat::kF16;
  AlignedBuffer<uint16_t> panels;  // num_panels() × k × nr
  AlignedBuffer<float> bias;       // num_panels() × nr
  int num_panels() const { return nr == 0 ? 0 : (n + nr - 1) / nr; }
  const uint16_t* panel(int p) const { return panels.data() + static_cast<size_t>(p) * k * nr; }
};
PackedHalf PackHalf(const float* w, const float* bias, int n, int k, int nr, HalfFormat format);

// bf16 weights for AVX512-BF16 dot products: per panel, ceil(k / 2) rows of nr column pairs
// (w[j, 2i], w[j, 2i+1]) so one 32-bit lane holds the two k-values a vdpbf16ps consumes.
struct PackedBf16Pairs {
  int n = 0;
  int k = 0;  // logical k; storage is padded to an even count with zeros
  int nr = 0;
  AlignedBuffer<uint16_t> panels;  // num_panels() × ceil(k/2) × nr × 2
  AlignedBuffer<float> bias;       // num_panels() × nr
  int k_pairs() const { return (k + 1) / 2; }
  int num_panels() const { return nr == 0 ? 0 : (n + nr - 1) / nr; }
  const uint16_t* panel(int p) const {
    return panels.data() + static_cast<size_t>(p) * k_pairs() * nr * 2;
  }
};
PackedBf16Pairs PackBf16Pairs(const float* w, const float* bias, int n, int k, int nr);

// Round-to-nearest-even conversions (portable; used at packing time and by reference code).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBf16(float f);
float Bf16ToFloat(uint16_t b);

}  // namespace encserve::kernels
