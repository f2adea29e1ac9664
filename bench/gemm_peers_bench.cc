// encserve's GEMMs next to oneDNN and OpenBLAS at the model's shapes, one thread each, in one
// binary: y[M, N] = x[M, K] · Wᵀ + bias with W [N, K] (PyTorch layout) and x fp32 row-major.
// Names are <precision>/<implementation>/M/K/N; the counter GFLOP/s counts 2·M·N·K per call
// (read GOP/s for int8); the label says which kernel ran (encserve table, oneDNN implementation,
// OpenBLAS core). Weights are packed / reordered once outside the timed loop, as a server does.
//   f32/encserve        Kernels().gemm_f32 on PackF32 weights, bias fused
//   f32/onednn          matmul f32, weights format_tag::any (reordered once), bias fused
//   f32/openblas        cblas_sgemm(RowMajor, NoTrans, Trans) on W as given; y preset to the
//                       bias rows, beta = 1 (the bias copy is timed)
//   bf16/encserve       convert_bf16(x) + gemm_bf16_dot on PackBf16Pairs (timed together), the
//                       active table's (AMX tdpbf16ps); bf16/encserve_avx512: the vdpbf16ps one
//   bf16/onednn         reorder x f32→bf16 + matmul bf16×bf16→f32 (timed together)
//   int8/encserve       gemm_s8 on already quantised rows (per-row scales); PackS8 weights
//   int8/encserve+q     QuantizeRows + gemm_s8
//   int8/onednn_s8s8    matmul s8×s8→f32, x already quantised with one per-tensor scale,
//                       per-output-channel weight scales (output scales), bias
//   int8/onednn_u8s8    the same with u8 activations, no zero point (timing only, not checked)
//   int8/onednn_s8s8+q  reorder x f32→s8 (static per-tensor scale) + the s8×s8 matmul
// Every result except onednn_u8s8 is checked against encserve's fp32 GEMM (counter rel_err =
// max|Δy| / max|y|); a run over the tolerance is reported as an error.
// Run: scripts/bench_gemm_peers.sh (or gemm_peers_bench --benchmark_filter=/512/384/1536)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/quant.h"

#if ENCSERVE_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#endif
#if ENCSERVE_HAVE_OPENBLAS
#include <cblas.h>
#endif
#if ENCSERVE_HAVE_OPENMP
#include <omp.h>
#endif

