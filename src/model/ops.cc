#include "model/ops.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "core/op_profile.h"
#include "model/linear.h"

namespace encserve::ops {

void LayerNorm(const kernels::KernelTable& kt, ThreadPool& pool, const float* x,
               const float* residual, const float* gamma, const float* beta, float eps, float* out,
               int m, int n) {
  const profile::Scope scope("layernorm");
  const int tasks = std::min(pool.num_threads(), std::max(1, m / 16));
  pool.ParallelFor(tasks, [&](int t) {
    const long r0 = static_cast<long>(m) * t / tasks, r1 = static_cast<long>(m) * (t + 1) / tasks;
    kt.layernorm_f32(x + r0 * n, residual ? residual + r0 * n : nullptr, gamma, beta, eps,
                     out + r0 * n, static_cast<int>(r1 - r0), n);
  });
}

namespace {

// Attention of heads [h0, h1) of every sequence (qkv head-interleaved, see ops.h).
void AttentionHeads(const kernels::KernelTable& kt, const float* qkv, const int* offsets,
                    int num_seqs, int num_heads, int head_dim, int h0, int h1, float* out) {
  const int h = num_heads * head_dim, ld = 3 * h;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  thread_local std::vector<float> scratch;
  for (int s = 0; s < num_seqs; ++s) {
    const int begin = offsets[s], len = offsets[s + 1] - offsets[s];
    const size_t need = static_cast<size_t>(3 * head_dim + 10) * (len + 16);
    if (scratch.size() < need) scratch.resize(need);
    for (int head = h0; head < h1; ++head) {
      const float* q = qkv + static_cast<long>(begin) * ld + head * 3 * head_dim;
      kt.attention_head_f32(q, q + head_dim, q + 2 * head_dim, ld, len, head_dim, scale,
                            out + static_cast<long>(begin) * h + head * head_dim, h,
                            scratch.data());
    }
  }
}

}  // namespace

namespace {
// 2 × multiply-adds of attention (Q·Kᵀ and P·V, L² · d each per sequence and head).
double AttentionFlops(const int* offsets, int num_seqs, int num_heads, int head_dim) {
  double f = 0;
  for (int s = 0; s < num_seqs; ++s) {
    const double len = offsets[s + 1] - offsets[s];
    f += 4.0 * len * len * head_dim * num_heads;
  }
  return f;
}
}  // namespace

void Attention(const kernels::KernelTable& kt, ThreadPool& pool, const float* qkv,
               const int* offsets, int num_seqs, int num_heads, int head_dim, float* out) {
  const profile::Scope scope(
      "attention", 0, 0,
      profile::Enabled() ? AttentionFlops(offsets, num_seqs, num_heads, head_dim) : 0);
  pool.ParallelFor(num_seqs * num_heads, [&](int task) {
    const int s = task / num_heads, head = task % num_heads;
    AttentionHeads(kt, qkv, offsets + s, 1, num_heads, head_dim, head, head + 1, out);
  });
}

namespace {

// Op profiling of QkvAttention's fused region (below): the region's wall time shared out between
// "gemm" and "attention" in the ratio of the threads' own times for their two parts.
void AddFusedProfile(double wall_ns, const std::vector<double>& gemm_ns,
                     const std::vector<double>& attn_ns, const LinearWeights& w, int m,
                     const int* offsets, int num_seqs, int num_heads, int head_dim) {
  double sg = 0, sa = 0;
  for (size_t t = 0; t < gemm_ns.size(); ++t) {
    sg += gemm_ns[t];
    sa += attn_ns[t];
  }
  const double share = sg + sa > 0 ? sg / (sg + sa) : 1.0;
  profile::Add({"gemm", w.n, w.k}, wall_ns * share, 2.0 * m * w.n * w.k);
  profile::Add({"attention"}, wall_ns * (1 - share),
               AttentionFlops(offsets, num_seqs, num_heads, head_dim));
}

}  // namespace

// Rows of q, k, v (1,152 floats each for MiniLM) a single-threaded QkvAttention computes before
// their attention: 256 rows = 1.2 MB, within a core's L2 with the GEMM's weights (0.4 MB int8).
constexpr int kQkvChunkRows = 256;

void QkvAttention(const kernels::KernelTable& kt, ThreadPool& pool, const float* x,
                  const LinearWeights& qkv_weights, float* qkv, const int* offsets, int num_seqs,
                  int num_heads, int head_dim, float* out) {
  const int m = offsets[num_seqs], per_head = 3 * head_dim;
  const int threads = pool.num_threads();
  if (threads == 1 && m > kQkvChunkRows) {
    // One thread and many rows (split batches: each part's thread runs the model alone): the
    // projection, then attention, chunk by chunk of whole sequences, so that a chunk's q, k, v
    // rows are still in L2 when its attention reads them (a whole part's, e.g. 2,048 rows ×
    // 4.5 KB, are not). Rows are computed independently, so the results are the same.
    for (int s0 = 0; s0 < num_seqs;) {
      int s1 = s0 + 1;
      while (s1 < num_seqs && offsets[s1 + 1] - offsets[s0] <= kQkvChunkRows) ++s1;
      const int r0 = offsets[s0], rows = offsets[s1] - r0;
      Linear(kt, pool, x + static_cast<long>(r0) * qkv_weights.k, rows, qkv_weights,
             qkv + static_cast<long>(r0) * qkv_weights.n);
      Attention(kt, pool, qkv, offsets + s0, s1 - s0, num_heads, head_dim, out);
      s0 = s1;
    }
    return;
  }
  const LinearColumns g = PrepareLinear(kt, pool, x, m, qkv_weights, qkv);
  const double gemm_flops = 2.0 * m * qkv_weights.n * qkv_weights.k;
  // Fused only when every thread gets the same number of heads: otherwise the slowest thread
  // (one head more) or idle threads (more threads than heads) would cost more than the barrier
  // saves, and the separate ops balance the work by panels and (sequence, head) pairs.
  if (threads < 2 || num_heads % threads != 0 || per_head % g.nr != 0 || !g.parallel()) {
    {
      const profile::Scope scope("gemm", qkv_weights.n, qkv_weights.k, gemm_flops);
      RunLinear(pool, g);
    }
    Attention(kt, pool, qkv, offsets, num_seqs, num_heads, head_dim, out);
    return;
  }
  // Each thread: the projection columns of its heads, then those heads' attention. The heads'
  // query, key and value columns are computed on (and stay in the cache of) the thread that
  // reads them, with no barrier between the GEMM and the attention. With op profiling on, each
  // thread also times its two parts (AddFusedProfile).
  using Clock = std::chrono::steady_clock;
  const bool timed = profile::Enabled();
  std::vector<double> gemm_ns(timed ? threads : 0), attn_ns(timed ? threads : 0);
  const auto t0 = timed ? Clock::now() : Clock::time_point{};
  pool.ParallelFor(threads, [&](int t) {
    const int h0 = num_heads * t / threads, h1 = num_heads * (t + 1) / threads;
    const auto a = timed ? Clock::now() : t0;
    g.run(0, m, h0 * per_head, h1 * per_head);
    const auto b = timed ? Clock::now() : t0;
    AttentionHeads(kt, qkv, offsets, num_seqs, num_heads, head_dim, h0, h1, out);
    if (timed) {
      gemm_ns[t] = std::chrono::duration<double, std::nano>(b - a).count();
      attn_ns[t] = std::chrono::duration<double, std::nano>(Clock::now() - b).count();
    }
  });
  if (timed) {
    AddFusedProfile(std::chrono::duration<double, std::nano>(Clock::now() - t0).count(), gemm_ns,
                    attn_ns, qkv_weights, m, offsets, num_seqs, num_heads, head_dim);
  }
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
