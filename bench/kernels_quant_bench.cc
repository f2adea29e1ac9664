// Quantised GEMM throughput per table at the model's shapes (one thread): y[M, N] = x[M, K] · Wᵀ
// with int8 weights (gemm_s8) and int4 g64 weights (gemm_s4), the activations quantised once per
// GEMM (BM_QuantizeRows measures that cost separately; BM_*Total include it). GOP/s counts
// 2·M·N·K per iteration. BM_Peak/Vnni512 / BM_Peak/Vnni256: independent vpdpbusd on registers, the
// single-core ceiling the GEMMs are reported against; BM_Peak/AmxInt8: tdpbusd into 4 C tiles;
// BM_Peak/AmxBf16: the same with tdpbf16ps (GFLOP/s, the ceiling for bf16 GEMMs on AMX).
// Run: kernels_quant_bench --benchmark_filter='Peak|GemmS8/(avx512_vnni|amx)/512/384/1536'
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cstring>
#include <random>
#include <vector>

#include "kernels/peak.h"
#include "kernels/quant.h"
#include "kernels/registry.h"

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

// Peak probes (kernels/peak.h): vpdpbusd zmm and VEX ymm (AVX-VNNI), vpmaddubsw ymm, and the
// AMX tile multiplies (4 independent C tiles from A and B tiles held in registers).
void BM_Peak(benchmark::State& state, const char* name) {
  const PeakProbe* p = PeakProbeNamed(name);
  if (p == nullptr) {
    state.SkipWithError("this CPU lacks the instruction");
    return;
  }
  const long iters = std::strncmp(name, "amx", 3) == 0 ? 20000 : 100000;
  for (auto _ : state) p->loop(iters);
  SetOps(state, p->ops_per_iter * iters);
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

BENCHMARK_CAPTURE(BM_Peak, Vnni512, "vnni512");
BENCHMARK_CAPTURE(BM_Peak, Vnni256, "vnni256");
BENCHMARK_CAPTURE(BM_Peak, Maddubs256, "maddubs256");
BENCHMARK_CAPTURE(BM_Peak, AmxInt8, "amx_int8");
BENCHMARK_CAPTURE(BM_Peak, AmxBf16, "amx_bf16");
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
