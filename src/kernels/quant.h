// Quantised GEMM kernels: int8 weights (per output channel) and int4 weights (per group along K),
// both with 8-bit activations quantised per row (asymmetric, with a zero point) at run time. One
// QuantKernelTable per ISA, chosen at run time (QuantKernelsFor) like the fp32 KernelTable; every
// kernel has a naive twin in kernels/ref_quant.h. Layouts and the maths are in
// docs/kernels_quant.md.
//
//   weights  W [n, k] (PyTorch Linear layout), bias [n]
//   int8     per output channel: s_j = max_k |W[j,k]| / 127 (1 for an all-zero row),
//            q = rint(W · 127/max) ∈ [-127, 127]
//   int4     affine (MLX style: a scale and an offset per group): per (j, group of g ∈ {32, 64,
//            128} along K) with lo/hi the group's min/max, s = (hi − lo) / 15 (0 for a constant
//            group), q = clamp(rint((W − lo) / s), 0, 15) − 8 ∈ [-8, 7], o = lo + 8·s, so that
//            W ≈ s·q + o (a constant group, zeros included, is exact: s = 0, o = lo)
//   x        [m, k] per row, asymmetric over [lo, hi] = [min(0, min_k x), max(0, max_k x)]:
//            a_i = (hi − lo) / 255, inv = 255 / (hi − lo), zp_i = rint(−lo · inv) ∈ [0, 255],
//            xu = clamp(rint(x · inv) + zp_i, 0, 255) (u8, for VNNI / AMX); an all-zero row has
//            a_i = 1, zp_i = 128. The kernels work with xq = xu − 128 ∈ [-128, 127], so
//            x ≈ a_i · (xq + 128 − zp_i) and the zero point becomes a rank-one term with
//            c_i = a_i · (128 − zp_i) (QuantizedRows::shifts) and, per output column,
//            colsum_j = Σ_k Ŵ[j,k] (the dequantised weights: s_j · Σ_k q[j,k] for int8,
//            Σ_g (s_{j,g} · Σ_{k∈g} q[j,k] + g · o_{j,g}) for int4), and for int4 the offsets
//            meet the activations' group sums X_{i,g} = Σ_{k∈g} xq[i,k]:
//   y[i, j]  = epilogue(a_i · s_j · Σ_k xq·q + (c_i · colsum_j + bias[j]))                  (int8)
//            = epilogue(a_i · Σ_g (s_{j,g} · Σ_{k∈g} xq·q + o_{j,g} · X_{i,g})
//                       + (c_i · colsum_j + bias[j]))                                       (int4)
// rint rounds half to even; the products x · inv are single float multiplies, so every table
// and the reference quantise bit-identically.
#pragma once

#include <cstdint>

#include "core/aligned_buffer.h"
#include "core/status.h"
#include "kernels/kernels.h"

namespace encserve::kernels {

// int8 weights packed in column panels of nr: panel p holds kp/4 blocks of nr × 4 bytes (column
// c, k = 4·b .. 4·b+3), zero-padded past n and past k. With nr = 32 and kp % 64 == 0 (the amx
// table) 16 consecutive blocks are two AMX B tiles (columns 0-15 and 16-31, row stride 128 B).
struct PackedS8 {
  int n = 0, k = 0, kp = 0, nr = 0;  // kp: k rounded up to the table's k_align (4 or 64)
  AlignedBuffer<int8_t> panels;      // num_panels() × kp/4 × nr × 4
  AlignedBuffer<float> scales;       // num_panels() × nr: s_j (0 past n)
  AlignedBuffer<float> bias;         // num_panels() × nr (zeros when the layer has no bias)
  AlignedBuffer<int32_t> wsum128;    // num_panels() × nr: 128 · Σ_k q[j,k], the u8-shift term
  AlignedBuffer<float> colsum;       // num_panels() × nr: s_j · Σ_k q[j,k], the zero-point term

  int num_panels() const { return nr == 0 ? 0 : (n + nr - 1) / nr; }
  const int8_t* panel(int p) const { return panels.data() + static_cast<size_t>(p) * kp * nr; }
};

// int4 weights: panel p holds k/4 blocks of nr/2 × 4 bytes; byte (c, t) of a block has q[col c]
// [k = 4·b + t] in its low nibble and q[col c + nr/2][same k] in its high nibble (two's
// complement nibbles). Per group: scales, offsets and 128 · Σ q, all nr wide.
struct PackedS4 {
  int n = 0, k = 0, group_size = 0, nr = 0;
  AlignedBuffer<uint8_t> panels;   // num_panels() × k/4 × nr/2 × 4
  AlignedBuffer<float> scales;     // num_panels() × num_groups() × nr: s (0 past n)
  AlignedBuffer<float> offsets;    // num_panels() × num_groups() × nr: o (0 past n)
  AlignedBuffer<int32_t> wsum128;  // num_panels() × num_groups() × nr
  AlignedBuffer<float> bias;       // num_panels() × nr
  AlignedBuffer<float> colsum;     // num_panels() × nr: Σ_k Ŵ[j,k]

