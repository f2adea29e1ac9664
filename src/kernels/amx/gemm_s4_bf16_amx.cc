// int4 weights on the AMX-BF16 tiles: y[m, n0:n1] = epi(xb · Ŵᵀ + b), Ŵ = bf16(s·q + o) per
// (column, group) of PackedS4 (affine int4, kernels/quant.h), xb as for GemmBf16Amx (convert_bf16
// output, row stride % 32 == 0, whole 16-row tiles readable). Chunks of panels are decoded into a
// thread-local PackedBf16Pairs (about 256 KiB, so it stays in L2) and multiplied by GemmBf16Amx;
// the weights stay 4-bit at rest. The AMX tiles have no int4 and per-group scales would need a
// tile epilogue per group of 64 k, so decoding to bf16 is the cheap way onto the tiles.
// Compiled with the AMX and AVX512-BF16 flags; reached only through the amx quantised table
// after the CPU check (DetectCpu().amx_bf16).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/packed.h"
#include "kernels/quant.h"

namespace encserve::kernels {

void GemmBf16Amx(const uint16_t* xb, int ldxb, int m, const PackedBf16Pairs& w, float* y, int ldy,
                 int n0, int n1, Epilogue ep);

namespace {

constexpr int kNr = 32;
constexpr long kChunkBytes = 256 * 1024;

// One int4 panel (k/4 blocks of 64 bytes) → k/2 bf16 pair rows of 128 bytes (PackedBf16Pairs,
// nr = 32): pair row r holds (Ŵ[c][2r], Ŵ[c][2r+1]) for columns 0-15 in bytes 0-63 and 16-31 in
// bytes 64-127. scales / offsets: this panel's [groups][32].
void DecodePanel(const uint8_t* src, int k, int group, const float* scales, const float* offsets,
                 uint16_t* dst) {
  const __m512i nib = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  // Lane l of a 16-byte chunk j holds column 4j + l/4 (k offset l % 4).
  alignas(64) int32_t col_idx[4][16];
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 16; ++l) col_idx[j][l] = 4 * j + l / 4;
  // Dwords (column, k pair) → pair rows: even dwords are k = 4b, 4b+1; odd ones 4b+2, 4b+3.
  alignas(64) int32_t even[16], odd[16];
  for (int l = 0; l < 16; ++l) {
    even[l] = 2 * l;
    odd[l] = 2 * l + 1;
  }
  const __m512i ev = _mm512_load_si512(even), od = _mm512_load_si512(odd);
  const int blocks_per_group = group / 4;
  for (int g = 0; g < k / group; ++g) {
    __m512 s[8], o[8];  // per chunk: 0-3 columns 0-15, 4-7 columns 16-31
    for (int h = 0; h < 2; ++h) {
      const __m512 sv = _mm512_loadu_ps(scales + g * kNr + 16 * h);
      const __m512 ov = _mm512_loadu_ps(offsets + g * kNr + 16 * h);
      for (int j = 0; j < 4; ++j) {
        const __m512i idx = _mm512_load_si512(col_idx[j]);
        s[4 * h + j] = _mm512_permutexvar_ps(idx, sv);
        o[4 * h + j] = _mm512_permutexvar_ps(idx, ov);
      }
    }
    for (int bb = 0; bb < blocks_per_group; ++bb) {
      const int b = g * blocks_per_group + bb;
      const __m512i v = _mm512_loadu_si512(src + static_cast<long>(b) * 64);
      // Two's complement nibbles → q = (nibble ^ 8) − 8 ∈ [-8, 7], as signed bytes.
      const __m512i lo = _mm512_sub_epi8(_mm512_xor_si512(_mm512_and_si512(v, nib), eight), eight);
      const __m512i hi = _mm512_sub_epi8(
          _mm512_xor_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), nib), eight), eight);
      alignas(64) int8_t qb[2][64];
      _mm512_store_si512(qb[0], lo);
      _mm512_store_si512(qb[1], hi);
      uint16_t* row0 = dst + static_cast<long>(2 * b) * 2 * kNr;  // pair row 2b
      uint16_t* row1 = row0 + 2 * kNr;                            // pair row 2b + 1
      for (int h = 0; h < 2; ++h) {
        __m512i z[2];
        for (int pair = 0; pair < 2; ++pair) {
          const int j0 = 2 * pair, j1 = 2 * pair + 1;
          const __m512 f0 = _mm512_fmadd_ps(
              s[4 * h + j0],
              _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                  _mm_load_si128(reinterpret_cast<const __m128i*>(qb[h] + 16 * j0)))),
              o[4 * h + j0]);
          const __m512 f1 = _mm512_fmadd_ps(
              s[4 * h + j1],
              _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                  _mm_load_si128(reinterpret_cast<const __m128i*>(qb[h] + 16 * j1)))),
              o[4 * h + j1]);
          // f0 → bf16 lanes 0-15, f1 → 16-31: dwords (column, k pair) of 8 columns.
          z[pair] = reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(f1, f0));
        }
        _mm512_storeu_si512(row0 + 32 * h, _mm512_permutex2var_epi32(z[0], ev, z[1]));
        _mm512_storeu_si512(row1 + 32 * h, _mm512_permutex2var_epi32(z[0], od, z[1]));
      }
    }
  }
}

}  // namespace

void GemmS4Bf16Amx(const uint16_t* xb, int ldxb, int m, const PackedS4& w, float* y, int ldy,
                   int n0, int n1, Epilogue ep) {
  thread_local PackedBf16Pairs chunk;
  const long panel_elems = static_cast<long>(w.k) * kNr;  // bf16 values per decoded panel
  const int per_chunk = kChunkBytes / (panel_elems * 2) > 1 ? kChunkBytes / (panel_elems * 2) : 1;
  chunk.k = w.k;
  chunk.kp = w.k / 2;
  chunk.nr = kNr;
  chunk.panels.reserve_at_least(static_cast<size_t>(per_chunk) * panel_elems);
  chunk.bias.reserve_at_least(static_cast<size_t>(per_chunk) * kNr);
  const int p0 = n0 / kNr, p1 = (n1 + kNr - 1) / kNr;
  for (int pc = p0; pc < p1; pc += per_chunk) {
    const int pe = pc + per_chunk < p1 ? pc + per_chunk : p1;
    for (int p = pc; p < pe; ++p) {
      const size_t at = static_cast<size_t>(p) * w.num_groups() * kNr;
      DecodePanel(w.panel(p), w.k, w.group_size, w.scales.data() + at, w.offsets.data() + at,
                  chunk.panels.data() + (p - pc) * panel_elems);
    }
    std::memcpy(chunk.bias.data(), w.bias.data() + static_cast<long>(pc) * kNr,
                sizeof(float) * (pe - pc) * kNr);
    const int c0 = pc * kNr, c1 = n1 < pe * kNr ? n1 : pe * kNr;
    chunk.n = c1 - c0;
    GemmBf16Amx(xb, ldxb, m, chunk, y + c0, ldy, 0, c1 - c0, ep);
  }
}

}  // namespace encserve::kernels
