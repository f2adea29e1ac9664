#include "kernels/packed.h"

#include <cassert>

namespace encserve::kernels {

PackedF32 PackF32(const float* w, const float* bias, int n, int k, int nr) {
  assert(n > 0 && k > 0 && nr > 0);
  PackedF32 p;
  p.n = n;
  p.k = k;
  p.nr = nr;
  const int panels = p.num_panels();
  p.panels.resize(static_cast<size_t>(panels) * k * nr);
  p.bias.resize(static_cast<size_t>(panels) * nr);
  for (int j = 0; j < n; ++j) {
    float* dst = p.panels.data() + static_cast<size_t>(j / nr) * k * nr + j % nr;
    const float* src = w + static_cast<size_t>(j) * k;
    for (int kk = 0; kk < k; ++kk) dst[static_cast<size_t>(kk) * nr] = src[kk];
    if (bias != nullptr) p.bias[j] = bias[j];
  }
  return p;
}

}  // namespace encserve::kernels
