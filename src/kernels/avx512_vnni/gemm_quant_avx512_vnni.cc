// AVX-512 VNNI quantised kernels (vpdpbusd, 16 int32 lanes × 4 u8·s8 products per instruction).
// Compiled with -mavx512f/bw/vl/dq/vnni; everything ISA-specific has internal linkage and is
// reached only through QuantKernelsExact()/QuantKernelsFor() after the CPU check.
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

namespace encserve::kernels {
namespace {

using f512 = __m512;
using i512 = __m512i;
constexpr int kNr = 32;
constexpr int kMr = 12;  // 12 rows × 2 vectors = 24 accumulators of 32 registers

inline int32_t Load4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline __mmask16 TailMask(int n) {
  return static_cast<__mmask16>((1u << n) - 1u);
}
// int32 → float (the zero-masked form: GCC 12 warns about _mm512_cvtepi32_ps's undefined source).
inline f512 ToFloat(i512 v) {
  return _mm512_maskz_cvtepi32_ps(0xFFFF, v);
}

// exp and erf as in kernels/simd/kernels_impl.inc (Cody–Waite + degree-6 polynomial;
// Abramowitz–Stegun 7.1.26, |error| ≤ 1.5e-7).
inline f512 Exp(f512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
  const f512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  f512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-0.693359375f), x);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  f512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const f512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  const i512 e =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

inline f512 Gelu(f512 v) {
  const f512 x = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
  const f512 ax = _mm512_abs_ps(x);
  const f512 t = _mm512_div_ps(
      _mm512_set1_ps(1.0f), _mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), ax, _mm512_set1_ps(1.0f)));
  f512 p = _mm512_set1_ps(1.061405429f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
  p = _mm512_mul_ps(p, t);
  const f512 e = Exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(ax, ax)));
  f512 erf = _mm512_fnmadd_ps(p, e, _mm512_set1_ps(1.0f));  // erf(|x|)
  const i512 sign = _mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(INT32_MIN));
  erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf), sign));
  return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), v),
                       _mm512_add_ps(_mm512_set1_ps(1.0f), erf));
}

// Stores epilogue(v0 | v1) (32 columns, `cols` of them valid) to y.
inline void Store2(float* y, f512 v0, f512 v1, int cols, Epilogue ep) {
  if (ep == Epilogue::kBiasGelu) {
    v0 = Gelu(v0);
    v1 = Gelu(v1);
  }
  if (cols == kNr) {
    _mm512_storeu_ps(y, v0);
    _mm512_storeu_ps(y + 16, v1);
  } else {
    _mm512_mask_storeu_ps(y, TailMask(cols < 16 ? cols : 16), v0);
    if (cols > 16) _mm512_mask_storeu_ps(y + 16, TailMask(cols - 16), v1);
  }
}

// Loads x[j .. j+16) with lanes at or past k zeroed.
inline f512 LoadUpTo(const float* r, int j, int k) {
  return j + 16 <= k ? _mm512_loadu_ps(r + j)
                     : _mm512_maskz_loadu_ps(j < k ? TailMask(k - j) : 0, r + j);
}

// Per row: max |x| (4 independent chains), then 64 values at a time: x · (127 / max) rounded to
// nearest even (vcvtps2dq), packed with signed saturation to int8, clamped to -127, and flipped
// to u8 (xq + 128 = xq ^ 0x80). Lanes past k quantise to 0, i.e. the padding byte 128.
void QuantizeRowsVnni(const float* x, int m, int k, QuantizedRows* out) {
  const int kp = (k + 3) / 4 * 4;
  out->m = m;
  out->k = k;
  out->kp = kp;
  out->data.reserve_at_least(static_cast<size_t>(m) * kp);
  out->scales.reserve_at_least(m);
  const i512 perm = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const i512 lo = _mm512_set1_epi8(-127), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int i = 0; i < m; ++i) {
    const float* r = x + static_cast<size_t>(i) * k;
    uint8_t* q = out->data.data() + static_cast<size_t>(i) * kp;
    f512 mx[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                  _mm512_setzero_ps()};
    int j = 0;
    for (; j + 64 <= k; j += 64) {
      for (int t = 0; t < 4; ++t) {
        mx[t] = _mm512_max_ps(mx[t], _mm512_abs_ps(_mm512_loadu_ps(r + j + 16 * t)));
      }
    }
    for (; j < k; j += 16) mx[0] = _mm512_max_ps(mx[0], _mm512_abs_ps(LoadUpTo(r, j, k)));
    const float mxs = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_max_ps(mx[0], mx[1]), _mm512_max_ps(mx[2], mx[3])));
    float inv = 127.0f / mxs;
    const bool zero = !(mxs > 0.0f) || !std::isfinite(inv);
    if (zero) inv = 0.0f;
    out->scales[i] = zero ? 1.0f : mxs / 127.0f;
    const f512 vinv = _mm512_set1_ps(inv);
    for (j = 0; j < kp; j += 64) {
      i512 v[4];
      for (int t = 0; t < 4; ++t) {
        v[t] = _mm512_cvtps_epi32(_mm512_mul_ps(LoadUpTo(r, j + 16 * t, k), vinv));
      }
      i512 b = _mm512_packs_epi16(_mm512_packs_epi32(v[0], v[1]), _mm512_packs_epi32(v[2], v[3]));
      b = _mm512_xor_si512(_mm512_max_epi8(b, lo), flip);
      b = _mm512_permutexvar_epi32(perm, b);
      if (j + 64 <= kp) {
        _mm512_storeu_si512(q + j, b);
      } else {
        _mm512_mask_storeu_epi8(q + j, (~0ULL) >> (64 - (kp - j)), b);
      }
    }
  }
}

