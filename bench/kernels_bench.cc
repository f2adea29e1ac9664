// fp32, bf16 and fp16-weight GEMM throughput per ISA at the model's shapes:
// y[M, N] = x[M, K] · Wᵀ (+ bias). bf16 includes the fp32 → bf16 conversion of x (the engine does
// it per GEMM); on the amx table it is tdpbf16ps, on avx512 vdpbf16ps.
// Run: build/kernels_bench --benchmark_filter=Gemm
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/kernels.h"

namespace encserve::kernels {
namespace {

void BM_GemmF32(benchmark::State& state, Isa isa) {
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(size_t(m) * k), w(size_t(n) * k), y(size_t(m) * n);
  for (auto& v : x) v = d(rng);
  for (auto& v : w) v = d(rng);
  PackedF32 packed = PackF32(w.data(), nullptr, n, k, t->gemm_nr);
  for (auto _ : state) {
    t->gemm_f32(x.data(), k, m, packed, y.data(), n, 0, n, Epilogue::kBias);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void SetGflops(benchmark::State& state, int m, int n, int k) {
  state.counters["GFLOP/s"] = benchmark::Counter(
      2.0 * m * n * k, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void BM_GemmBf16(benchmark::State& state, Isa isa) {
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr || t->gemm_bf16_dot == nullptr) {
    state.SkipWithError("no bf16 dot products at this ISA on this CPU");
    return;
  }
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(size_t(m) * k), w(size_t(n) * k), y(size_t(m) * n);
  for (auto& v : x) v = d(rng);
  for (auto& v : w) v = d(rng);
  const PackedBf16Pairs packed =
      PackBf16Pairs(w.data(), nullptr, n, k, t->gemm_nr, t->bf16_k_align);
  const int ldxb = Bf16Stride(*t, k);
  std::vector<uint16_t> xb(size_t(m + t->bf16_mr - 1) * ldxb);
  for (auto _ : state) {
    t->convert_bf16(x.data(), m, k, xb.data(), ldxb);
    t->gemm_bf16_dot(xb.data(), ldxb, m, packed, y.data(), n, 0, n, Epilogue::kBias);
    benchmark::DoNotOptimize(y.data());
  }
  SetGflops(state, m, n, k);
}

void BM_GemmF16Weights(benchmark::State& state, Isa isa) {
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(size_t(m) * k), w(size_t(n) * k), y(size_t(m) * n);
  for (auto& v : x) v = d(rng);
  for (auto& v : w) v = d(rng);
  const PackedHalf packed = PackHalf(w.data(), nullptr, n, k, t->gemm_nr, HalfFormat::kF16);
  for (auto _ : state) {
    t->gemm_half(x.data(), k, m, packed, y.data(), n, 0, n, Epilogue::kBias);
    benchmark::DoNotOptimize(y.data());
  }
  SetGflops(state, m, n, k);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int m : {9, 16, 288, 512, 4096}) {
    for (auto [k, n] : {std::pair{384, 384}, {384, 1536}, {1536, 384}, {384, 1152}})
      b->Args({m, k, n});
  }
}

BENCHMARK_CAPTURE(BM_GemmF32, avx512, Isa::kAvx512)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmF32, avx2, Isa::kAvx2)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmF32, scalar, Isa::kScalar)->Args({16, 384, 384});
BENCHMARK_CAPTURE(BM_GemmBf16, amx, Isa::kAmx)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmBf16, avx512, Isa::kAvx512)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmF16Weights, avx512, Isa::kAvx512)->Apply(Shapes);

}  // namespace
}  // namespace encserve::kernels

BENCHMARK_MAIN();