namespace encserve::kernels {
namespace {

struct Problem {
  int m, k, n;
  std::vector<float> x, w, bias, yref;  // yref: encserve fp32 result
};

// One data set per shape, made once: x, W, bias ~ N(0, 1).
const Problem& GetProblem(const benchmark::State& state) {
  static std::map<std::tuple<int, int, int>, std::unique_ptr<Problem>> cache;
  const int m = state.range(0), k = state.range(1), n = state.range(2);
  auto& p = cache[{m, k, n}];
  if (p == nullptr) {
    p = std::make_unique<Problem>(Problem{m, k, n, {}, {}, {}, {}});
    std::mt19937 rng(1);
    std::normal_distribution<float> d;
    p->x.resize(size_t(m) * k);
    p->w.resize(size_t(n) * k);
    p->bias.resize(n);
    for (auto* v : {&p->x, &p->w, &p->bias}) {
      for (float& f : *v) f = d(rng);
    }
    p->yref.resize(size_t(m) * n);
    const KernelTable& t = Kernels();
    PackedF32 w = PackF32(p->w.data(), p->bias.data(), n, k, t.gemm_nr);
    t.gemm_f32(p->x.data(), k, m, w, p->yref.data(), n, 0, n, Epilogue::kBias);
  }
  return *p;
}

// Sets GFLOP/s; with tol > 0 also checks y against the fp32 reference.
void Finish(benchmark::State& state, const Problem& p, const std::vector<float>& y, double tol) {
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * p.m * p.n * p.k, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
  if (tol <= 0) return;
  double err = 0, ymax = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    err = std::max(err, double(std::fabs(y[i] - p.yref[i])));
    ymax = std::max(ymax, double(std::fabs(p.yref[i])));
  }
  state.counters["rel_err"] = err / ymax;
  if (!(err <= tol * ymax)) state.SkipWithError("result differs from the fp32 reference");
}

void Sink(std::vector<float>& y) {
  benchmark::DoNotOptimize(y.data());
  benchmark::ClobberMemory();
}

// ---- encserve ----

void BM_EncF32(benchmark::State& state) {
  const Problem& p = GetProblem(state);
  const KernelTable& t = Kernels();
  PackedF32 w = PackF32(p.w.data(), p.bias.data(), p.n, p.k, t.gemm_nr);
  std::vector<float> y(size_t(p.m) * p.n);
  for (auto _ : state) {
    t.gemm_f32(p.x.data(), p.k, p.m, w, y.data(), p.n, 0, p.n, Epilogue::kBias);
    Sink(y);
  }
  state.SetLabel(t.name);
  Finish(state, p, y, 1e-4);
}

// As model/linear.cc calls it: x converted to bf16 per call, then the pair-packed GEMM.
void BM_EncBf16(benchmark::State& state, Isa isa) {
  const Problem& p = GetProblem(state);
  const KernelTable* t = KernelsFor(isa);
  if (t == nullptr || t->gemm_bf16_dot == nullptr) {
    state.SkipWithError("no bf16 dot-product GEMM in this kernel table");
    return;
  }
  PackedBf16Pairs w =
      PackBf16Pairs(p.w.data(), p.bias.data(), p.n, p.k, t->gemm_nr, t->bf16_k_align);
  const int ldxb = Bf16Stride(*t, p.k);
  std::vector<uint16_t> xb(size_t(p.m + t->bf16_mr - 1) * ldxb);  // whole AMX tiles may be read
  std::vector<float> y(size_t(p.m) * p.n);
  for (auto _ : state) {
    t->convert_bf16(p.x.data(), p.m, p.k, xb.data(), ldxb);
    t->gemm_bf16_dot(xb.data(), ldxb, p.m, w, y.data(), p.n, 0, p.n, Epilogue::kBias);
    Sink(y);
  }
  // Say which kernel ran when a table reuses the avx512 (vdpbf16ps) one.
  const KernelTable* avx512 = KernelsFor(Isa::kAvx512);
  const bool vdp = isa != Isa::kAvx512 && avx512 && avx512->gemm_bf16_dot == t->gemm_bf16_dot;
  state.SetLabel(std::string(t->name) + (vdp ? " (avx512 vdpbf16ps kernel)" : ""));
  Finish(state, p, y, 3e-2);
}

void BM_EncS8(benchmark::State& state, bool with_quantize) {
  const Problem& p = GetProblem(state);
  const QuantKernelTable& t = QuantKernels();
  auto w = PackS8(p.w.data(), p.bias.data(), p.n, p.k, t);
  if (!w.ok()) {
    state.SkipWithError("PackS8 failed");
    return;
  }
  QuantizedRows xq;
  QuantizeRows(t, p.x.data(), p.m, p.k, nullptr, &xq);
  std::vector<float> y(size_t(p.m) * p.n);
  for (auto _ : state) {
    if (with_quantize) QuantizeRows(t, p.x.data(), p.m, p.k, nullptr, &xq);
    t.gemm_s8(xq, *w, y.data(), p.n, 0, p.n, Epilogue::kBias);
    Sink(y);
  }
  state.SetLabel(t.name);
  Finish(state, p, y, 0.1);
}

// ---- OpenBLAS ----
#if ENCSERVE_HAVE_OPENBLAS
void BM_OpenblasF32(benchmark::State& state) {
  const Problem& p = GetProblem(state);
  std::vector<float> y(size_t(p.m) * p.n);
  for (auto _ : state) {
    for (int i = 0; i < p.m; ++i) std::memcpy(&y[size_t(i) * p.n], p.bias.data(), p.n * 4);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p.m, p.n, p.k, 1.0f, p.x.data(), p.k,
                p.w.data(), p.k, 1.0f, y.data(), p.n);
    Sink(y);
  }
  state.SetLabel(std::string("core ") + openblas_get_corename());
  Finish(state, p, y, 1e-4);
}
#endif

// ---- oneDNN (v2 API: Debian 12 ships 2.6) ----
#if ENCSERVE_HAVE_DNNL
using dnnl::memory;
using dt = memory::data_type;
using tag = memory::format_tag;

dnnl::engine& Engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

struct Matmul {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
  memory src, wts, bias, dst;
  void Run(dnnl::stream& s) {
    prim.execute(
        s,
        {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wts}, {DNNL_ARG_BIAS, bias}, {DNNL_ARG_DST, dst}});
  }
};