  int num_panels() const { return nr == 0 ? 0 : (n + nr - 1) / nr; }
  int num_groups() const { return group_size == 0 ? 0 : k / group_size; }
  const uint8_t* panel(int p) const { return panels.data() + static_cast<size_t>(p) * k * nr / 2; }
};

// Activations quantised once per GEMM (shared by all column partitions). Row i is kp bytes at
// data + i·kp (xu; bytes past k hold 128 and meet zero weights). Rows m up to the next multiple
// of the table's row_align (32 for amx) hold 128, so that whole 16-row tiles can be loaded.
struct QuantizedRows {
  int m = 0, k = 0, kp = 0;
  AlignedBuffer<uint8_t> data;  // at least m_pad × kp
  AlignedBuffer<float> scales;  // at least m: a_i
  AlignedBuffer<float> shifts;  // at least m: c_i = a_i · (128 − zp_i)
  const uint8_t* row(int i) const { return data.data() + static_cast<size_t>(i) * kp; }
};

struct QuantKernelTable {
  const char* name;  // "amx", "avx512_vnni", "avx_vnni", "avx2", "scalar"
  int nr;            // panel width PackS8/PackS4 use for this table
  int mr;            // rows per micro-tile (row partitions are best made in multiples of it)
  // Quantises rows r0 .. r1-1 of x [m, k] (row-major, contiguous; x points at row 0) into rows
  // r0 .. r1-1 of out, which PrepareQuantizedRows sized for this table; disjoint row ranges may
  // run on different threads at once. With col_scale ([k], or nullptr for none) the rows
  // quantised are x[i, c] · col_scale[c] (one float multiply each): the activation side of
  // SmoothQuant smoothing, fused into this pass. QuantizeRows does all rows in one call.
  void (*quantize_row_range)(const float* x, int k, const float* col_scale, int r0, int r1,
                             QuantizedRows* out);
  // y[m, n0:n1] = epilogue(dequantised x · Wᵀ + bias); n0 % nr == 0, n1 ≤ w.n, x.k == w.k.
  void (*gemm_s8)(const QuantizedRows& x, const PackedS8& w, float* y, int ldy, int n0, int n1,
                  Epilogue ep);
  void (*gemm_s4)(const QuantizedRows& x, const PackedS4& w, float* y, int ldy, int n0, int n1,
                  Epilogue ep);
  // PackS8 pads k (PackedS8::kp) and PrepareQuantizedRows pads rows (QuantizedRows::kp) to a
  // multiple of this: 4 for the dot-product kernels, 64 (one AMX tile row) for amx.
  int k_align = 4;
  // PrepareQuantizedRows fills rows m .. (m rounded up to this) − 1 with 128: 32 for amx.
  int row_align = 1;
  // Set by the amx table on CPUs with AMX-BF16 (else nullptr): int4 layers then take x rounded to
  // bf16 (KernelTable::convert_bf16 output, row stride k with k % 32 == 0, readable up to 31 rows
  // past m) instead of QuantizedRows; the int4 panels are decoded chunk by chunk to bf16
  // (s·q + o in fp32, rounded to nearest even) and multiplied on the AMX-BF16 tiles with fp32
  // accumulation. Same contract as gemm_s4 otherwise.
  void (*gemm_s4_bf16)(const uint16_t* xb, int ldxb, int m, const PackedS4& w, float* y, int ldy,
                       int n0, int n1, Epilogue ep) = nullptr;
};

// Sets out's shape for x [m, k] quantised by table t (kp = k rounded up to t.k_align), grows its
// buffers when needed and fills the padding rows (see row_align) with 128.
void PrepareQuantizedRows(const QuantKernelTable& t, int m, int k, QuantizedRows* out);
// PrepareQuantizedRows, then t.quantize_row_range over all m rows on the calling thread.
void QuantizeRows(const QuantKernelTable& t, const float* x, int m, int k, const float* col_scale,
                  QuantizedRows* out);

// Best table for this CPU at or below `isa` (kernels/registry.h): kAmx → amx if the CPU has
// AMX-INT8 (and the OS granted tile data), else as kAvx512; kAvx512 → avx512_vnni if the CPU has
// AVX-512 VNNI, else as kAvx2; kAvx2 → avx_vnni if the CPU has AVX-VNNI, else avx2 (maddubs);
// kScalar → scalar. An `isa` above BestSupportedIsa() is lowered to it first.
const QuantKernelTable& QuantKernelsFor(Isa isa);
// QuantKernelsFor(ActiveIsa()).
const QuantKernelTable& QuantKernels();

// The affine int4 grid of one (row, group), as PackS4 stores it (see "Maths" in
// docs/kernels_quant.md): W ≈ scale · q + offset, q ∈ [-8, 7], from the range [lo, hi]; a
// constant range (lo == hi) has scale 0 and offset lo, so it is exact.
struct AffineS4 {
  float lo, scale, inv, offset;
  static AffineS4 FromRange(float lo, float hi);
  int Quantize(float w) const;  // clamp(rint((w − lo) · inv), 0, 15) − 8
  // The value the packed code of w stands for.
  float RoundToGrid(float w) const { return offset + scale * static_cast<float>(Quantize(w)); }
};

// w: [n, k] row-major; bias: [n] or nullptr. Errors (INVALID_ARGUMENT): n or k not positive,
// k > 65536 (int32 accumulators), group_size not 32/64/128 or not dividing k (S4).
// PackS4's grid ([n, k / group_size, 2] or null) gives each (row, group) its affine range lo, hi
// (values outside are clamped); null: the group's min and max.
StatusOr<PackedS8> PackS8(const float* w, const float* bias, int n, int k,
                          const QuantKernelTable& t);
StatusOr<PackedS4> PackS4(const float* w, const float* bias, int n, int k, int group_size,
                          const QuantKernelTable& t, const float* grid = nullptr);

// Per-ISA tables (defined in kernels/<isa>/); reach them through the registry
// (kernels/registry.h), which checks the CPU first.
const QuantKernelTable& ScalarQuantKernels();
const QuantKernelTable& Avx2QuantKernels();
const QuantKernelTable& AvxVnniQuantKernels();
const QuantKernelTable& Avx512VnniQuantKernels();
const QuantKernelTable& AmxQuantKernels();

}  // namespace encserve::kernels
