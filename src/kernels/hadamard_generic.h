// Block Hadamard transform of rows, portable loops (the scalar table, and the avx2 table where
// the compiler vectorises the stride ≥ 8 stages): compiled into each ISA's translation unit.
#pragma once

#include <cstddef>

namespace encserve::kernels::generic {

// out[m, k] = blockdiag(H64, …)(x[m, k] · diag(col_scale)) row by row, with H64 the Sylvester
// Hadamard matrix (entries ±1, not normalised: H64 · H64 = 64 I); k % 64 == 0, out may alias x,
// col_scale may be null (1). T = float for the kernel tables; model/linear.cc uses T = double for
// the load-time Hessians. Internal linkage (static): each ISA's translation unit keeps its own
// copy compiled with its own flags, so the linker cannot hand the scalar table an AVX2 build.
template <class T>
static inline void Hadamard64Rows(const T* x, const float* col_scale, T* out, int m, int k) {
  for (long i = 0; i < m; ++i) {
    const T* src = x + i * k;
    T* dst = out + i * k;
    for (int b = 0; b < k; b += 64) {
      T v[64];
      for (int j = 0; j < 64; ++j) v[j] = src[b + j] * (col_scale ? col_scale[b + j] : 1.0f);
      for (int h = 1; h < 64; h *= 2) {
        for (int s = 0; s < 64; s += 2 * h) {
          for (int j = s; j < s + h; ++j) {
            const T a = v[j], c = v[j + h];
            v[j] = a + c;
            v[j + h] = a - c;
          }
        }
      }
      for (int j = 0; j < 64; ++j) dst[b + j] = v[j];
    }
  }
}

}  // namespace encserve::kernels::generic
