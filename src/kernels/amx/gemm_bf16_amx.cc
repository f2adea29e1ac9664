// AMX bf16 GEMM: y[m, n0:n1] fp32 = epi(xb[m, k] · Wᵀ + b) with tdpbf16ps (bf16 × bf16 products,
// fp32 accumulation) from xb (convert_bf16 output, row stride ldxb % 32 == 0, zero past k) and
// PackedBf16Pairs (nr = 32, kp % 16 == 0: the amx table's bf16_k_align = 32). The kernel reads
// whole 16-row A tiles, i.e. up to 15 rows of xb past m (KernelTable::bf16_mr documents the
// allocation rule); those rows only feed output rows that are never stored.
// Compiled with -mamx-tile/-mamx-bf16 and the AVX-512 flags; reached only through the amx kernel
// table after the CPU check (DetectCpu().amx_bf16).
//
// Block: 32 rows × 32 columns = 4 fp32 C tiles (tmm0-3); per 32 k two A tiles (tmm4-5: 16 rows ×
// 32 bf16) and two B tiles (tmm6-7: 16 pair rows of the panel, columns 0-15 at byte 0 and 16-31
// at byte 64 of each 128-byte pair row), 4 tdpbf16ps. The C tiles go through a 4 KiB L1 buffer
// into the AVX-512 epilogue (+ bias, GELU), software pipelined as the int8 kernel.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/amx/amx_tiles.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"
#include "kernels/quant_params.h"
#include "kernels/simd/vec_avx512.h"

namespace encserve::kernels {
namespace {

#include "kernels/simd/quant_avx512.inc"

constexpr int kNr = 32;     // panel width: two B tiles
constexpr int kTileK = 32;  // bf16 values of k per tile row (64 bytes)
constexpr int kPairRowBytes = kNr * 2 * 2;

// C tiles (tmm0-3) = Σ_k x · w over kt tile steps for MT·16 rows of xb (stride ldx bytes) × 32
// columns of the panel wp.
template <int MT>
inline void ComputeBlockBf16(const uint16_t* x, long ldx_bytes, const uint16_t* wp, int kt) {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (MT == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
  const char* xc = reinterpret_cast<const char*>(x);
  const char* wc = reinterpret_cast<const char*>(wp);
  for (int t = 0; t < kt; ++t) {
    const char* b = wc + static_cast<long>(t) * 16 * kPairRowBytes;
    _tile_loadd(4, xc + t * kTileK * 2, ldx_bytes);
    _tile_loadd(6, b, kPairRowBytes);
    _tile_loadd(7, b + 64, kPairRowBytes);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    if constexpr (MT == 2) {
      _tile_loadd(5, xc + 16 * ldx_bytes + t * kTileK * 2, ldx_bytes);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
  }
}

// y[r, 0:cols] = epi(acc[r] + bias) for r < rows.
inline void EpilogueF32(const float* acc, int rows, const float* bias, float* y, int ldy, int cols,
                        Epilogue ep) {
  const f512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
  for (int r = 0; r < rows; ++r) {
    Store2(y + static_cast<long>(r) * ldy, _mm512_add_ps(_mm512_load_ps(acc + r * kNr), b0),
           _mm512_add_ps(_mm512_load_ps(acc + r * kNr + 16), b1), cols, ep);
  }
}

constexpr int kL2WeightBytes = 768 * 1024;

}  // namespace

void GemmBf16Amx(const uint16_t* xb, int ldxb, int m, const PackedBf16Pairs& w, float* y, int ldy,
                 int n0, int n1, Epilogue ep) {
  amx::ConfigureTiles();
  const int kt = w.k_pairs() / 16;
  const long ldx_bytes = static_cast<long>(ldxb) * 2;
  const int p0 = n0 / kNr, p1 = (n1 + kNr - 1) / kNr;
  const int panel_bytes = w.k_pairs() * kPairRowBytes;
  const int block = kL2WeightBytes / panel_bytes > 1 ? kL2WeightBytes / panel_bytes : 1;
  amx::RunBlocks<float>(
      m, n1, p0, p1, block,
      [&](int i, int p, bool two) {
        const uint16_t* xr = xb + static_cast<long>(i) * ldxb;
        if (two) {
          ComputeBlockBf16<2>(xr, ldx_bytes, w.panel(p), kt);
        } else {
          ComputeBlockBf16<1>(xr, ldx_bytes, w.panel(p), kt);
        }
      },
      [&](const float* c, int i, int off, int rows, int cols) {
        EpilogueF32(c, rows, w.bias.data() + off, y + static_cast<long>(i) * ldy + off, ldy, cols,
                    ep);
      });
}

}  // namespace encserve::kernels
