// AVX-512 VNNI quantised kernels (vpdpbusd, 16 int32 lanes × 4 u8·s8 products per instruction).
// Compiled with -mavx512f/bw/vl/dq/vnni; everything ISA-specific has internal linkage and is
// reached only through the kernel registry (kernels/registry.h) after the CPU check.
//
// Micro-kernel: kMr rows × 32 columns = 2 × kMr int32 accumulators. Per block of 4 k: two 64-byte
// weight loads (16 columns × 4 k each), then per row one broadcast of the row's 4 u8 activations
// and two vpdpbusd. The accumulators start at -128 · Σ_k q (the u8 shift), so at the end they hold
// Σ xq·q exactly; the epilogue converts to float, scales by a_i · s_j, adds the bias and GELU.
#include <immintrin.h>

#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/quant.h"
#include "kernels/quant_params.h"
#include "kernels/simd/vec_avx512.h"

namespace encserve::kernels {
namespace {

#include "kernels/simd/quant_avx512.inc"

constexpr int kNr = 32;
constexpr int kMr = 12;               // 12 rows × 2 vectors = 24 accumulators of 32 registers
constexpr int kPrefetchAhead = 2048;  // bytes of a weight panel ahead (16 blocks of 4 k)

inline int32_t Load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <int MR, bool kPrefetch = false>
inline void TileS8(const uint8_t* x, int ldx, const float* xs, const float* xc, const int8_t* wp,
                   int kb, const int32_t* wsum, const float* ws, const float* cs, const float* bias,
                   float* y, int ldy, int cols, Epilogue ep) {
  i512 acc0[MR], acc1[MR];
  const i512 z = _mm512_setzero_si512();
  const i512 c0 = _mm512_sub_epi32(z, _mm512_loadu_si512(wsum));
  const i512 c1 = _mm512_sub_epi32(z, _mm512_loadu_si512(wsum + 16));
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    acc0[r] = c0;
    acc1[r] = c1;
  }
#pragma GCC unroll 2
  for (int b = 0; b < kb; ++b) {
    const i512 w0 = _mm512_load_si512(wp), w1 = _mm512_load_si512(wp + 64);
    if constexpr (kPrefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(wp) + kPrefetchAhead, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(wp) + kPrefetchAhead + 64, _MM_HINT_T0);
    }
    wp += 128;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const i512 xb = _mm512_set1_epi32(Load4(x + r * ldx + 4 * b));
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], xb, w0);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], xb, w1);
    }
  }
  // Through memory, so that the (not unrolled) epilogue does not force acc0/acc1 onto the stack.
  alignas(64) int32_t tile[MR][kNr];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    _mm512_store_si512(tile[r], acc0[r]);
    _mm512_store_si512(tile[r] + 16, acc1[r]);
  }
  const f512 s0 = _mm512_loadu_ps(ws), s1 = _mm512_loadu_ps(ws + 16);
  const f512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
  const f512 cs0 = _mm512_loadu_ps(cs), cs1 = _mm512_loadu_ps(cs + 16);
  for (int r = 0; r < MR; ++r) {
    const f512 a = _mm512_set1_ps(xs[r]), c = _mm512_set1_ps(xc[r]);
    const f512 v0 = ToFloat(_mm512_load_si512(tile[r]));
    const f512 v1 = ToFloat(_mm512_load_si512(tile[r] + 16));
    Store2(y + r * ldy, _mm512_fmadd_ps(v0, _mm512_mul_ps(a, s0), _mm512_fmadd_ps(c, cs0, b0)),
           _mm512_fmadd_ps(v1, _mm512_mul_ps(a, s1), _mm512_fmadd_ps(c, cs1, b1)), cols, ep);
  }
}

// One int4 group for MR rows: tile[r] = -16 · 128 · Σ q + Σ_k xu · 16q = 16 · Σ xq·q exactly. The
// nibbles are unpacked in registers: a two's complement nibble moved to the top of its byte reads
// as the s8 value 16 · q (one AND for the high nibbles, shift + AND for the low ones). Not inlined
// and ending in a store: otherwise GCC 12 spills the accumulators inside the loop.
template <int MR, bool kPrefetch>
__attribute__((noinline)) void GroupS4(const uint8_t* x, int ldx, const uint8_t* wp, int g4,
                                       const int32_t* wsum, int32_t (*tile)[kNr]) {
  const i512 himask = _mm512_set1_epi8(static_cast<char>(0xF0));
  const i512 z = _mm512_setzero_si512();
  const i512 c0 = _mm512_sub_epi32(z, _mm512_slli_epi32(_mm512_loadu_si512(wsum), 4));
  const i512 c1 = _mm512_sub_epi32(z, _mm512_slli_epi32(_mm512_loadu_si512(wsum + 16), 4));
  i512 acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    acc0[r] = c0;
    acc1[r] = c1;
  }
