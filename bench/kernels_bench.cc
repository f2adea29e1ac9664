// fp32, bf16 and fp16-weight GEMM throughput per ISA at the model's shapes:
// y[M, N] = x[M, K] · Wᵀ (+ bias). bf16 includes the fp32 → bf16 conversion of x (the engine does
// it per GEMM); on the amx table it is tdpbf16ps, on avx512 vdpbf16ps. The fp32 GEMMs also
// report "%FMA peak" against the single-core fp32 ceiling measured in-process by the same probe
// as BM_Peak/Fma512 / BM_Peak/Fma256 (independent vfmadd231ps chains held in registers), once per
// process, and "%FMA adj" against probe slices interleaved with the GEMM (the steadier figure
// on a VM whose clock drifts);
// BM_Peak/Bf16Dot512: the vdpbf16ps ceiling of the avx512 bf16 GEMM.
// Run: build/kernels_bench --benchmark_filter='Peak|Gemm'
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ctime>
#include <random>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/peak.h"

namespace encserve::kernels {
namespace {

// Peak probes (kernels/peak.h): vfmadd231ps, and vdpbf16ps (AVX512-BF16: two bf16 products
// per fp32 lane, the ceiling of the avx512 bf16 GEMM).
constexpr long kPeakIters = 100000;

void BM_Peak(benchmark::State& state, const char* name) {
  const PeakProbe* p = PeakProbeNamed(name);
  if (p == nullptr) {
    state.SkipWithError("this CPU lacks the instruction");
    return;
  }
  for (auto _ : state) p->loop(kPeakIters);
  state.counters["GFLOP/s"] = benchmark::Counter(p->ops_per_iter * kPeakIters,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

const PeakProbe& FmaProbe(bool zmm) {
  return *PeakProbeNamed(zmm ? "fma512" : "fma256");
}

// Best of 40 short probe runs (GFLOP/s), measured once per process, for the GEMMs' "%FMA peak":
// the zmm probe for the AVX-512 tables, the ymm probe for avx2 and scalar.
double MeasureFmaPeak(bool zmm) {
  double best = 0;
  for (int rep = 0; rep < 40; ++rep) {  // the first runs also bring the core up to speed
    best = std::max(best, RunPeakProbe(FmaProbe(zmm), kPeakIters));
  }
  return best;
}

double FmaPeakGflops(bool zmm) {
  if (zmm) {
    static const double p512 = MeasureFmaPeak(true);
    return p512;
  }
  static const double p256 = MeasureFmaPeak(false);
  return p256;
}

void SetFlops(benchmark::State& state, double flops) {
  state.counters["GFLOP/s"] = benchmark::Counter(
      flops, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// One GEMM problem from the benchmark's arguments {m, k, n}: x [m, k] and W [n, k] ~ N(0, 1).
struct Problem {
  explicit Problem(const benchmark::State& state)
      : m(state.range(0)),
        k(state.range(1)),
        n(state.range(2)),
        x(size_t(m) * k),
        w(size_t(n) * k),
        y(size_t(m) * n) {
    std::mt19937 rng(1);
    std::normal_distribution<float> d;
    for (auto& v : x) v = d(rng);
    for (auto& v : w) v = d(rng);
  }
  int m, k, n;
  std::vector<float> x, w, y;
};

void BM_GemmF32(benchmark::State& state, Isa isa) {
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  Problem p(state);
  const int m = p.m, k = p.k, n = p.n;
  std::vector<float>&x = p.x, &w = p.w, &y = p.y;
  PackedF32 packed = PackF32(w.data(), nullptr, n, k, t->gemm_nr);
  const double t0 = ThreadCpuSeconds();  // thread CPU time, as the benchmark's own CPU column
  for (auto _ : state) {
    t->gemm_f32(x.data(), k, m, packed, y.data(), n, 0, n, Epilogue::kBias);
    benchmark::DoNotOptimize(y.data());
  }
  const double secs = ThreadCpuSeconds() - t0;
  const double flops = 2.0 * m * n * k;
  SetFlops(state, flops);
  if (KernelsFor(Isa::kAvx2) != nullptr && secs > 0) {
    const bool zmm = isa >= Isa::kAvx512;
    const double peak = FmaPeakGflops(zmm);
    state.counters["%FMA peak"] = 100.0 * flops * state.iterations() / secs * 1e-9 / peak;
    // The same ratio from interleaved slices: 20 rounds of ~1 ms of this GEMM, each followed by
    // ~1 ms of the peak probe, so both see the same clock (this VM's moves by up to 10 % within
    // minutes, which the once-per-process peak above cannot follow).
    const int reps = std::max(1, static_cast<int>(2e8 / flops));
    double gemm_s = 0, probe_s = 0, probe_flops = 0;
    for (int round = 0; round < 20; ++round) {
      double s0 = ThreadCpuSeconds();
      for (int r = 0; r < reps; ++r) {
        t->gemm_f32(x.data(), k, m, packed, y.data(), n, 0, n, Epilogue::kBias);
        benchmark::DoNotOptimize(y.data());
      }
      gemm_s += ThreadCpuSeconds() - s0;
      s0 = ThreadCpuSeconds();
      for (int r = 0; r < 3; ++r) FmaProbe(zmm).loop(kPeakIters);
      probe_s += ThreadCpuSeconds() - s0;
      probe_flops += 3 * FmaProbe(zmm).ops_per_iter * kPeakIters;
    }
    state.counters["%FMA adj"] = 100.0 * (flops * reps * 20 / gemm_s) / (probe_flops / probe_s);
    state.counters["adj peak GFLOP/s"] = probe_flops / probe_s * 1e-9;
    state.counters["peak GFLOP/s"] = peak;
  }
}

void BM_GemmBf16(benchmark::State& state, Isa isa) {
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr || t->gemm_bf16_dot == nullptr) {
    state.SkipWithError("no bf16 dot products at this ISA on this CPU");
    return;
  }
  Problem p(state);
  const int m = p.m, k = p.k, n = p.n;
  std::vector<float>&x = p.x, &w = p.w, &y = p.y;
  const PackedBf16Pairs packed =
      PackBf16Pairs(w.data(), nullptr, n, k, t->gemm_nr, t->bf16_k_align);
  const int ldxb = Bf16Stride(*t, k);
  std::vector<uint16_t> xb(size_t(m + t->bf16_mr - 1) * ldxb);
  for (auto _ : state) {
    t->convert_bf16(x.data(), m, k, xb.data(), ldxb);
    t->gemm_bf16_dot(xb.data(), ldxb, m, packed, y.data(), n, 0, n, Epilogue::kBias);
    benchmark::DoNotOptimize(y.data());
  }
  SetFlops(state, 2.0 * m * n * k);
}

void BM_GemmF16Weights(benchmark::State& state, Isa isa) {
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  Problem p(state);
  const int m = p.m, k = p.k, n = p.n;
  std::vector<float>&x = p.x, &w = p.w, &y = p.y;
  const PackedHalf packed = PackHalf(w.data(), nullptr, n, k, t->gemm_nr, HalfFormat::kF16);
  for (auto _ : state) {
    t->gemm_half(x.data(), k, m, packed, y.data(), n, 0, n, Epilogue::kBias);
    benchmark::DoNotOptimize(y.data());
  }
  SetFlops(state, 2.0 * m * n * k);
}

void Shapes(benchmark::internal::Benchmark* b) {
  for (int m : {9, 16, 288, 512, 4096}) {
    for (auto [k, n] : {std::pair{384, 384}, {384, 1536}, {1536, 384}, {384, 1152}})
      b->Args({m, k, n});
  }
}

// One head of attention (MiniLM: head_dim 32, 12 heads interleaved in a [L, 3·384] qkv row) at
// sequence length L = range(0): GFLOP/s counts 4·L²·d (Q·Kᵀ and P·V).
void BM_AttentionHead(benchmark::State& state, Isa isa) {
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr) {
    state.SkipWithError("ISA not supported on this CPU");
    return;
  }
  const int len = state.range(0), d = 32, ld = 3 * 384;
  std::mt19937 rng(1);
  std::normal_distribution<float> dist;
  std::vector<float> qkv(static_cast<size_t>(len) * ld), out(static_cast<size_t>(len) * 384);
  for (auto& v : qkv) v = dist(rng);
  std::vector<float> scratch(static_cast<size_t>(3 * d + 10) * (len + 16));
  for (auto _ : state) {
    t->attention_head_f32(qkv.data(), qkv.data() + d, qkv.data() + 2 * d, ld, len, d, 0.17f,
                          out.data(), 384, scratch.data());
    benchmark::DoNotOptimize(out.data());
  }
  SetFlops(state, 4.0 * len * len * d);
}

BENCHMARK_CAPTURE(BM_Peak, Fma512, "fma512");
BENCHMARK_CAPTURE(BM_Peak, Fma256, "fma256");
BENCHMARK_CAPTURE(BM_Peak, Bf16Dot512, "bf16dot512");
BENCHMARK_CAPTURE(BM_GemmF32, avx512, Isa::kAvx512)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_AttentionHead, avx512, Isa::kAvx512)->Arg(16)->Arg(128)->Arg(256);
BENCHMARK_CAPTURE(BM_AttentionHead, avx2, Isa::kAvx2)->Arg(16)->Arg(128)->Arg(256);
BENCHMARK_CAPTURE(BM_GemmF32, avx2, Isa::kAvx2)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmF32, scalar, Isa::kScalar)->Args({16, 384, 384});
BENCHMARK_CAPTURE(BM_GemmBf16, amx, Isa::kAmx)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmBf16, avx512, Isa::kAvx512)->Apply(Shapes);
BENCHMARK_CAPTURE(BM_GemmF16Weights, avx512, Isa::kAvx512)->Apply(Shapes);

}  // namespace
}  // namespace encserve::kernels

BENCHMARK_MAIN();
