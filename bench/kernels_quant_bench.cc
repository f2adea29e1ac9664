// Quantised GEMM throughput per table at the model's shapes (one thread): y[M, N] = x[M, K] · Wᵀ
// with int8 weights (gemm_s8) and int4 g64 weights (gemm_s4), the activations quantised once per
// GEMM (BM_QuantizeRows measures that cost separately; BM_*Total include it). GOP/s counts
// 2·M·N·K per iteration. BM_PeakVnni512 / BM_PeakVnni256: independent vpdpbusd on registers, the
// single-core ceiling the GEMMs are reported against; BM_PeakAmxInt8: tdpbusd into 4 C tiles;
// BM_PeakAmxBf16: the same with tdpbf16ps (GFLOP/s, the ceiling for bf16 GEMMs on AMX).
// Run: kernels_quant_bench --benchmark_filter='Peak|GemmS8/(avx512_vnni|amx)/512/384/1536'
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <random>
#include <vector>

#include "kernels/quant.h"
#include "kernels/registry.h"
#include "peak_probe.h"

namespace encserve::kernels {
namespace {

struct Data {
  std::vector<float> x, w, y;
};

Data MakeData(int m, int k, int n) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  Data data{std::vector<float>(size_t(m) * k), std::vector<float>(size_t(n) * k),
            std::vector<float>(size_t(m) * n)};
  for (auto& v : data.x) v = d(rng);
  for (auto& v : data.w) v = d(rng);
  return data;
}

void SetOps(benchmark::State& state, double ops) {
  state.counters["GOP/s"] = benchmark::Counter(ops, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::kIs1000);
}

// kind: 0 = int8, 1 = int4 g64; total: also quantise the activations every iteration.
void BM_Gemm(benchmark::State& state, const char* isa, int kind, bool total) {
  const QuantKernelTable* t = QuantKernelsNamed(isa);
  if (t == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  Data d = MakeData(m, k, n);
  auto w8 = PackS8(d.w.data(), nullptr, n, k, *t);
  auto w4 = PackS4(d.w.data(), nullptr, n, k, 64, *t);
  if (!w8.ok() || !w4.ok()) {
    state.SkipWithError("pack failed");
    return;
  }
  QuantizedRows xq;
  QuantizeRows(*t, d.x.data(), m, k, nullptr, &xq);
  for (auto _ : state) {
    if (total) QuantizeRows(*t, d.x.data(), m, k, nullptr, &xq);
    if (kind == 0) {
      t->gemm_s8(xq, *w8, d.y.data(), n, 0, n, Epilogue::kBias);
    } else {
      t->gemm_s4(xq, *w4, d.y.data(), n, 0, n, Epilogue::kBias);
    }
    benchmark::DoNotOptimize(d.y.data());
    benchmark::ClobberMemory();
  }
  SetOps(state, 2.0 * m * n * k);
}

void BM_QuantizeRows(benchmark::State& state, const char* isa) {
  const QuantKernelTable* t = QuantKernelsNamed(isa);
  if (t == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int m = state.range(0), k = state.range(1);
  Data d = MakeData(m, k, 1);
  QuantizedRows xq;
  for (auto _ : state) {
    QuantizeRows(*t, d.x.data(), m, k, nullptr, &xq);
    benchmark::DoNotOptimize(xq.data.data());
  }
  state.counters["Gelem/s"] = benchmark::Counter(
      double(m) * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// Peak probes (bench/peak_probe.h): vpdpbusd, zmm and VEX ymm (AVX-VNNI).
#define ENCSERVE_VNNI_Z(i) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #i "\n\t"
#define ENCSERVE_VNNI_Y(i) "%{vex%} vpdpbusd %%ymm14, %%ymm15, %%ymm" #i "\n\t"
ENCSERVE_PEAK_LOOP_ZMM(PeakLoop512, "avx512f,avx512vnni",
                       "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
                       "vpxord %%zmm30, %%zmm30, %%zmm30\n\t",
                       ENCSERVE_VNNI_Z)
ENCSERVE_PEAK_LOOP_YMM(PeakLoop256, "avx2,avxvnni",
                       "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n\tvpxor %%ymm14, %%ymm14, %%ymm14\n\t",
                       ENCSERVE_VNNI_Y)

void BM_PeakVnni512(benchmark::State& state) {
  if (QuantKernelsNamed("avx512_vnni") == nullptr) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  const long iters = 100000;
  for (auto _ : state) PeakLoop512(iters);
  SetOps(state, 2.0 * 64 * 24 * iters);  // 64 u8·s8 products per instruction
}

void BM_PeakVnni256(benchmark::State& state) {
  if (QuantKernelsNamed("avx_vnni") == nullptr) {
    state.SkipWithError("no AVX-VNNI");
    return;
  }
  const long iters = 100000;
  for (auto _ : state) PeakLoop256(iters);
  SetOps(state, 2.0 * 32 * 12 * iters);
}

// AMX ceiling: tdpbusd into 4 independent C tiles (16×16 int32 each, 16·16·64 products per
// instruction) from two A and two B tiles that stay in registers.
struct alignas(64) AmxConfig {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

template <bool kBf16>
void PeakLoopAmx(long iters) {
  AmxConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  __asm__ volatile("ldtilecfg %0" : : "m"(cfg));  // GCC 12 drops stores before the builtin
  _tile_zero(4);
  _tile_zero(5);
  _tile_zero(6);
  _tile_zero(7);
  for (long i = 0; i < iters; ++i) {
    if constexpr (kBf16) {  // zero tiles: bf16 +0 products, no denormal or NaN slow paths
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    } else {
      _tile_dpbusd(0, 4, 6);
      _tile_dpbusd(1, 4, 7);
      _tile_dpbusd(2, 5, 6);
      _tile_dpbusd(3, 5, 7);
    }
  }
  // No tilerelease: the amx kernels configure each thread once (the same shapes as here).
}

void BM_PeakAmxInt8(benchmark::State& state) {
  if (QuantKernelsNamed("amx") == nullptr) {
    state.SkipWithError("no AMX-INT8");
    return;
  }
  const long iters = 20000;
  for (auto _ : state) PeakLoopAmx<false>(iters);
  SetOps(state, 2.0 * 16 * 16 * 64 * 4 * iters);
}

// 16 × 16 fp32 outputs, 32 bf16 products each, per tdpbf16ps.
void BM_PeakAmxBf16(benchmark::State& state) {
  if (!DetectCpu().amx_bf16) {
    state.SkipWithError("no AMX-BF16");
    return;
  }
  const long iters = 20000;
  for (auto _ : state) PeakLoopAmx<true>(iters);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * 16 * 16 * 32 * 4 * iters,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int m : {9, 16, 288, 512, 4096}) {
    for (auto [k, n] : {std::pair{384, 384}, {384, 1536}, {1536, 384}, {384, 1152}})
      b->Args({m, k, n});
  }
}

void SmallShapes(benchmark::internal::Benchmark* b) {
  b->Args({16, 384, 384})->Args({512, 384, 1536});
}

void BM_GemmS8(benchmark::State& state, const char* isa) {
  BM_Gemm(state, isa, 0, false);
}
void BM_GemmS4g64(benchmark::State& state, const char* isa) {
  BM_Gemm(state, isa, 1, false);
}
void BM_GemmS8WithQuantize(benchmark::State& state, const char* isa) {
  BM_Gemm(state, isa, 0, true);
}

BENCHMARK(BM_PeakVnni512);
BENCHMARK(BM_PeakVnni256);
BENCHMARK(BM_PeakAmxInt8);
BENCHMARK(BM_PeakAmxBf16);
BENCHMARK_CAPTURE(BM_GemmS8, amx, "amx")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmS8, avx512_vnni, "avx512_vnni")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmS8WithQuantize, amx, "amx")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmS4g64, avx512_vnni, "avx512_vnni")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmS8WithQuantize, avx512_vnni, "avx512_vnni")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmS8, avx_vnni, "avx_vnni")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmS4g64, avx_vnni, "avx_vnni")->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmS8, avx2, "avx2")->Apply(SmallShapes);
BENCHMARK_CAPTURE(BM_GemmS4g64, avx2, "avx2")->Apply(SmallShapes);
BENCHMARK_CAPTURE(BM_GemmS8, scalar, "scalar")->Args({16, 384, 384});
BENCHMARK_CAPTURE(BM_GemmS4g64, scalar, "scalar")->Args({16, 384, 384});
BENCHMARK_CAPTURE(BM_QuantizeRows, avx512_vnni, "avx512_vnni")
    ->Args({512, 384})
    ->Args({512, 1536})
    ->Args({4096, 384});
BENCHMARK_CAPTURE(BM_QuantizeRows, amx, "amx")->Args({512, 384})->Args({512, 1536});
BENCHMARK_CAPTURE(BM_QuantizeRows, avx_vnni, "avx_vnni")->Args({512, 384});
BENCHMARK_CAPTURE(BM_QuantizeRows, avx2, "avx2")->Args({512, 384});
BENCHMARK_CAPTURE(BM_QuantizeRows, scalar, "scalar")->Args({512, 384});

}  // namespace
}  // namespace encserve::kernels

BENCHMARK_MAIN();
