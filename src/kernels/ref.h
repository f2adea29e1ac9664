// Naive scalar reference ops: the test oracle for every kernel (llm.c style: obviously
// correct loops in double precision where it matters, unpacked inputs, no tricks).
#pragma once

namespace encserve::kernels::ref {

// y[m, n] = x[m, k] · w[n, k]ᵀ + bias[n] (bias may be null); optional exact GELU (erf).
void Linear(const float* x, const float* w, const float* bias, float* y, int m, int n, int k,
            bool gelu);
// out[m, n] = LayerNorm(x (+ residual)) * gamma + beta.
void LayerNorm(const float* x, const float* residual, const float* gamma, const float* beta,
               float eps, float* out, int m, int n);
// out[L, d] = softmax(scale · q kᵀ) v for one head; rows strided by ld.
void AttentionHead(const float* q, const float* k, const float* v, int ld, int seq_len,
                   int head_dim, float scale, float* out, int ld_out);
// out[m, k] = (x · diag(col_scale)) · blockdiag(H64, …) by the definition
// H64[t, j] = (−1)^popcount(t & j), in double; col_scale may be null.
void Hadamard64(const float* x, const float* col_scale, float* out, int m, int k);
// 0.5 · x · (1 + erf(x / √2))
float Gelu(float x);

}  // namespace encserve::kernels::ref
