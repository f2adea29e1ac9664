// The op profile (core/op_profile.h) and the peak probes (kernels/peak.h) behind
// `encserve bench-engine`'s efficiency and --profile figures: the profile counts each op of a real
// MiniLM forward pass the right number of times with exactly the flops EncoderFlops assigns the
// model, self times exclude nested ops, nothing is recorded when it is off; every probe this CPU
// supports runs, and each kernel set is measured against the instruction its GEMMs use.
#include "core/op_profile.h"

#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "kernels/kernels.h"
#include "kernels/peak.h"
#include "kernels/quant.h"
#include "kernels/registry.h"
#include "model/bert.h"
#include "test_util.h"

namespace encserve {
namespace {

TokenBatch Batch(const std::vector<int>& lengths) {
  TokenBatch b;
  int id = 1000;
  for (int len : lengths) {
    std::vector<int32_t> ids(len);
    for (auto& t : ids) t = id++;
    b.Add(ids, {});
  }
  return b;
}

std::map<std::string, profile::OpTotal> ByName() {
  std::map<std::string, profile::OpTotal> m;
  for (const auto& o : profile::Snapshot()) m[profile::Name(o.key)] = o;
  return m;
}

class OpProfileTest : public ::testing::TestWithParam<kernels::Precision> {};

TEST_P(OpProfileTest, CountsEveryOpOfAForwardPassWithTheModelsFlops) {
  const kernels::Precision p = GetParam();
  PrecisionOptions options;
  options.precision = p;
  auto model = BertModel::Load(testing::ModelDir(), kernels::Kernels(), options);
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  const BertConfig& c = (*model)->config().bert;
  const std::vector<int> lengths = {5, 16, 40, 9};
  const TokenBatch batch = Batch(lengths);
  Workspace ws;
  ThreadPool pool(2);

  profile::Reset();
  ASSERT_TRUE((*model)->Encode(batch, ws, pool).ok());
  EXPECT_TRUE(profile::Snapshot().empty()) << "recorded while off";

  profile::SetEnabled(true);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE((*model)->Encode(batch, ws, pool).ok());
  const double wall_ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  profile::SetEnabled(false);
  auto ops = ByName();

  const int layers = c.num_layers, h = c.hidden_size, inter = c.intermediate_size;
  const double m = batch.num_tokens();
  EXPECT_EQ(ops["embeddings"].calls, 1);
  EXPECT_EQ(ops["layernorm"].calls, 1 + 2 * layers);
  const std::string qkv = "gemm " + std::to_string(3 * h) + "x" + std::to_string(h);
  const std::string out = "gemm " + std::to_string(h) + "x" + std::to_string(h);
  const std::string up = "gemm+gelu " + std::to_string(inter) + "x" + std::to_string(h);
  const std::string down = "gemm " + std::to_string(h) + "x" + std::to_string(inter);
  for (const std::string& g : {qkv, out, up, down}) EXPECT_EQ(ops[g].calls, layers) << g;
  EXPECT_DOUBLE_EQ(ops[qkv].flops, layers * 2.0 * m * 3 * h * h);
  EXPECT_DOUBLE_EQ(ops[up].flops, layers * 2.0 * m * inter * h);
  EXPECT_EQ(ops["attention"].calls, layers);
  if (p == kernels::Precision::kInt8) {
    EXPECT_EQ(ops["quantize activations"].calls, 4 * layers);
  } else {
    EXPECT_EQ(ops.count("quantize activations"), 0u);
  }
  // The flops the profile saw are the model's (GEMMs + attention), as bench-engine counts them.
  double flops = 0, self_ns = 0;
  for (const auto& [name, o] : ops) {
    flops += o.flops;
    self_ns += o.ns;
    EXPECT_GE(o.ns, 0) << name;
  }
  EXPECT_NEAR(flops, EncoderFlops(c, lengths), 1e-9 * flops);
  // Self times: the nested scopes (quantisation inside a GEMM) are not counted twice.
  EXPECT_LE(self_ns, wall_ns * 1.0001);
  profile::Reset();
  EXPECT_TRUE(profile::Snapshot().empty());
}

INSTANTIATE_TEST_SUITE_P(Precisions, OpProfileTest,
                         ::testing::Values(kernels::Precision::kF32, kernels::Precision::kInt8),
                         [](const auto& info) { return kernels::PrecisionName(info.param); });

TEST(OpProfile, NestedScopesReportSelfTime) {
  profile::Reset();
  profile::SetEnabled(true);
  {
    const profile::Scope outer("outer");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const profile::Scope inner("inner", 4, 8, 100.0);
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  profile::SetEnabled(false);
  auto ops = ByName();
  EXPECT_GE(ops["inner 4x8"].ns, 40e6);
  EXPECT_GE(ops["outer"].ns, 20e6);
  EXPECT_LT(ops["outer"].ns, 40e6) << "the inner scope's time was not subtracted";
  EXPECT_EQ(ops["inner 4x8"].flops, 100.0);
  profile::Reset();
}

TEST(PeakProbes, EverySupportedProbeRuns) {
  int ran = 0;
  for (const kernels::PeakProbe& p : kernels::PeakProbes()) {
    if (kernels::PeakProbeNamed(p.name) == nullptr) continue;  // the CPU lacks the instruction
    EXPECT_GT(kernels::RunPeakProbe(p, 1000), 1.0) << p.name;
    ++ran;
  }
  EXPECT_GT(ran, 0);
  EXPECT_EQ(kernels::PeakProbeNamed("no-such-probe"), nullptr);
}

// Each kernel set is measured against the instruction its GEMMs are built on.
TEST(PeakProbes, EachKernelSetHasItsInstructionsProbe) {
  using kernels::Precision;
  const auto name = [](const kernels::PeakProbe* p) { return p ? std::string(p->name) : "none"; };
  for (const kernels::KernelSet* s : kernels::AvailableKernelSets()) {
    if (s->fp32 == nullptr) continue;
    const kernels::KernelTable& kt = s->fp32();
    const kernels::QuantKernelTable& qt = kernels::QuantKernelsFor(kt.isa);
    const std::string fma = kt.isa == kernels::Isa::kScalar ? "none"
                            : kt.isa == kernels::Isa::kAvx2 ? "fma256"
                                                            : "fma512";
    EXPECT_EQ(name(kernels::PeakProbeFor(Precision::kF32, kt, qt, false)), fma) << s->name;
    EXPECT_EQ(name(kernels::PeakProbeFor(Precision::kF16, kt, qt, false)), fma) << s->name;
    const std::map<std::string, std::string> quant = {{"amx", "amx_int8"},
                                                      {"avx512_vnni", "vnni512"},
                                                      {"avx_vnni", "vnni256"},
                                                      {"avx2", "maddubs256"},
                                                      {"scalar", "none"}};
    EXPECT_EQ(name(kernels::PeakProbeFor(Precision::kInt8, kt, qt, false)), quant.at(qt.name))
        << s->name;
    if (kt.gemm_bf16_dot != nullptr) {
      const bool amx = kt.isa == kernels::Isa::kAmx && kernels::DetectCpu().amx_bf16;
      EXPECT_EQ(name(kernels::PeakProbeFor(Precision::kBF16, kt, qt, true)),
                amx ? "amx_bf16" : "bf16dot512")
          << s->name;
    }
  }
}

}  // namespace
}  // namespace encserve
