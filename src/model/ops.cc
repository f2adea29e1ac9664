#include "model/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace encserve::ops {

void LayerNorm(const kernels::KernelTable& kt, ThreadPool& pool, const float* x,
               const float* residual, const float* gamma, const float* beta, float eps, float* out,
               int m, int n) {
  const int tasks = std::min(pool.num_threads(), std::max(1, m / 16));
  pool.ParallelFor(tasks, [&](int t) {
    const long r0 = static_cast<long>(m) * t / tasks, r1 = static_cast<long>(m) * (t + 1) / tasks;
    kt.layernorm_f32(x + r0 * n, residual ? residual + r0 * n : nullptr, gamma, beta, eps,
                     out + r0 * n, static_cast<int>(r1 - r0), n);
  });
}

void Attention(const kernels::KernelTable& kt, ThreadPool& pool, const float* qkv,
               const int* offsets, int num_seqs, int num_heads, int head_dim, float* out) {
  const int h = num_heads * head_dim;
  const int ld = 3 * h;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  pool.ParallelFor(num_seqs * num_heads, [&](int task) {
    const int s = task / num_heads, head = task % num_heads;
    const int begin = offsets[s], len = offsets[s + 1] - offsets[s];
    thread_local std::vector<float> scratch;
    const size_t need = static_cast<size_t>(head_dim + 10) * (len + 16);
    if (scratch.size() < need) scratch.resize(need);
    const float* q = qkv + static_cast<long>(begin) * ld + head * head_dim;
    kt.attention_head_f32(q, q + h, q + 2 * h, ld, len, head_dim, scale,
                          out + static_cast<long>(begin) * h + head * head_dim, h, scratch.data());
  });
}

void L2Normalize(float* v, int dim) {
  double sq = 0;
  for (int j = 0; j < dim; ++j) sq += static_cast<double>(v[j]) * v[j];
  const float inv = static_cast<float>(1.0 / std::max(std::sqrt(sq), 1e-12));
  for (int j = 0; j < dim; ++j) v[j] *= inv;
}

float Dot(const float* a, const float* b, int dim) {
  double dot = 0;
  for (int j = 0; j < dim; ++j) dot += static_cast<double>(a[j]) * b[j];
  return static_cast<float>(dot);
}

}  // namespace encserve::ops
