#include "model/linear.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/op_profile.h"
#include "kernels/hadamard_generic.h"
#include "model/quantize_int4.h"

namespace encserve {

using kernels::Precision;

const char* Int4RecipeName(Int4Recipe r) {
  switch (r) {
    case Int4Recipe::kRtn:
      return "rtn";
    case Int4Recipe::kRotate:
      return "rotate";
    case Int4Recipe::kGptq:
      return "gptq";
  }
  return "?";
}

StatusOr<Int4Recipe> ParseInt4Recipe(const std::string& name) {
  for (Int4Recipe r : {Int4Recipe::kRtn, Int4Recipe::kRotate, Int4Recipe::kGptq}) {
    if (name == Int4RecipeName(r)) return r;
  }
  return InvalidArgument("int4 recipe must be rtn, rotate or gptq, got \"" + name + "\"");
}

namespace {

// int4, recipes other than kRtn: rotates w (and the Hessian) by blockdiag(H64) / 64, chooses the
// grids (GPTQ with a Hessian), packs.
Status PackInt4Recipe(const float* w, const float* bias, int n, int k,
                      const PrecisionOptions& options, const kernels::KernelTable& kt,
                      const std::vector<double>* hessian, ThreadPool* pool, LinearWeights* lw) {
  std::vector<float> rotated;
  if (kt.hadamard64 != nullptr && k % 64 == 0) {
    rotated.resize(static_cast<size_t>(n) * k);
    kt.hadamard64(w, nullptr, rotated.data(), n, k);
    for (float& v : rotated) v *= 1.0f / 64.0f;  // exact: a power of two
    w = rotated.data();
    lw->rotated = true;
  }
  std::vector<double> h;
  const bool gptq = options.int4_recipe == Int4Recipe::kGptq && hessian != nullptr;
  if (gptq) {
    // The GEMM sees x' = x · diag(smooth) · B (B = blockdiag(H64) when rotated), so its Hessian
    // is Bᵀ · diag(smooth) · XᵀX · diag(smooth) · B (B symmetric).
    h = *hessian;
    for (int a = 0; a < k; ++a) {
      for (int b = 0; b < k; ++b) {
        const double sa = lw->smooth.empty() ? 1.0 : lw->smooth[a];
        const double sb = lw->smooth.empty() ? 1.0 : lw->smooth[b];
        h[static_cast<size_t>(a) * k + b] *= sa * sb;
      }
    }
    if (lw->rotated) {
      // (D H D) B, whose transpose is B (D H D); the portable transform, in double
      kernels::generic::Hadamard64Rows<double>(h.data(), nullptr, h.data(), k, k);
      for (int a = 0; a < k; ++a) {
        for (int b = 0; b < a; ++b)
          std::swap(h[static_cast<size_t>(a) * k + b], h[static_cast<size_t>(b) * k + a]);
      }
      kernels::generic::Hadamard64Rows<double>(h.data(), nullptr, h.data(), k, k);
    }
  }
  ThreadPool local(1);
  ASSIGN_OR_RETURN(Int4Quantized q, QuantizeInt4(w, n, k, options.group_size, /*mse_clip=*/true,
                                                 gptq ? &h : nullptr, pool ? *pool : local));
  lw->quant = &kernels::QuantKernelsFor(kt.isa);
  ASSIGN_OR_RETURN(lw->s4, kernels::PackS4(q.w.data(), bias, n, k, options.group_size, *lw->quant,
                                           q.grid.data()));
  return Status::Ok();
}

}  // namespace

StatusOr<LinearWeights> MakeLinear(const float* w, const float* bias, int n, int k,
                                   const PrecisionOptions& options, const kernels::KernelTable& kt,
                                   const float* act_absmax, const std::vector<double>* hessian,
                                   ThreadPool* pool) {
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
      if (kernels::UseBf16Dot(kt, options.bf16_dot ? &*options.bf16_dot : nullptr)) {
        lw.bf16 = kernels::PackBf16Pairs(w, bias, n, k, kt.gemm_nr, kt.bf16_k_align);
      } else {
        lw.half = kernels::PackHalf(w, bias, n, k, kt.gemm_nr, kernels::HalfFormat::kBF16);
      }
      return lw;
    case Precision::kInt8:
    case Precision::kInt4:
      break;
  }
  // Quantised: optional smoothing, then pack.
  std::vector<float> smoothed;
  if (act_absmax != nullptr) {
    std::vector<float> wmax(k, 0.0f);
    for (int j = 0; j < n; ++j) {
      for (int c = 0; c < k; ++c)
        wmax[c] = std::max(wmax[c], std::fabs(w[static_cast<size_t>(j) * k + c]));
    }
    lw.smooth.resize(k);
    smoothed.assign(w, w + static_cast<size_t>(n) * k);
    for (int c = 0; c < k; ++c) {
      float s = 1.0f;
      if (act_absmax[c] > 0 && wmax[c] > 0) {
        s = std::clamp(std::sqrt(act_absmax[c] / wmax[c]), 1e-3f, 1e3f);
      }
      lw.smooth[c] = 1.0f / s;
      for (int j = 0; j < n; ++j) smoothed[static_cast<size_t>(j) * k + c] *= s;
    }
    w = smoothed.data();
  }
  switch (options.precision) {
    case Precision::kInt8: {
      lw.quant = &kernels::QuantKernelsFor(kt.isa);
      ASSIGN_OR_RETURN(lw.s8, kernels::PackS8(w, bias, n, k, *lw.quant));
      return lw;
    }
    case Precision::kInt4: {
      if (options.int4_recipe != Int4Recipe::kRtn) {
        RETURN_IF_ERROR(PackInt4Recipe(w, bias, n, k, options, kt, hessian, pool, &lw));
        return lw;
      }
      lw.quant = &kernels::QuantKernelsFor(kt.isa);
      ASSIGN_OR_RETURN(lw.s4, kernels::PackS4(w, bias, n, k, options.group_size, *lw.quant));
      return lw;
    }
    default:
      break;
  }
  return Internal("unknown precision");
}

