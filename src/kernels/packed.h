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

// bf16 weights for AVX512-BF16 dot products and AMX-BF16 tiles: per panel, kp rows of nr column
// pairs (w[j, 2i], w[j, 2i+1]) so one 32-bit lane holds the two k-values a vdpbf16ps /
// tdpbf16ps consumes. With nr = 32 and kp % 16 == 0, 16 consecutive pair rows are two AMX B
// tiles (columns 0-15 and 16-31, row stride 128 bytes).
struct PackedBf16Pairs {
  int n = 0;
  int k = 0;   // logical k
  int kp = 0;  // stored pair rows: k rounded up to the packing's k_align, halved (zero-padded)
  int nr = 0;
  AlignedBuffer<uint16_t> panels;  // num_panels() × kp × nr × 2
  AlignedBuffer<float> bias;       // num_panels() × nr
  int k_pairs() const { return kp; }
  int num_panels() const { return nr == 0 ? 0 : (n + nr - 1) / nr; }
  const uint16_t* panel(int p) const {
    return panels.data() + static_cast<size_t>(p) * k_pairs() * nr * 2;
  }
};
// k_align (even): storage pads k to a multiple of it (KernelTable::bf16_k_align).
PackedBf16Pairs PackBf16Pairs(const float* w, const float* bias, int n, int k, int nr,
                              int k_align = 2);

// Round-to-nearest-even conversions (portable; used at packing time and by reference code).
uint16_t FloatToHalf(float f);
float HalfToFloat(uint16_t h);
uint16_t FloatToBf16(float f);
float Bf16ToFloat(uint16_t b);

}  // namespace encserve::kernels
