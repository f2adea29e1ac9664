// Weights of a linear layer y = x·Wᵀ + b pre-packed for the GEMM micro-kernels: W [n, k]
// (PyTorch layout) becomes ceil(n / nr) column panels, each k rows of nr contiguous floats,
// zero-padded past n. The bias is padded to the same width.
#pragma once

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

}  // namespace encserve::kernels