template <int MR>
inline void TileS8(const uint8_t* x, int ldx, const float* xs, const int8_t* wp, int kb,
                   const int32_t* wsum, const float* ws, const float* bias, float* y, int ldy,
                   int cols, Epilogue ep) {
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
  for (int r = 0; r < MR; ++r) {
    const f512 a = _mm512_set1_ps(xs[r]);
    const f512 v0 = ToFloat(_mm512_load_si512(tile[r]));
    const f512 v1 = ToFloat(_mm512_load_si512(tile[r] + 16));
    Store2(y + r * ldy, _mm512_fmadd_ps(v0, _mm512_mul_ps(a, s0), b0),
           _mm512_fmadd_ps(v1, _mm512_mul_ps(a, s1), b1), cols, ep);
  }
}

// One int4 group for MR rows: tile[r] = -16 · 128 · Σ q + Σ_k xu · 16q = 16 · Σ xq·q exactly. The
// nibbles are unpacked in registers: a two's complement nibble moved to the top of its byte reads
// as the s8 value 16 · q (one AND for the high nibbles, shift + AND for the low ones). Not inlined
// and ending in a store: otherwise GCC 12 spills the accumulators inside the loop.
template <int MR>
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
template <int MR>
inline void TileS4(const uint8_t* x, int ldx, const float* xs, const uint8_t* wp, int ng, int g4,
                   const int32_t* wsum, const float* sc, const float* bias, float* y, int ldy,
                   int cols, Epilogue ep) {
  alignas(64) float facc[MR][kNr] = {};
  alignas(64) int32_t tile[MR][kNr];
  for (int g = 0; g < ng; ++g) {
    GroupS4<MR>(x + 4 * g * g4, ldx, wp + static_cast<size_t>(g) * g4 * 64, g4, wsum + g * kNr,
                tile);
    const f512 s0 = _mm512_loadu_ps(sc + g * kNr), s1 = _mm512_loadu_ps(sc + g * kNr + 16);
    for (int r = 0; r < MR; ++r) {
      const f512 t0 = ToFloat(_mm512_load_si512(tile[r]));
      const f512 t1 = ToFloat(_mm512_load_si512(tile[r] + 16));
      _mm512_store_ps(facc[r], _mm512_fmadd_ps(t0, s0, _mm512_load_ps(facc[r])));
      _mm512_store_ps(facc[r] + 16, _mm512_fmadd_ps(t1, s1, _mm512_load_ps(facc[r] + 16)));
    }
  }
  const f512 b0 = _mm512_loadu_ps(bias), b1 = _mm512_loadu_ps(bias + 16);
  for (int r = 0; r < MR; ++r) {
    const f512 a = _mm512_set1_ps(xs[r] * 0.0625f);  // undo the 16 · q
    Store2(y + r * ldy, _mm512_fmadd_ps(_mm512_load_ps(facc[r]), a, b0),
           _mm512_fmadd_ps(_mm512_load_ps(facc[r] + 16), a, b1), cols, ep);
  }
}

// Row tails: the Tile instantiation with exactly `rows` (< R + 1) rows.
template <int R, typename... Args>
inline void TailS8(int rows, Args... args) {
  if constexpr (R > 0) {
    if (rows == R) {
      TileS8<R>(args...);
    } else {
      TailS8<R - 1>(rows, args...);
    }
  }
}

template <int R, typename... Args>
inline void TailS4(int rows, Args... args) {
  if constexpr (R > 0) {
    if (rows == R) {
      TileS4<R>(args...);
    } else {
      TailS4<R - 1>(rows, args...);
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
      for (int p = pb; p < pe; ++p) {
        const int off = p * kNr, cols = n1 - off < kNr ? n1 - off : kNr;
        const int8_t* wp = w.panel(p);
        const int32_t* wsum = w.wsum128.data() + off;
        const float* ws = w.scales.data() + off;
        const float* bias = w.bias.data() + off;
        float* yt = y + static_cast<size_t>(i) * ldy + off;
        if (rows == kMr) {
          TileS8<kMr>(xr, ldx, xs, wp, kb, wsum, ws, bias, yt, ldy, cols, ep);
        } else {
          TailS8<kMr - 1>(rows, xr, ldx, xs, wp, kb, wsum, ws, bias, yt, ldy, cols, ep);
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
  for (int pb = p0; pb < p1; pb += block) {
    const int pe = pb + block < p1 ? pb + block : p1;
    for (int i = 0; i < x.m; i += kMr) {
      const int rows = x.m - i < kMr ? x.m - i : kMr;
      const uint8_t* xr = x.row(i);
      const float* xs = x.scales.data() + i;
      for (int p = pb; p < pe; ++p) {
        const int off = p * kNr, cols = n1 - off < kNr ? n1 - off : kNr;
        const uint8_t* wp = w.panel(p);
        const int32_t* wsum = w.wsum128.data() + static_cast<size_t>(p) * ng * kNr;
        const float* sc = w.scales.data() + static_cast<size_t>(p) * ng * kNr;
        const float* bias = w.bias.data() + off;
        float* yt = y + static_cast<size_t>(i) * ldy + off;
        if (rows == kMr) {
          TileS4<kMr>(xr, ldx, xs, wp, ng, g4, wsum, sc, bias, yt, ldy, cols, ep);
        } else {
          TailS4<kMr - 1>(rows, xr, ldx, xs, wp, ng, g4, wsum, sc, bias, yt, ldy, cols, ep);
        }
      }
    }
  }
}

}  // namespace

const QuantKernelTable& Avx512VnniQuantKernels() {
  static const QuantKernelTable table{"avx512_vnni",    kNr,        kMr,
                                      QuantizeRowsVnni, GemmS8Vnni, GemmS4Vnni};
  return table;
}

}  // namespace encserve::kernels
