// AMX int8 GEMM: y[m, n0:n1] fp32 = epi(a_i · s_j · (Σ_k xu[i,k] · q[j,k] − 128 · Σ_k q[j,k]) +
// b_j) from xu [m, kp] u8 (QuantizedRows, kp % 64 == 0) and PackedS8 (nr = 32, kp % 64 == 0).
// Compiled with -mamx-tile/-mamx-int8 and the AVX-512 flags; reached only through
// the kernel registry (kernels/registry.h) after the CPU check (DetectCpu().amx).
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
#include "kernels/cpu_features.h"
#include "kernels/quant.h"
#include "kernels/quant_params.h"
#include "kernels/simd/vec_avx512.h"

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

// Loop order as the VNNI kernel, software pipelined (amx::RunBlocks): the tdpbusd of block b are
// issued before the AVX-512 epilogue of block b − 1.
constexpr int kL2WeightBytes = 768 * 1024;

void GemmS8Amx(const QuantizedRows& x, const PackedS8& w, float* y, int ldy, int n0, int n1,
               Epilogue ep) {
  amx::ConfigureTiles();
  const int kt = w.kp / kTileK;
  const long ldx = x.kp;
  const int p0 = n0 / kNr, p1 = (n1 + kNr - 1) / kNr;
  const int block = kL2WeightBytes / (w.kp * kNr) > 1 ? kL2WeightBytes / (w.kp * kNr) : 1;
  amx::RunBlocks<int32_t>(
      x.m, n1, p0, p1, block,
      [&](int i, int p, bool two) {
        if (two) {
          ComputeBlockS8<2>(x.row(i), ldx, w.panel(p), kt);
        } else {
          ComputeBlockS8<1>(x.row(i), ldx, w.panel(p), kt);
        }
      },
      [&](const int32_t* c, int i, int off, int rows, int cols) {
        EpilogueS8(c, rows, x.scales.data() + i, x.shifts.data() + i, w.wsum128.data() + off,
                   w.scales.data() + off, w.colsum.data() + off, w.bias.data() + off,
                   y + static_cast<long>(i) * ldy + off, ldy, cols, ep);
      });
}

}  // namespace

// kernels/amx/gemm_s4_bf16_amx.cc
void GemmS4Bf16Amx(const uint16_t* xb, int ldxb, int m, const PackedS4& w, float* y, int ldy,
                   int n0, int n1, Epilogue ep);

// int4: the AMX-BF16 path (gemm_s4_bf16, kernels/amx/gemm_s4_bf16_amx.cc) where the CPU has
// AMX-BF16; gemm_s4 stays the AVX-512 VNNI kernel (same nr = 32 panels; it reads rows at
// stride x.kp).
const QuantKernelTable& AmxQuantKernels() {
  static const QuantKernelTable table = [] {
    QuantKernelTable t{"amx",
                       kNr,
                       kMr,
                       QuantizeRowRangeAvx512,
                       GemmS8Amx,
                       Avx512VnniQuantKernels().gemm_s4,
                       /*k_align=*/kTileK,
                       /*row_align=*/kMr};
    if (DetectCpu().amx_bf16) t.gemm_s4_bf16 = GemmS4Bf16Amx;
    return t;
  }();
  return table;
}

}  // namespace encserve::kernels
