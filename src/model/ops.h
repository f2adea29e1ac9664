// Ops: kernels from the active table, partitioned over a replica's thread pool.
#pragma once

#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace encserve {
struct LinearWeights;
}  // namespace encserve

namespace encserve::ops {

// out = LayerNorm(x + residual) row-wise (residual may be null; out may alias x or residual).
void LayerNorm(const kernels::KernelTable& kt, ThreadPool& pool, const float* x,
               const float* residual, const float* gamma, const float* beta, float eps, float* out,
               int m, int n);

// Multi-head self-attention over a padding-free batch: sequence s owns rows
// [offsets[s], offsets[s+1]) of qkv [T, 3H] and of out [T, H]. qkv is head-interleaved: head j's
// query, key and value are columns [3dj, 3dj + d), [3dj + d, 3dj + 2d), [3dj + 2d, 3d(j + 1)),
// d = head_dim (BertLayerWeights::qkv's row order).
void Attention(const kernels::KernelTable& kt, ThreadPool& pool, const float* qkv,
               const int* offsets, int num_seqs, int num_heads, int head_dim, float* out);

// qkv = x · W_qkvᵀ + b (head-interleaved weights, as above), then Attention into out. When the
// pool's threads divide the heads evenly (and 3 · head_dim is a multiple of the GEMM's panel
// width, and the GEMM is not tiny) each thread computes the projection columns of its own heads
// and then their attention: one parallel region, no barrier between the two. Otherwise Linear,
// then Attention (split over (sequence, head) pairs).
void QkvAttention(const kernels::KernelTable& kt, ThreadPool& pool, const float* x,
                  const LinearWeights& qkv_weights, float* qkv, const int* offsets, int num_seqs,
                  int num_heads, int head_dim, float* out);

// v /= max(||v||, 1e-12) (torch.nn.functional.normalize), accumulated in double.
void L2Normalize(float* v, int dim);

// a . b accumulated in double (cosine of two normalised embeddings).
float Dot(const float* a, const float* b, int dim);

}  // namespace encserve::ops
