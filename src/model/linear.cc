#include "model/linear.h"

#include <algorithm>
#include <vector>

namespace encserve {

using kernels::Precision;

StatusOr<LinearWeights> MakeLinear(const float* w, const float* bias, int n, int k,
                                   const PrecisionOptions& options,
                                   const kernels::KernelTable& kt) {
  LinearWeights lw;
  lw.precision = options.precision;
  lw.n = n;
  lw.k = k;
  switch (options.precision) {
    case Precision::kF32:
      lw.f32 = kernels::PackF32(w, bias, n, k, kt.gemm_nr);
      return lw;
    case Precision::kF16:
      lw.half = kernels::PackHalf(w, bias, n, k, kt.gemm_nr, kernels::HalfFormat::kF16);
      return lw;
    case Precision::kBF16:
      if (kt.gemm_bf16_dot != nullptr) {
        lw.bf16 = kernels::PackBf16Pairs(w, bias, n, k, kt.gemm_nr);
      } else {
        lw.half = kernels::PackHalf(w, bias, n, k, kt.gemm_nr, kernels::HalfFormat::kBF16);
      }
      return lw;
    case Precision::kInt8:
    case Precision::kInt4:
      break;
  }
  return Unimplemented(std::string("precision ") + kernels::PrecisionName(options.precision) +
                       " is not available yet");
}

namespace ops {
namespace {

// Splits columns (panels of nr) or rows (multiples of mr) over the pool and calls
// gemm(row0, rows, n0, n1) for each part.
template <typename Gemm>
void Partition(ThreadPool& pool, int m, int n, int k, int nr, int mr, Gemm&& gemm) {
  const int threads = pool.num_threads();
  const int panels = (n + nr - 1) / nr;
  if (threads == 1 || static_cast<long>(m) * n * k < 64 * 1024) {
    gemm(0, m, 0, n);
    return;
  }
  if (panels >= 2 * threads || m < 2 * mr * threads) {
    const int tasks = std::min(panels, threads);
    pool.ParallelFor(tasks, [&](int t) {
      const int p0 = panels * t / tasks, p1 = panels * (t + 1) / tasks;
      gemm(0, m, p0 * nr, std::min(n, p1 * nr));
    });
    return;
  }
  const int tiles = (m + mr - 1) / mr;
  const int tasks = std::min(tiles, threads);
  pool.ParallelFor(tasks, [&](int t) {
    const int r0 = tiles * t / tasks * mr;
    const int r1 = std::min(m, tiles * (t + 1) / tasks * mr);
    gemm(r0, r1 - r0, 0, n);
  });
}

}  // namespace

void Linear(const kernels::KernelTable& kt, ThreadPool& pool, const float* x, int m,
            const LinearWeights& w, float* y, kernels::Epilogue ep) {
  const int n = w.n, k = w.k;
  auto row = [&](const float* base, int r0) { return base + static_cast<long>(r0) * k; };
  auto out = [&](int r0) { return y + static_cast<long>(r0) * n; };
  switch (w.precision) {
    case Precision::kF32:
      Partition(pool, m, n, k, kt.gemm_nr, kt.gemm_mr, [&](int r0, int rows, int n0, int n1) {
        kt.gemm_f32(row(x, r0), k, rows, w.f32, out(r0), n, n0, n1, ep);
      });
      return;
    case Precision::kF16:
    case Precision::kBF16:
      if (!w.uses_bf16_dot()) {
        Partition(pool, m, n, k, kt.gemm_nr, kt.gemm_mr, [&](int r0, int rows, int n0, int n1) {
          kt.gemm_half(row(x, r0), k, rows, w.half, out(r0), n, n0, n1, ep);
        });
        return;
      } else {
        const int ldxb = w.bf16.k_pairs() * 2;
        thread_local std::vector<uint16_t> xb;
        xb.resize(static_cast<size_t>(m) * ldxb);
        kt.convert_bf16(x, m, k, xb.data(), ldxb);
        const uint16_t* xbp = xb.data();
        Partition(pool, m, n, k, kt.gemm_nr, kt.gemm_mr, [&](int r0, int rows, int n0, int n1) {
          kt.gemm_bf16_dot(xbp + static_cast<long>(r0) * ldxb, ldxb, rows, w.bf16, out(r0), n, n0,
                           n1, ep);
        });
        return;
      }
    case Precision::kInt8:
    case Precision::kInt4:
      break;
  }
}

}  // namespace ops
}  // namespace encserve
