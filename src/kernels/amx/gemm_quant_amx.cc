// AMX int8 GEMM: y[m, n0:n1] fp32 = epi(a_i · s_j · (Σ_k xu[i,k] · q[j,k] − 128 · Σ_k q[j,k]) +
// b_j) from xu [m, kp] u8 (QuantizedRows, kp % 64 == 0) and PackedS8 (nr = 32, kp % 64 == 0).
// Compiled with -mamx-tile/-mamx-int8 and the AVX-512 flags; reached only through
// QuantKernelsExact()/QuantKernelsFor() after the CPU check (DetectCpu().amx).
//
// Signedness: tdpbusd multiplies u8 (A) by s8 (B), so the activations keep the u8 form xq + 128
// every quantised table uses (one shared QuantizedRows format) and the u8 shift is undone
// exactly as in the VNNI kernels: Σ xu·q = Σ xq·q + 128·Σ q, and the epilogue subtracts the
// packer's wsum128 = 128·Σ q per column before converting to float. Padding: past k both sides
// are zero (xu = 128 against q = 0 contributes 0 and is not in wsum128); rows past m are 128.
//
// Block: 32 rows × 32 columns = 4 int32 C tiles (tmm0-3), per 64 k two A tiles (tmm4-5, 16 rows
// × 64 u8 each) and two B tiles (tmm6-7: PackedS8 blocks b .. b+15, columns 0-15 at byte 0 and
// 16-31 at byte 64 of each 128-byte block row), 4 tdpbusd. A block of ≤ 16 rows uses one A tile.
// The C tiles go through a 4 KiB L1 buffer into the AVX-512 epilogue.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/amx/amx_tiles.h"
#include "kernels/quant.h"
#include "kernels/quant_params.h"

