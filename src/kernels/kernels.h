// The kernel table: every compute primitive the model needs, one table per ISA, chosen at run
// time (Kernels()) or explicitly (KernelsFor()). Each entry has a naive twin in kernels/ref.h
// that is the test oracle. Tensors are row-major float32 unless a name says otherwise.
#pragma once

#include "kernels/cpu_features.h"
#include "kernels/packed.h"

namespace encserve::kernels {

enum class Epilogue { kBias, kBiasGelu };

struct KernelTable {
  Isa isa;
  const char* name;
  int gemm_nr;  // panel width PackF32 must use for this table's gemm
  int gemm_mr;  // rows per micro-tile (M partitions are best made in multiples of it)

  // y[m, n0:n1] = epilogue(x[m, k] · Wᵀ[k, n0:n1] + bias); W packed with gemm_nr; n0 % nr == 0.
  void (*gemm_f32)(const float* x, int ldx, int m, const PackedF32& w, float* y, int ldy, int n0,
                   int n1, Epilogue ep);
  // out[m, n] = LayerNorm(x[m, n] (+ residual[m, n])) * gamma + beta; out may alias x.
  void (*layernorm_f32)(const float* x, const float* residual, const float* gamma,
                        const float* beta, float eps, float* out, int m, int n);
  // One sequence, one head: out[L, d] = softmax(scale · Q Kᵀ) V, where Q/K/V rows have strides
  // ld_qkv. scratch holds at least (3d + 10) · (L + 16) floats.
  void (*attention_head_f32)(const float* q, const float* k, const float* v, int ld_qkv,
                             int seq_len, int head_dim, float scale, float* out, int ld_out,
                             float* scratch);
  // As gemm_f32 with 16-bit weights (fp16 or bf16, PackHalf with gemm_nr) widened to fp32.
  void (*gemm_half)(const float* x, int ldx, int m, const PackedHalf& w, float* y, int ldy, int n0,
                    int n1, Epilogue ep);

  // AVX512-BF16 / AMX-BF16 only (nullptr elsewhere): y[m, n0:n1] = epilogue(xb · Wᵀ + bias)
  // where xb holds x converted by convert_bf16 (rows of ldxb = Bf16Stride(table, k) bf16) and W
  // is PackBf16Pairs(nr = gemm_nr, k_align = bf16_k_align); bf16 products, fp32 accumulation
  // (vdpbf16ps or tdpbf16ps). The kernel may read up to bf16_mr − 1 rows of xb past m (their
  // results are not stored), so allocate m + bf16_mr − 1 rows.
  void (*gemm_bf16_dot)(const uint16_t* xb, int ldxb, int m, const PackedBf16Pairs& w, float* y,
                        int ldy, int n0, int n1, Epilogue ep) = nullptr;
  // x[m, k] fp32 → out[m, ldo] bf16 (round to nearest even), columns k .. ldo−1 set to zero.
  void (*convert_bf16)(const float* x, int m, int k, uint16_t* out, int ldo) = nullptr;
  // out[m, k] = (x[m, k] · diag(col_scale)) · blockdiag(H64, …): a 64-point fast Walsh–Hadamard
  // transform of each block of 64 columns (Sylvester order, entries ±1, not normalised:
  // H64 · H64 = 64 I). k % 64 == 0; col_scale may be null; out may alias x. Used to rotate the
  // inputs of int4 GEMMs whose weights were rotated at load time (model/linear.h).
  void (*hadamard64)(const float* x, const float* col_scale, float* out, int m, int k) = nullptr;
  int bf16_k_align = 2;  // even; PackBf16Pairs and convert_bf16 rows pad k to a multiple of it
  // Whether bf16 models use gemm_bf16_dot by default (else bf16 weights widened to fp32 by
  // gemm_half, fp32 activations and FMAs). AMX-BF16: always. AVX512-BF16 without tiles: on AMD
  // (Zen 4/5 issue vdpbf16ps at twice the products per cycle of vfmadd231ps) but not on Intel,
  // where the measured vdpbf16ps peak is half the FMA peak (Sapphire Rapids: 107 vs 215
  // GFLOP/s per core), so widening is faster there and keeps the activations in fp32.
  bool bf16_dot_preferred = false;
  int bf16_mr = 1;  // rows per bf16 micro-tile: row partitions are best made in multiples
};

// Whether a bf16 model packed for `t` uses gemm_bf16_dot: `force_dot` (true / false) or, unset,
// the table's preference (t.bf16_dot_preferred); never without gemm_bf16_dot.
inline bool UseBf16Dot(const KernelTable& t, const bool* force_dot = nullptr) {
  if (t.gemm_bf16_dot == nullptr) return false;
  return force_dot != nullptr ? *force_dot : t.bf16_dot_preferred;
}

// Row stride (in bf16 values) of convert_bf16 output for gemm_bf16_dot: k rounded up to
// t.bf16_k_align.
inline int Bf16Stride(const KernelTable& t, int k) {
  return (k + t.bf16_k_align - 1) / t.bf16_k_align * t.bf16_k_align;
}

// The table for the active ISA (ActiveIsa()).
const KernelTable& Kernels();
// The table for a given ISA (the best registry entry at or below it, kernels/registry.h), or
// nullptr when the ISA is above BestSupportedIsa().
const KernelTable* KernelsFor(Isa isa);

// Per-ISA tables (defined in kernels/<isa>/); reach them through KernelsFor(), which checks
// the CPU first.
const KernelTable& ScalarKernels();
const KernelTable& Avx2Kernels();
const KernelTable& Avx512Kernels();
// The avx512 table under Isa::kAmx (AMX bf16 GEMM when the CPU has AMX-BF16).
const KernelTable& AmxKernels();

}  // namespace encserve::kernels
