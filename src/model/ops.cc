#include "model/ops.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace encserve::ops {

void Linear(const kernels::KernelTable& kt, ThreadPool& pool, const float* x, int m,
            const kernels::PackedF32& w, float* y, kernels::Epilogue ep) {
  const int threads = pool.num_threads();
  const int panels = w.num_panels();
  if (threads == 1 || static_cast<long>(m) * w.n * w.k < 64 * 1024) {
    kt.gemm_f32(x, w.k, m, w, y, w.n, 0, w.n, ep);
    return;
  }
  if (panels >= 2 * threads || m < 2 * kt.gemm_mr * threads) {
    // Split columns: each task a contiguous run of panels.
    const int tasks = std::min(panels, threads);
    pool.ParallelFor(tasks, [&](int t) {
      const int p0 = panels * t / tasks, p1 = panels * (t + 1) / tasks;
      kt.gemm_f32(x, w.k, m, w, y, w.n, p0 * w.nr, std::min(w.n, p1 * w.nr), ep);
    });
    return;
  }
  // Split rows in multiples of the micro-tile height.
  const int tiles = (m + kt.gemm_mr - 1) / kt.gemm_mr;
  const int tasks = std::min(tiles, threads);
  pool.ParallelFor(tasks, [&](int t) {
    const int r0 = tiles * t / tasks * kt.gemm_mr;
    const int r1 = std::min(m, tiles * (t + 1) / tasks * kt.gemm_mr);
    kt.gemm_f32(x + static_cast<long>(r0) * w.k, w.k, r1 - r0, w, y + static_cast<long>(r0) * w.n,
                w.n, 0, w.n, ep);
  });
}

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
    const size_t need = static_cast<size_t>(head_dim + 1) * (len + 16);
    if (scratch.size() < need) scratch.resize(need);
    const float* q = qkv + static_cast<long>(begin) * ld + head * head_dim;
    kt.attention_head_f32(q, q + h, q + 2 * h, ld, len, head_dim, scale,
                          out + static_cast<long>(begin) * h + head * head_dim, h, scratch.data());
  });
}

}  // namespace encserve::ops