#pragma GCC unroll 2
  for (int b = 0; b < g4; ++b) {
    const i512 v = _mm512_load_si512(wp);
    if constexpr (kPrefetch)
      _mm_prefetch(reinterpret_cast<const char*>(wp) + kPrefetchAhead, _MM_HINT_T0);
    wp += 64;
    const i512 w0 = _mm512_and_si512(_mm512_slli_epi16(v, 4), himask);  // columns 0..15
    const i512 w1 = _mm512_and_si512(v, himask);                        // columns 16..31
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const i512 xb = _mm512_set1_epi32(Load4(x + r * ldx + 4 * b));
      acc0[r] = _mm512_dpbusd_epi32(acc0[r], xb, w0);
      acc1[r] = _mm512_dpbusd_epi32(acc1[r], xb, w1);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    _mm512_store_si512(tile[r], acc0[r]);
    _mm512_store_si512(tile[r] + 16, acc1[r]);
  }
}

// Per group the exact integer sums are scaled by s_g into float partial sums (facc, in L1); the
// epilogue scales them by a_i / 16.
// xsum [MR][ng]: the rows' group sums 16 · X (GroupSumsXq), which the affine offsets multiply.
template <int MR, bool kPrefetch = false>
inline void TileS4(const uint8_t* x, int ldx, const float* xs, const float* xc, const uint8_t* wp,
                   int ng, int g4, const int32_t* wsum, const float* sc, const float* off,
                   const float* xsum, const float* cs, const float* bias, float* y, int ldy,
                   int cols, Epilogue ep) {
  alignas(64) float facc[MR][kNr] = {};
  alignas(64) int32_t tile[MR][kNr];
  for (int g = 0; g < ng; ++g) {
    GroupS4<MR, kPrefetch>(x + 4 * g * g4, ldx, wp + static_cast<size_t>(g) * g4 * 64, g4,
                           wsum + g * kNr, tile);
    const f512 s0 = _mm512_loadu_ps(sc + g * kNr), s1 = _mm512_loadu_ps(sc + g * kNr + 16);
    const f512 o0 = _mm512_loadu_ps(off + g * kNr), o1 = _mm512_loadu_ps(off + g * kNr + 16);
    for (int r = 0; r < MR; ++r) {
      const f512 xg = _mm512_set1_ps(xsum[r * ng + g]);
      const f512 t0 = ToFloat(_mm512_load_si512(tile[r]));
      const f512 t1 = ToFloat(_mm512_load_si512(tile[r] + 16));
      _mm512_store_ps(facc[r],
                      _mm512_fmadd_ps(t0, s0, _mm512_fmadd_ps(xg, o0, _mm512_load_ps(facc[r]))));
      _mm512_store_ps(
          facc[r] + 16,
          _mm512_fmadd_ps(t1, s1, _mm512_fmadd_ps(xg, o1, _mm512_load_ps(facc[r] + 16))));
    }
  }
  const f512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
  const f512 cs0 = _mm512_loadu_ps(cs), cs1 = _mm512_loadu_ps(cs + 16);
  for (int r = 0; r < MR; ++r) {
    const f512 a = _mm512_set1_ps(xs[r] * 0.0625f);  // undo the 16 · q
    const f512 c = _mm512_set1_ps(xc[r]);
    Store2(y + r * ldy, _mm512_fmadd_ps(_mm512_load_ps(facc[r]), a, _mm512_fmadd_ps(c, cs0, b0)),
           _mm512_fmadd_ps(_mm512_load_ps(facc[r] + 16), a, _mm512_fmadd_ps(c, cs1, b1)), cols, ep);
  }
}

// Row tails: the Tile instantiation with exactly `rows` (< R + 1) rows.
template <int R, bool kPrefetch = false, typename... Args>
inline void TailS8(int rows, Args... args) {
  if constexpr (R > 0) {
    if (rows == R) {
      TileS8<R, kPrefetch>(args...);
    } else {
      TailS8<R - 1, kPrefetch>(rows, args...);
    }
  }
}

template <int R, bool kPrefetch = false, typename... Args>
inline void TailS4(int rows, Args... args) {
  if constexpr (R > 0) {
    if (rows == R) {
      TileS4<R, kPrefetch>(args...);
    } else {
      TailS4<R - 1, kPrefetch>(rows, args...);
    }
  }
}

// Loop order: blocks of panels whose weights fit in L2 (kL2WeightBytes), then row tiles, then
// the panels of the block. A tile's activations (kMr × kp bytes) stay in L1 while the block's
// weights stream from L2 in one sequential pass.
constexpr int kL2WeightBytes = 768 * 1024;