namespace encserve::kernels {
namespace {

#include "kernels/simd/quant_avx512.inc"

constexpr int kNr = 32;     // panel width: two B tiles
constexpr int kMr = 32;     // rows per block: two A tiles
constexpr int kTileK = 64;  // bytes of k per tile row
constexpr int kBlockBytes = kNr * 4;

// C tiles (tmm0-3) = Σ_k xu · q over kt tile steps for MT·16 rows of x (stride ldx) × 32 columns.
template <int MT>
inline void ComputeBlockS8(const uint8_t* x, long ldx, const int8_t* wp, int kt) {
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (MT == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int t = 0; t < kt; ++t) {
    const int8_t* b = wp + static_cast<long>(t) * 16 * kBlockBytes;
    _tile_loadd(4, x + t * kTileK, ldx);
    _tile_loadd(6, b, kBlockBytes);
    _tile_loadd(7, b + 64, kBlockBytes);
    _tile_dpbusd(0, 4, 6);
    _tile_dpbusd(1, 4, 7);
    if constexpr (MT == 2) {
      _tile_loadd(5, x + 16 * ldx + t * kTileK, ldx);
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    }
  }
}

// acc[MT·16, 32] = C tiles.
template <int MT>
inline void StoreBlockS8(int32_t* acc) {
  _tile_stored(0, acc, kNr * 4);
  _tile_stored(1, acc + 16, kNr * 4);
  if constexpr (MT == 2) {
    _tile_stored(2, acc + 16 * kNr, kNr * 4);
    _tile_stored(3, acc + 16 * kNr + 16, kNr * 4);
  }
}

// y[r, 0:cols] = epi(a_r · s · (acc[r] − wsum128) + bias) for r < rows.
inline void EpilogueS8(const int32_t* acc, int rows, const float* xs, const float* xc,
                       const int32_t* wsum, const float* ws, const float* cs, const float* bias,
                       float* y, int ldy, int cols, Epilogue ep) {
  const i512 c0 = _mm512_loadu_si512(wsum), c1 = _mm512_loadu_si512(wsum + 16);
  const f512 s0 = _mm512_loadu_ps(ws), s1 = _mm512_loadu_ps(ws + 16);
  const f512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
  const f512 cs0 = _mm512_loadu_ps(cs), cs1 = _mm512_loadu_ps(cs + 16);
  for (int r = 0; r < rows; ++r) {
    const f512 a = _mm512_set1_ps(xs[r]), c = _mm512_set1_ps(xc[r]);
    const f512 v0 = ToFloat(_mm512_sub_epi32(_mm512_load_si512(acc + r * kNr), c0));
    const f512 v1 = ToFloat(_mm512_sub_epi32(_mm512_load_si512(acc + r * kNr + 16), c1));
    Store2(y + static_cast<long>(r) * ldy,
           _mm512_fmadd_ps(v0, _mm512_mul_ps(a, s0), _mm512_fmadd_ps(c, cs0, b0)),
           _mm512_fmadd_ps(v1, _mm512_mul_ps(a, s1), _mm512_fmadd_ps(c, cs1, b1)), cols, ep);
  }
}

// Loop order as the VNNI kernel: blocks of panels whose weights fit in L2, then 32-row blocks
// (their activations stay in L1 for K = 384), then the panels of the block. Software pipelined:
// the tdpbusd of block b are issued before the AVX-512 epilogue of block b − 1 (from the other
// half of a double buffer), so the tile unit and the vector units overlap.
constexpr int kL2WeightBytes = 768 * 1024;

void GemmS8Amx(const QuantizedRows& x, const PackedS8& w, float* y, int ldy, int n0, int n1,
               Epilogue ep) {
  amx::ConfigureTiles();
  const int kt = w.kp / kTileK;
  const long ldx = x.kp;
  const int p0 = n0 / kNr, p1 = (n1 + kNr - 1) / kNr;
  const int block = kL2WeightBytes / (w.kp * kNr) > 1 ? kL2WeightBytes / (w.kp * kNr) : 1;
  alignas(64) int32_t acc[2][kMr * kNr];
  struct Pending {
    int i = -1, off = 0, rows = 0, cols = 0;
  } prev;
  auto finish = [&](const int32_t* a, const Pending& b) {
    EpilogueS8(a, b.rows, x.scales.data() + b.i, x.shifts.data() + b.i, w.wsum128.data() + b.off,
               w.scales.data() + b.off, w.colsum.data() + b.off, w.bias.data() + b.off,
               y + static_cast<long>(b.i) * ldy + b.off, ldy, b.cols, ep);
  };
  int buf = 0;
  for (int pb = p0; pb < p1; pb += block) {
    const int pe = pb + block < p1 ? pb + block : p1;
    for (int i = 0; i < x.m; i += kMr) {
      const int rows = x.m - i < kMr ? x.m - i : kMr;
      const uint8_t* xr = x.row(i);
      for (int p = pb; p < pe; ++p) {
        const int off = p * kNr, cols = n1 - off < kNr ? n1 - off : kNr;
        if (rows > 16) {
          ComputeBlockS8<2>(xr, ldx, w.panel(p), kt);
        } else {
          ComputeBlockS8<1>(xr, ldx, w.panel(p), kt);
        }
        if (prev.i >= 0) finish(acc[buf ^ 1], prev);
        if (rows > 16) {
          StoreBlockS8<2>(acc[buf]);
        } else {
          StoreBlockS8<1>(acc[buf]);
        }
        prev = Pending{i, off, rows, cols};
        buf ^= 1;
      }
    }
  }
  if (prev.i >= 0) finish(acc[buf ^ 1], prev);
}

void QuantizeRowsAmx(const float* x, int m, int k, const float* col_scale, QuantizedRows* out) {
  QuantizeRowsAvx512(x, m, k, col_scale, /*k_align=*/kTileK, /*row_align=*/kMr, out);
}

}  // namespace

// int4 keeps the AVX-512 VNNI kernel (same nr = 32 panels; it reads rows at stride x.kp).
const QuantKernelTable& AmxQuantKernels() {
  static const QuantKernelTable table{"amx",
                                      kNr,
                                      kMr,
                                      QuantizeRowsAmx,
                                      GemmS8Amx,
                                      Avx512VnniQuantKernels().gemm_s4,
                                      /*k_align=*/kTileK};
  return table;
}

}  // namespace encserve::kernels
