// Naive reference of the quantised kernels (kernels/quant.h): the test oracle. Works on
// UNPACKED integer data (one int8 per value, row-major) and accumulates in double.
#pragma once

#include <cstdint>

namespace encserve::kernels::ref {

// x [m, k] → xq [m, k] = xu − 128 ∈ [-128, 127] (asymmetric per row, kernels/quant.h), scale
// [m] = a_i and shift [m] = c_i = a_i · (128 − zp_i); with col_scale the rows quantised are
// x[i, c] · col_scale[c].
void QuantizeRows(const float* x, int m, int k, int8_t* xq, float* scale, float* shift,
                  const float* col_scale = nullptr);
// w [n, k] → q [n, k] ∈ [-127, 127], scale [n] (per output channel).
void QuantizeWeightsS8(const float* w, int n, int k, int8_t* q, float* scale);
// w [n, k] → q [n, k] ∈ [-8, 7], scale and offset [n, k / group] (k % group == 0): affine,
// W ≈ scale · q + offset per group (kernels/quant.h).
void QuantizeWeightsS4(const float* w, int n, int k, int group, int8_t* q, float* scale,
                       float* offset);

// y[i, j] = epi(xs_i · ws_j · Σ_k xq·wq + xc_i · ws_j · Σ_k wq + bias_j); bias may be null;
// gelu: exact erf GELU.
void GemmS8(const int8_t* xq, const float* xs, const float* xc, int m, const int8_t* wq,
            const float* ws, const float* bias, float* y, int n, int k, bool gelu);
// y[i, j] = epi(Σ_k x̂[i,k] · Ŵ[j,k] + bias_j) with x̂ = xs_i · xq + xc_i (the dequantised
// activations) and Ŵ = ws[j, g] · wq + wo[j, g] (the dequantised weights of group g).
void GemmS4(const int8_t* xq, const float* xs, const float* xc, int m, const int8_t* wq,
            const float* ws, const float* wo, int group, const float* bias, float* y, int n, int k,
            bool gelu);

}  // namespace encserve::kernels::ref
