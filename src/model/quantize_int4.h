// Load-time int4 weight quantisation (docs/kernels_quant.md, "int4 recipe"): the affine grid of
// each (row, group) with a clip search, and GPTQ (Frantar et al. 2022) when the layer's input
// Hessian is known. The result is packed by kernels::PackS4 with the chosen grids.
#pragma once

#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"

namespace encserve {

struct Int4Quantized {
  std::vector<float> w;     // [n, k]: the weights to pack (on their grids after GPTQ)
  std::vector<float> grid;  // [n, k / group, 2]: lo, hi of each (row, group) affine grid
};

// The affine grid of p[0, g): lo = r · min p, hi = r · max p, with r = 1 or (mse_clip) the
// r ∈ {0.70, 0.71, …, 1.00} minimising Σ (p − Q(p))², Q rounding to the 16 levels as PackS4.
void ChooseAffineGrid(const double* p, int g, bool mse_clip, float* lo, float* hi);

// Quantises w [n, k] (row = output channel) in groups of `group` along k. hessian == nullptr:
// round to nearest on each group's grid (the grids are all that is computed; w is copied).
// Otherwise hessian is H = XᵀX [k, k] of the layer's calibration inputs in w's coordinates, and
// GPTQ quantises column by column, spreading each column's rounding error over the columns not
// yet quantised through the Cholesky factor of H⁻¹ (1 % of mean diag(H) added for stability;
// each group's grid is chosen when GPTQ reaches it, from the error-updated weights). Rows are
// independent and split over the pool.
StatusOr<Int4Quantized> QuantizeInt4(const float* w, int n, int k, int group, bool mse_clip,
                                     const std::vector<double>* hessian, ThreadPool& pool);

// U upper-triangular with UᵀU = H⁻¹ for symmetric positive definite H [k, k] (row-major);
// FAILED_PRECONDITION when H is not positive definite. pool (or null): threads for the updates.
StatusOr<std::vector<double>> InverseCholeskyUpper(const std::vector<double>& h, int k,
                                                   ThreadPool* pool = nullptr);

}  // namespace encserve
