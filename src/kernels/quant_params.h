// Per-row parameters of the asymmetric activation quantisation (kernels/quant.h), shared by every
// quantize_row_range so that all tables compute them with the same float operations. In an
// anonymous namespace on purpose: each translation unit (compiled for its own ISA) gets its own
// copy, and the linker can never pick an AVX-512 build of it for the scalar table.
#pragma once

#include <cmath>
#include <cstdint>

namespace encserve::kernels {
namespace {

struct RowQuant {
  float scale;  // a_i
  float inv;    // 255 / (hi − lo), 0 for an all-zero row
  int zp;       // zero point ∈ [0, 255]
  float shift;  // c_i = a_i · (128 − zp)
};

// lo ≤ 0 ≤ hi: the row's minimum and maximum, each clamped to include zero.
inline RowQuant RowQuantParams(float lo, float hi) {
  const float range = hi - lo;
  const float inv = 255.0f / range;
  RowQuant p{1.0f, 0.0f, 128, 0.0f};
  if (range > 0.0f && std::isfinite(inv)) {
    p.scale = range / 255.0f;
    p.inv = inv;
    p.zp = static_cast<int>(std::nearbyint(-lo * inv));
    p.shift = p.scale * static_cast<float>(128 - p.zp);
  }
  return p;
}

// One activation byte: clamp(rint(x · inv) + zp, 0, 255), the scalar form of what the vector
// paths compute with vcvtps2dq, vpaddd and saturating packs.
inline uint8_t QuantizeU8(float x, const RowQuant& p) {
  const int u = static_cast<int>(std::nearbyint(x * p.inv)) + p.zp;
  return static_cast<uint8_t>(u < 0 ? 0 : (u > 255 ? 255 : u));
}

// The int4 kernels' activation group sums (kernels/quant.h, X_{i,g} = Σ_{k∈g} xq) for `rows`
// rows of quantised activations (u8 at x + r·ldx): out[r · ng + g] = mult · X, ng = k / group.
// Exact integers (|X| ≤ 128 · group), computed once per row tile and reused by every panel.
inline void GroupSumsXq(const uint8_t* x, int ldx, int rows, int k, int group, float mult,
                        float* out) {
  const int ng = k / group;
  for (int r = 0; r < rows; ++r) {
    const uint8_t* row = x + static_cast<long>(r) * ldx;
    for (int g = 0; g < ng; ++g) {
      int sum = 0;
      for (int c = g * group; c < (g + 1) * group; ++c) sum += row[c];
      out[r * ng + g] = mult * static_cast<float>(sum - 128 * group);
    }
  }
}

}  // namespace
}  // namespace encserve::kernels