// A matmul for exactly this M: src [M, K] of src_type, weights of w_type in the layout oneDNN
// picks (format_tag::any) reordered once from user_w ([N, K] row-major = {K, N} tag ba), f32
// bias and dst. out_scales: per output channel (v2 output scales: dst = scale · (acc + bias)).
Matmul MakeMatmul(const Problem& p, dt src_type, dt w_type, memory user_w, float* bias,
                  const std::vector<float>& out_scales, std::vector<float>& y) {
  const memory::dim m = p.m, k = p.k, n = p.n;
  memory::desc src_md({m, k}, src_type, tag::ab), w_md({k, n}, w_type, tag::any);
  memory::desc b_md({1, n}, dt::f32, tag::ab), d_md({m, n}, dt::f32, tag::ab);
  dnnl::primitive_attr attr;
  if (!out_scales.empty()) attr.set_output_scales(1 << 1, out_scales);
  Matmul mm;
  mm.pd =
      dnnl::matmul::primitive_desc(dnnl::matmul::desc(src_md, w_md, b_md, d_md), attr, Engine());
  mm.prim = dnnl::matmul(mm.pd);
  mm.src = memory(mm.pd.src_desc(), Engine());
  mm.wts = memory(mm.pd.weights_desc(), Engine());
  dnnl::stream s(Engine());
  dnnl::reorder(user_w, mm.wts).execute(s, user_w, mm.wts);
  s.wait();
  mm.bias = memory(b_md, Engine(), bias);
  mm.dst = memory(d_md, Engine(), y.data());
  return mm;
}

memory UserWeights(const Problem& p, dt type, void* data) {
  return memory({{p.k, p.n}, type, tag::ba}, Engine(), data);
}

void BM_DnnlF32(benchmark::State& state) {
  const Problem& p = GetProblem(state);
  std::vector<float> w = p.w, bias = p.bias, y(size_t(p.m) * p.n);
  Matmul mm =
      MakeMatmul(p, dt::f32, dt::f32, UserWeights(p, dt::f32, w.data()), bias.data(), {}, y);
  std::memcpy(mm.src.get_data_handle(), p.x.data(), p.x.size() * 4);
  dnnl::stream s(Engine());
  for (auto _ : state) {
    mm.Run(s);
    s.wait();
    Sink(y);
  }
  state.SetLabel(mm.pd.impl_info_str());
  Finish(state, p, y, 1e-4);
}

void BM_DnnlBf16(benchmark::State& state) {
  const Problem& p = GetProblem(state);
  std::vector<float> w = p.w, bias = p.bias, x = p.x, y(size_t(p.m) * p.n);
  Matmul mm =
      MakeMatmul(p, dt::bf16, dt::bf16, UserWeights(p, dt::f32, w.data()), bias.data(), {}, y);
  memory xf({{p.m, p.k}, dt::f32, tag::ab}, Engine(), x.data());
  dnnl::reorder to_bf16(xf, mm.src);
  dnnl::stream s(Engine());
  for (auto _ : state) {
    to_bf16.execute(s, xf, mm.src);
    mm.Run(s);
    s.wait();
    Sink(y);
  }
  state.SetLabel(mm.pd.impl_info_str());
  Finish(state, p, y, 3e-2);
}

// kind: 0 = s8×s8, 1 = u8×s8 (no zero point; timing only), 2 = s8×s8 with the f32→s8 reorder.
void BM_DnnlInt8(benchmark::State& state, int kind) {
  const Problem& p = GetProblem(state);
  // Weights per output channel (as PackS8), activations per tensor (static scale).
  std::vector<int8_t> wq(p.w.size());
  std::vector<float> scales(p.n), bias(p.n), y(size_t(p.m) * p.n);
  float xmax = 0;
  for (float v : p.x) xmax = std::max(xmax, std::fabs(v));
  const float a = xmax > 0 ? xmax / 127 : 1;
  for (int j = 0; j < p.n; ++j) {
    const float* row = &p.w[size_t(j) * p.k];
    float wmax = 0;
    for (int c = 0; c < p.k; ++c) wmax = std::max(wmax, std::fabs(row[c]));
    const float s = wmax > 0 ? wmax / 127 : 1;
    for (int c = 0; c < p.k; ++c) wq[size_t(j) * p.k + c] = int8_t(std::nearbyint(row[c] / s));
    scales[j] = a * s;
    bias[j] = p.bias[j] / scales[j];  // v2: the bias is added before the output scale
  }
  const dt src_type = kind == 1 ? dt::u8 : dt::s8;
  Matmul mm =
      MakeMatmul(p, src_type, dt::s8, UserWeights(p, dt::s8, wq.data()), bias.data(), scales, y);
  auto* xq = static_cast<int8_t*>(mm.src.get_data_handle());
  for (size_t i = 0; i < p.x.size(); ++i) {
    const float q = std::nearbyint(p.x[i] / a);
    xq[i] = int8_t(kind == 1 ? int(q) + 128 : int(q));  // u8: the byte pattern of q + 128
  }
  std::vector<float> x = p.x;
  memory xf({{p.m, p.k}, dt::f32, tag::ab}, Engine(), x.data());
  dnnl::primitive_attr qattr;
  qattr.set_output_scales(0, {1.0f / a});
  dnnl::reorder quantize(dnnl::reorder::primitive_desc(xf, mm.src, qattr));
  dnnl::stream s(Engine());
  for (auto _ : state) {
    if (kind == 2) quantize.execute(s, xf, mm.src);
    mm.Run(s);
    s.wait();
    Sink(y);
  }
  state.SetLabel(mm.pd.impl_info_str());
  Finish(state, p, y, kind == 1 ? 0 : 0.1);
}