namespace ops {
namespace {

// x [m, k] (times col_scale [k] per column when given) rounded to bf16 by kt.convert_bf16 into
// a thread-local buffer of rows of ldxb values; the GEMM kernels may read up to row_align − 1
// rows past m (whole AMX tiles), so those rows exist. The buffers only grow: shrinking and
// re-growing a vector zero-fills megabytes per GEMM.
const uint16_t* ToBf16Rows(const kernels::KernelTable& kt, const float* x, int m, int k,
                           const float* col_scale, int ldxb, int row_align) {
  const profile::Scope scope("convert to bf16");
  if (col_scale != nullptr) {
    thread_local std::vector<float> scaled;
    if (scaled.size() < static_cast<size_t>(m) * k) scaled.resize(static_cast<size_t>(m) * k);
    for (long i = 0; i < m; ++i) {
      for (int c = 0; c < k; ++c) scaled[i * k + c] = x[i * k + c] * col_scale[c];
    }
    x = scaled.data();
  }
  thread_local std::vector<uint16_t> xb;
  const size_t need = static_cast<size_t>(m + row_align - 1) * ldxb;
  if (xb.size() < need) xb.resize(need);
  kt.convert_bf16(x, m, k, xb.data(), ldxb);
  return xb.data();
}

// int4 GEMMs with at least this many rows take the AMX-BF16 path (QuantKernelTable::
// gemm_s4_bf16) where it exists: decoding every panel to bf16 costs about as much as 32–40 rows
// of the VNNI kernel's work (measured: seq 32 b1 1.21 vs 1.17 ms, seq 64 b1 1.97 vs 2.24 ms).
constexpr int kS4Bf16MinRows = 48;

}  // namespace

LinearColumns PrepareLinear(const kernels::KernelTable& kt, ThreadPool& pool, const float* x, int m,
                            const LinearWeights& w, float* y, kernels::Epilogue ep) {
  const int n = w.n, k = w.k;
  LinearColumns g;
  g.m = m;
  g.n = n;
  g.k = k;
  g.nr = kt.gemm_nr;
  g.mr = kt.gemm_mr;
  switch (w.precision) {
    case Precision::kF32:
      g.run = [&kt, x, k, n, &w, y, ep](int r0, int rows, int n0, int n1) {
        kt.gemm_f32(x + static_cast<long>(r0) * k, k, rows, w.f32, y + static_cast<long>(r0) * n, n,
                    n0, n1, ep);
      };
      return g;
    case Precision::kF16:
    case Precision::kBF16:
      if (!w.uses_bf16_dot()) {
        g.run = [&kt, x, k, n, &w, y, ep](int r0, int rows, int n0, int n1) {
          kt.gemm_half(x + static_cast<long>(r0) * k, k, rows, w.half,
                       y + static_cast<long>(r0) * n, n, n0, n1, ep);
        };
      } else {
        // Rows as long as the packed weights' (padded) k.
        const int ldxb = w.bf16.k_pairs() * 2;
        const uint16_t* xbp = ToBf16Rows(kt, x, m, k, nullptr, ldxb, kt.bf16_mr);
        g.mr = kt.bf16_mr;
        g.run = [&kt, xbp, ldxb, n, &w, y, ep](int r0, int rows, int n0, int n1) {
          kt.gemm_bf16_dot(xbp + static_cast<long>(r0) * ldxb, ldxb, rows, w.bf16,
                           y + static_cast<long>(r0) * n, n, n0, n1, ep);
        };
      }
      return g;
    case Precision::kInt8:
    case Precision::kInt4: {
      const kernels::QuantKernelTable& qt = *w.quant;
      const float* smooth = w.smooth.empty() ? nullptr : w.smooth.data();
      // Row ranges over the pool when there is enough work (as the quantisation below).
      const int parts = static_cast<long>(m) * k < 16 * 1024 ? 1 : std::min(pool.num_threads(), m);
      if (w.rotated) {
        // x · diag(smooth) · blockdiag(H64) into a buffer that then stands in for x.
        thread_local std::vector<float> rotated;
        if (rotated.size() < static_cast<size_t>(m) * k) rotated.resize(static_cast<size_t>(m) * k);
        float* xr = rotated.data();  // a plain pointer: the lambda may run on another thread
        const profile::Scope scope("hadamard rotate");
        pool.ParallelFor(parts, [&](int t) {
          const int r0 = m * t / parts, r1 = m * (t + 1) / parts;
          kt.hadamard64(x + static_cast<long>(r0) * k, smooth, xr + static_cast<long>(r0) * k,
                        r1 - r0, k);
        });
        x = xr;
        smooth = nullptr;
      }
      // Column partitions only (mr = m): the prepared rows are shared whole.
      g.nr = qt.nr;
      g.mr = m;
      if (w.precision == Precision::kInt4 && qt.gemm_s4_bf16 != nullptr &&
          kt.convert_bf16 != nullptr && k % 32 == 0 && m >= kS4Bf16MinRows) {
        // AMX-BF16: x (smoothed) rounded to bf16 once, shared by the column partitions; the
        // kernel decodes the int4 panels to bf16 and reads whole 32-row tile pairs.
        const uint16_t* xbp = ToBf16Rows(kt, x, m, k, smooth, k, /*row_align=*/32);
        g.run = [&qt, xbp, k, m, &w, y, n, ep](int, int, int n0, int n1) {
          qt.gemm_s4_bf16(xbp, k, m, w.s4, y, n, n0, n1, ep);
        };
        return g;
      }
      // Activations are quantised once per GEMM and shared by the column partitions.
      thread_local kernels::QuantizedRows xq_storage;
      kernels::PrepareQuantizedRows(qt, m, k, &xq_storage);
      // Row ranges over the pool (a serial pass here left the other threads idle for ~10 % of
      // int8 time). Smoothing (x · 1/s per input channel) is fused into the quantisation pass.
      kernels::QuantizedRows* xq_out = &xq_storage;
      const profile::Scope scope("quantize activations");
      if (parts == 1) {
        qt.quantize_row_range(x, k, smooth, 0, m, xq_out);
      } else {
        pool.ParallelFor(parts, [&](int t) {
          qt.quantize_row_range(x, k, smooth, m * t / parts, m * (t + 1) / parts, xq_out);
        });
      }
      // A plain pointer: inside the lambda, which may run on a worker thread, the name of a
      // thread_local would denote that worker's own (empty) instance.
      const kernels::QuantizedRows* xq = xq_out;
      if (w.precision == Precision::kInt8) {
        g.run = [&qt, xq, &w, y, n, ep](int, int, int n0, int n1) {
          qt.gemm_s8(*xq, w.s8, y, n, n0, n1, ep);
        };
      } else {
        g.run = [&qt, xq, &w, y, n, ep](int, int, int n0, int n1) {
          qt.gemm_s4(*xq, w.s4, y, n, n0, n1, ep);
        };
      }
      return g;
    }
  }
  return g;
}

// Column panels when there are enough of them for the threads (or too few rows), else row
// blocks of mr; mr = m forces column splits.
void RunLinear(ThreadPool& pool, const LinearColumns& g) {
  const int threads = pool.num_threads(), m = g.m, n = g.n, nr = g.nr, mr = g.mr;
  const int panels = (n + nr - 1) / nr;
  if (threads == 1 || !g.parallel()) {
    g.run(0, m, 0, n);
    return;
  }
  if (panels >= 2 * threads || m < 2 * mr * threads) {
    const int tasks = std::min(panels, threads);
    pool.ParallelFor(tasks, [&](int t) {
      const int p0 = panels * t / tasks, p1 = panels * (t + 1) / tasks;
      g.run(0, m, p0 * nr, std::min(n, p1 * nr));
    });
    return;
  }
  const int tiles = (m + mr - 1) / mr;
  const int tasks = std::min(tiles, threads);
  pool.ParallelFor(tasks, [&](int t) {
    const int r0 = tiles * t / tasks * mr;
    const int r1 = std::min(m, tiles * (t + 1) / tasks * mr);
    g.run(r0, r1 - r0, 0, n);
  });
}

void Linear(const kernels::KernelTable& kt, ThreadPool& pool, const float* x, int m,
            const LinearWeights& w, float* y, kernels::Epilogue ep) {
  const profile::Scope scope(ep == kernels::Epilogue::kBiasGelu ? "gemm+gelu" : "gemm", w.n, w.k,
                             2.0 * m * w.n * w.k);
  RunLinear(pool, PrepareLinear(kt, pool, x, m, w, y, ep));
}

}  // namespace ops
}  // namespace encserve