void GemmS8Vnni(const QuantizedRows& x, const PackedS8& w, float* y, int ldy, int n0, int n1,
                Epilogue ep) {
  const int kb = w.kp / 4, ldx = x.kp;
  const int p0 = n0 / kNr, p1 = (n1 + kNr - 1) / kNr;
  const int block = kL2WeightBytes / (w.kp * kNr) > 1 ? kL2WeightBytes / (w.kp * kNr) : 1;
  for (int pb = p0; pb < p1; pb += block) {
    const int pe = pb + block < p1 ? pb + block : p1;
    for (int i = 0; i < x.m; i += kMr) {
      const int rows = x.m - i < kMr ? x.m - i : kMr;
      const uint8_t* xr = x.row(i);
      const float* xs = x.scales.data() + i;
      const float* xc = x.shifts.data() + i;
      for (int p = pb; p < pe; ++p) {
        const int off = p * kNr, cols = n1 - off < kNr ? n1 - off : kNr;
        const int8_t* wp = w.panel(p);
        const int32_t* wsum = w.wsum128.data() + off;
        const float* ws = w.scales.data() + off;
        const float* cs = w.colsum.data() + off;
        const float* bias = w.bias.data() + off;
        float* yt = y + static_cast<size_t>(i) * ldy + off;
        if (rows == kMr && i == 0) {
          // The block's first row tile reads its weights from L3 / memory: prefetch.
          TileS8<kMr, true>(xr, ldx, xs, xc, wp, kb, wsum, ws, cs, bias, yt, ldy, cols, ep);
        } else if (rows == kMr) {
          TileS8<kMr>(xr, ldx, xs, xc, wp, kb, wsum, ws, cs, bias, yt, ldy, cols, ep);
        } else if (x.m < kMr) {
          // One row tile: every weight is used once, straight from L3 / memory (batch 1): prefetch.
          TailS8<kMr - 1, true>(rows, xr, ldx, xs, xc, wp, kb, wsum, ws, cs, bias, yt, ldy, cols,
                                ep);
        } else {
          TailS8<kMr - 1>(rows, xr, ldx, xs, xc, wp, kb, wsum, ws, cs, bias, yt, ldy, cols, ep);
        }
      }
    }
  }
}

void GemmS4Vnni(const QuantizedRows& x, const PackedS4& w, float* y, int ldy, int n0, int n1,
                Epilogue ep) {
  const int ng = w.num_groups(), g4 = w.group_size / 4, ldx = x.kp;
  const int p0 = n0 / kNr, p1 = (n1 + kNr - 1) / kNr;
  const int block = kL2WeightBytes / (w.k * kNr / 2) > 1 ? kL2WeightBytes / (w.k * kNr / 2) : 1;
  thread_local AlignedBuffer<float> xsum_buf;  // kMr × ng group sums of one row tile
  xsum_buf.reserve_at_least(static_cast<size_t>(kMr) * ng);
  float* xsum = xsum_buf.data();
  for (int pb = p0; pb < p1; pb += block) {
    const int pe = pb + block < p1 ? pb + block : p1;
    for (int i = 0; i < x.m; i += kMr) {
      const int rows = x.m - i < kMr ? x.m - i : kMr;
      const uint8_t* xr = x.row(i);
      const float* xs = x.scales.data() + i;
      const float* xc = x.shifts.data() + i;
      GroupSumsXq(xr, ldx, rows, w.k, w.group_size, 16.0f, xsum);  // 16: the kernel's 16 · q
      for (int p = pb; p < pe; ++p) {
        const int off = p * kNr, cols = n1 - off < kNr ? n1 - off : kNr;
        const uint8_t* wp = w.panel(p);
        const size_t at = static_cast<size_t>(p) * ng * kNr;
        const int32_t* wsum = w.wsum128.data() + at;
        const float* sc = w.scales.data() + at;
        const float* of = w.offsets.data() + at;
        const float* cs = w.colsum.data() + off;
        const float* bias = w.bias.data() + off;
        float* yt = y + static_cast<size_t>(i) * ldy + off;
        if (rows == kMr) {
          TileS4<kMr>(xr, ldx, xs, xc, wp, ng, g4, wsum, sc, of, xsum, cs, bias, yt, ldy, cols, ep);
        } else if (x.m < kMr) {  // one row tile: weights used once (see GemmS8Vnni)
          TailS4<kMr - 1, true>(rows, xr, ldx, xs, xc, wp, ng, g4, wsum, sc, of, xsum, cs, bias, yt,
                                ldy, cols, ep);
        } else {
          TailS4<kMr - 1>(rows, xr, ldx, xs, xc, wp, ng, g4, wsum, sc, of, xsum, cs, bias, yt, ldy,
                          cols, ep);
        }
      }
    }
  }
}

}  // namespace

const QuantKernelTable& Avx512VnniQuantKernels() {
  static const QuantKernelTable table{"avx512_vnni",          kNr,        kMr,
                                      QuantizeRowRangeAvx512, GemmS8Vnni, GemmS4Vnni};
  return table;
}

}  // namespace encserve::kernels