std::string DnnlIsaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return "other (" + std::to_string(int(isa)) + ")";
  }
}
#endif

void Shapes(benchmark::internal::Benchmark* b) {
  for (int m : {1, 16, 288, 512, 4096}) {
    for (auto [k, n] : {std::pair{384, 384}, {384, 1536}, {1536, 384}, {384, 1152}})
      b->Args({m, k, n});
  }
}

// encserve benchmarks are registered first. oneDNN releases the AMX tiles after each call; our
// amx kernels re-check the tile configuration at every GEMM (kernels/amx/amx_tiles.h), so
// --benchmark_enable_random_interleaving is safe too (it once faulted with SIGILL).
void RegisterAll() {
  auto reg = [](const char* name, auto fn) {
    benchmark::RegisterBenchmark(name, fn)->Apply(Shapes);
  };
  reg("f32/encserve", BM_EncF32);
  const Isa active = Kernels().isa;
  reg("bf16/encserve", [active](benchmark::State& s) { BM_EncBf16(s, active); });
  // When the active table has its own bf16 GEMM (AMX), the AVX512-BF16 one for comparison.
  const KernelTable* avx512 = KernelsFor(Isa::kAvx512);
  if (active > Isa::kAvx512 && avx512 != nullptr && avx512->gemm_bf16_dot != nullptr &&
      avx512->gemm_bf16_dot != Kernels().gemm_bf16_dot)
    reg("bf16/encserve_avx512", [](benchmark::State& s) { BM_EncBf16(s, Isa::kAvx512); });
  reg("int8/encserve", [](benchmark::State& s) { BM_EncS8(s, false); });
  reg("int8/encserve+q", [](benchmark::State& s) { BM_EncS8(s, true); });
#if ENCSERVE_HAVE_OPENBLAS
  reg("f32/openblas", BM_OpenblasF32);
#endif
#if ENCSERVE_HAVE_DNNL
  reg("f32/onednn", BM_DnnlF32);
  reg("bf16/onednn", BM_DnnlBf16);
  reg("int8/onednn_s8s8", [](benchmark::State& s) { BM_DnnlInt8(s, 0); });
  reg("int8/onednn_u8s8", [](benchmark::State& s) { BM_DnnlInt8(s, 1); });
  reg("int8/onednn_s8s8+q", [](benchmark::State& s) { BM_DnnlInt8(s, 2); });
#endif
}

void AddContext() {
  benchmark::AddCustomContext("cpu_brand", DetectCpu().brand);
  benchmark::AddCustomContext("encserve_isa", Kernels().name);
  benchmark::AddCustomContext("encserve_quant_table", QuantKernels().name);
#if ENCSERVE_HAVE_OPENMP
  omp_set_num_threads(1);
  benchmark::AddCustomContext("omp_max_threads", std::to_string(omp_get_max_threads()));
#endif
#if ENCSERVE_HAVE_OPENBLAS
  openblas_set_num_threads(1);
  benchmark::AddCustomContext("openblas_config", openblas_get_config());
  benchmark::AddCustomContext("openblas_threads", std::to_string(openblas_get_num_threads()));
#endif
#if ENCSERVE_HAVE_DNNL
  const dnnl_version_t* v = dnnl_version();
  benchmark::AddCustomContext(
      "onednn_version",
      std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  benchmark::AddCustomContext("onednn_effective_isa", DnnlIsaName(dnnl::get_effective_cpu_isa()));
#endif
}

}  // namespace
}  // namespace encserve::kernels

int main(int argc, char** argv) {
  encserve::kernels::AddContext();  // sets the peer libraries to one thread first
  encserve::kernels::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
