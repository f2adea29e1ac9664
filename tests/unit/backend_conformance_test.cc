// The conformance suite every backend must pass (docs/backends.md, "Adding a backend"), run
// for every registered backend × precision through the library API (Pipeline), the same path
// the server uses:
// - embeddings vs the committed sentence-transformers goldens (1,028 real texts) within the
//   precision's limits, and STS-B Spearman printed per backend × precision;
// - the tiny cross-encoders' logits vs transformers;
// - a mixed-length batch equals the same texts one by one; concurrent callers;
// - the same clear errors for bad input, which never reaches the backend.
// A backend that lacks a precision, is not built, or computes no real answers (null: shapes
// only) is recorded as SKIPPED with the reason — never as passed.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "backends/registry.h"
#include "eval/datasets.h"
#include "eval/quality.h"
#include "kernels/cpu_features.h"
#include "native_pipeline.h"
#include "reference_data.h"
#include "test_util.h"

namespace encserve {
namespace {

using kernels::Precision;

struct Limits {
  double min_cos, mean_cos;    // vs sentence-transformers fp32
  double batch_cos = 0.99999;  // a text in a mixed batch vs the same text alone
};
Limits LimitsFor(Precision p) {
  switch (p) {
    case Precision::kF32:
      return {0.99999, 0.99999};
    case Precision::kBF16:
    case Precision::kF16:
      return {0.9999, 0.9999};
    case Precision::kInt8:
      return {0.99, 0.999};
    case Precision::kInt4:
      // Native int4: batches of >= 48 rows run the AMX-bf16 int4 path, a single text the VNNI
      // one (docs/kernels_quant.md).
      return {0.0, 0.98, 0.999};
  }
  return {1, 1};
}

// Backends that compute a precision with another scheme than the native kernels (which keep
// fp32 accumulation and per-row activation scales): their own limits, with the reason, as
// measured on the goldens and recorded in docs/backends.md. Others use LimitsFor(precision).
struct SchemeLimits {
  const char* backend;
  Precision precision;
  Limits limits;
  const char* why;
};
const SchemeLimits kSchemeLimits[] = {
    {"torch",
     Precision::kBF16,
     {0.9995, 0.9999, 0.9999},
     "bf16 activations end to end (LayerNorm and softmax too); oneDNN picks kernels by shape"},
    {"torch",
     Precision::kInt8,
     {0.94, 0.97, 0.95},
     "dynamic int8 as quantize_dynamic runs it: 7-bit activations (reduce_range) scaled per "
     "tensor over the whole padded batch, so a row's error depends on its batch-mates"},
    {"mlx",
     Precision::kBF16,
     {0.9995, 0.9999, 0.9999},
     "bf16 parameters and activations end to end"},
    {"mlx",
     Precision::kInt4,
     {0.93, 0.96, 0.999},
     "round-to-nearest affine 4-bit groups of 64, no calibration (what mlx quantize does)"},
    {"onnx",
     Precision::kInt8,
     {0.97, 0.99, 0.999},
     "NNCF static int8: per-tensor activation scales calibrated on 300 MS MARCO queries"},
};
// Backend × precision pairs too slow on a CPU for the whole check in every test run: parity
// on every `stride`-th golden text (short queries, sentences and passages alike) and no STS-B
// here (their STS-B ρ comes from configs/experiments/backends_compare.yaml, docs/analysis.md);
// the mixed-length batch has 8 texts instead of 24 and each concurrent caller 4 instead of 16.
constexpr size_t kStsStride = 4;  // STS-B pairs checked here: every 4th

struct SlowScheme {
  const char* backend;
  Precision precision;
  int stride;  // parity on every stride-th golden text
  const char* why;
};
// mlx's CPU GEMMs are single-threaded loops: ~7-16 texts/s on a Xeon, ~1-2 texts/s on an AVX2
// EPYC (Zen 3), where every mlx test together took ~15 minutes of the release run with stride 8
// and the full sizes below. Stride 32 still spans queries, sentences and passages (33 texts).
const SlowScheme kSlowSchemes[] = {
    {"mlx", Precision::kF32, 32, "mlx's CPU fp32 GEMMs: ~9 texts/s on a Xeon, ~2 on an AVX2 EPYC"},
    {"mlx", Precision::kBF16, 32, "mlx's CPU bf16 GEMMs are single-threaded loops (~16 texts/s)"},
    {"mlx", Precision::kF16, 32, "mlx's CPU fp16 GEMMs are single-threaded loops (~16 texts/s)"},
    {"mlx", Precision::kInt8, 32,
     "mlx's CPU quantized_matmul is a single-threaded loop (~7 texts/s, ~1 on an AVX2 EPYC)"},
    {"mlx", Precision::kInt4, 32,
     "mlx's CPU quantized_matmul is a single-threaded loop (~7 texts/s, ~1 on an AVX2 EPYC)"},
};
const SlowScheme* SlowSchemeOf(const std::string& backend, Precision p) {
  for (const SlowScheme& s : kSlowSchemes) {
    if (backend == s.backend && p == s.precision) return &s;
  }
  return nullptr;
}

Limits LimitsFor(const std::string& backend, Precision p, std::string* why = nullptr) {
  for (const SchemeLimits& s : kSchemeLimits) {
    if (backend == s.backend && p == s.precision) {
      if (why != nullptr) *why = s.why;
      return s.limits;
    }
  }
  return LimitsFor(p);
}

struct Param {
  std::string backend;
  Precision precision;
};
void PrintTo(const Param& p, std::ostream* os) {
  *os << p.backend << " " << kernels::PrecisionName(p.precision);
}

std::vector<Param> AllParams() {
  std::vector<Param> out;
  for (const backends::BackendSpec& s : backends::Registry()) {
    if (s.for_tests) continue;  // test doubles wrap a real backend
    for (Precision p :
         {Precision::kF32, Precision::kBF16, Precision::kF16, Precision::kInt8, Precision::kInt4}) {
      out.push_back({s.name, p});
    }
  }
  return out;
}

PipelineOptions Options(const Param& p, const std::string& model_dir) {
  testing::NativeLoad n;
  n.model_dir = model_dir;
  n.threads = 2;
  n.precision = p.precision;
  n.backend = p.backend;
  PipelineOptions o = testing::ToPipelineOptions(n);
  if (p.backend != "native") o.sections.erase("native");
  return o;
}

class BackendConformance : public ::testing::TestWithParam<Param> {
 protected:
  // Why this backend × precision is not checked (empty: it is).
  static std::string NotChecked(const Param& p, bool needs_real_answers) {
    const backends::BackendSpec* s = backends::FindBackend(p.backend);
    if (!s->unavailable.empty()) return p.backend + " is not available: " + s->unavailable;
    if (!backends::SupportsPrecision(*s, p.precision)) {
      return p.backend + " does not support " + kernels::PrecisionName(p.precision) +
             ": recorded as not supported";
    }
    if (p.precision == kernels::Precision::kBF16 && (p.backend == "torch" || p.backend == "onnx") &&
        !kernels::DetectCpu().avx512_bf16 && !kernels::DetectCpu().amx_bf16) {
      // Seen on an AMD EPYC with AVX2 only: OpenVINO's CPU plugin refuses bf16 (it would run
      // f32), and libtorch emulates it: 20 min for the golden check, cosine 0.99989 against
      // the 0.9999 bound set where bf16 is native.
      return p.backend + " bf16 needs native bf16 (AVX512-BF16 or AMX-BF16), which this CPU lacks";
    }
    if (needs_real_answers && !s->computes) {
      return p.backend + " computes no model answers: checked for shapes only";
    }
    return "";
  }

  // One pipeline per backend × precision × model, shared by the tests.
  static const Pipeline* Get(const Param& p, const std::string& model_dir) {
    static std::mutex mu;
    static std::map<std::string, std::unique_ptr<Pipeline>> cache;
    std::lock_guard<std::mutex> lock(mu);
    const std::string key = p.backend + "/" + kernels::PrecisionName(p.precision) + "/" + model_dir;
    auto& slot = cache[key];
    if (!slot) {
      auto loaded = Pipeline::Load(Options(p, model_dir));
      EXPECT_TRUE(loaded.ok()) << key << ": " << loaded.status().ToString();
      if (loaded.ok()) slot = std::move(loaded).value();
    }
    return slot.get();
  }
  const Pipeline* MiniLm() const { return Get(GetParam(), testing::ModelDir()); }
};

#define SKIP_UNLESS_CHECKED(needs_real_answers)                                   \
  if (std::string why = NotChecked(GetParam(), needs_real_answers); !why.empty()) \
  GTEST_SKIP() << why

TEST_P(BackendConformance, EmbeddingsMatchSentenceTransformers) {
  SKIP_UNLESS_CHECKED(true);
  const Pipeline* p = MiniLm();
  ASSERT_NE(p, nullptr);
  const testing::Golden& g = testing::LoadGolden();
  const SlowScheme* slow = SlowSchemeOf(GetParam().backend, GetParam().precision);
  std::vector<int> rows;  // golden rows checked
  for (int i = 0; i < static_cast<int>(g.texts.size()); i += slow ? slow->stride : 1) {
    rows.push_back(i);
  }
  std::vector<std::string> texts;
  for (int i : rows) texts.push_back(g.texts[i]);
  // One batch; on a slow scheme one text per call (its backend pads a batch to its longest
  // text: mlx int8 took 115 s for 33 texts in one batch on an AVX2 EPYC; the batch path is
  // MixedLengthBatchEqualsTextsOneByOne's).
  const size_t chunk = slow ? 1 : texts.size();
  double sum = 0, worst = 1;
  int checked = 0;
  for (size_t k = 0; k < texts.size(); k += chunk) {
    auto emb = p->Embed(std::vector<std::string>(texts.begin() + k, texts.begin() + k + chunk));
    ASSERT_TRUE(emb.ok()) << emb.status().ToString();
    ASSERT_EQ(emb->rows, static_cast<int>(chunk));
    for (int r = 0; r < emb->rows; ++r, ++checked) {
      const double c = testing::Cosine(emb->row(r), g.row(rows[checked]), g.dim);
      sum += c;
      worst = std::min(worst, c);
    }
  }
  std::string why;
  const Limits l = LimitsFor(GetParam().backend, GetParam().precision, &why);
  if (!why.empty()) std::printf("[ conformance ] limits of this scheme: %s\n", why.c_str());
  double spearman = -1;
  if (slow == nullptr) {
    // Every 4th STS-B test pair (345 of 1,379): a sanity bound on every backend and precision
    // (the full set is precision_test's and sts_quality_test's, on the native backend; the
    // parity above is the conformance check proper), at a quarter of the time.
    auto all = eval::LoadStsB(testing::DataDir() + "/sts-b-test.tsv");
    ASSERT_TRUE(all.ok());
    std::vector<eval::StsPair> pairs;
    for (size_t i = 0; i < all->size(); i += kStsStride) pairs.push_back((*all)[i]);
    auto sts = eval::EvaluateSts(*p, pairs);
    ASSERT_TRUE(sts.ok());
    spearman = sts->spearman;
  } else {
    std::printf("[ conformance ] every %dth golden text, no STS-B here: %s\n", slow->stride,
                slow->why);
  }
  const backends::BackendInfo& info = p->backend().info();
  std::printf(
      "[ conformance ] %s %s (kernels %s): cosine vs sentence-transformers mean %.6f "
      "min %.6f over %d texts; STS-B Spearman (every 4th pair) %s\n",
      GetParam().backend.c_str(), info.precision.c_str(), info.kernels().c_str(), sum / checked,
      worst, checked,
      spearman < 0 ? "(backends_compare)" : std::to_string(spearman).substr(0, 6).c_str());
  EXPECT_EQ(info.precision, kernels::PrecisionName(GetParam().precision)) << "info must not lie";
  EXPECT_GE(sum / checked, l.mean_cos);
  EXPECT_GE(worst, l.min_cos);
  if (spearman >= -0.5) {
    EXPECT_GE(spearman, 0.80);
  }
}

TEST_P(BackendConformance, CrossEncoderLogitsMatchTransformers) {
  SKIP_UNLESS_CHECKED(true);
  // The tiny random models' logits are near zero; reduced precisions are checked for
  // agreement with fp32 on the real model above, here only fp32 against transformers.
  if (GetParam().precision != Precision::kF32) GTEST_SKIP() << "fp32 only (tiny random model)";
  for (const char* model : {"tiny-cross-encoder", "tiny-cross-encoder-2labels"}) {
    const std::string dir = testing::TestData() + "/" + model;
    const Pipeline* p = Get(GetParam(), dir);
    ASSERT_NE(p, nullptr);
    const auto cases = testing::LoadCrossEncoderCases(dir);
    std::vector<TextPair> pairs;
    for (const auto& c : cases) pairs.emplace_back(c.query, c.passage);
    auto logits = p->Logits(pairs);
    ASSERT_TRUE(logits.ok()) << logits.status().ToString();
    for (size_t i = 0; i < cases.size(); ++i) {
      for (size_t l = 0; l < cases[i].logits.size(); ++l) {
        EXPECT_NEAR(logits->row(static_cast<int>(i))[l], cases[i].logits[l], 1e-4)
            << model << " pair " << i;
      }
    }
  }
}

TEST_P(BackendConformance, MixedLengthBatchEqualsTextsOneByOne) {
  SKIP_UNLESS_CHECKED(false);
  const Pipeline* p = MiniLm();
  ASSERT_NE(p, nullptr);
  const testing::Golden& g = testing::LoadGolden();
  // Short queries, sentences and 256-token passages in one batch (8 on a slow scheme).
  const bool slow = SlowSchemeOf(GetParam().backend, GetParam().precision) != nullptr;
  const size_t n = slow ? 8 : 24, step = slow ? 129 : 43;
  std::vector<std::string> texts;
  for (size_t i = 0; i < g.texts.size() && texts.size() < n; i += step) texts.push_back(g.texts[i]);
  auto batch = p->Embed(texts);
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  ASSERT_EQ(batch->rows, static_cast<int>(texts.size()));
  ASSERT_EQ(batch->dim, p->backend().info().hidden_size);
  for (size_t i = 0; i < texts.size(); ++i) {
    auto one = p->Embed({texts[i]});
    ASSERT_TRUE(one.ok());
    const float* a = batch->row(static_cast<int>(i));
    if (p->backend().info().precision == "none") {
      EXPECT_EQ(testing::MaxAbsDiff(a, one->row(0), batch->dim), 0.0f);  // null: zeros
    } else {
      const double limit = LimitsFor(GetParam().backend, GetParam().precision).batch_cos;
      EXPECT_GE(testing::Cosine(a, one->row(0), batch->dim), limit) << "text " << i;
    }
  }
}

TEST_P(BackendConformance, ConcurrentCallersGetTheirOwnRows) {
  SKIP_UNLESS_CHECKED(false);
  const Pipeline* p = MiniLm();
  ASSERT_NE(p, nullptr);
  const testing::Golden& g = testing::LoadGolden();
  std::vector<std::string> texts(g.texts.begin(), g.texts.begin() + 64);
  // Each caller's 16 texts (4 on a slow scheme) computed alone first (the same batch, so a
  // backend whose rows depend on their batch-mates is compared with itself), then all callers
  // at once.
  const int width = SlowSchemeOf(GetParam().backend, GetParam().precision) != nullptr ? 4 : 16;
  auto window = [&](int first) {
    return std::vector<std::string>(texts.begin() + first, texts.begin() + first + width);
  };
  std::map<int, Embeddings> reference;
  for (int t = 0; t < 4; ++t) {
    for (int k = 0; k < 4; ++k) {
      const int first = (t * 13 + k * 7) % 48;
      if (reference.count(first)) continue;
      auto out = p->Embed(window(first));
      ASSERT_TRUE(out.ok()) << out.status().ToString();
      reference[first] = std::move(*out);
    }
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 4; ++k) {
        const int first = (t * 13 + k * 7) % 48;
        auto out = p->Embed(window(first));
        if (!out.ok()) {
          wrong++;
          continue;
        }
        for (int i = 0; i < width; ++i) {
          if (testing::MaxAbsDiff(out->row(i), reference.at(first).row(i), out->dim) > 1e-5f) {
            wrong++;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_P(BackendConformance, BadInputGetsClearErrorsAndNeverReachesTheBackend) {
  SKIP_UNLESS_CHECKED(false);
  const Pipeline* p = MiniLm();
  ASSERT_NE(p, nullptr);
  auto batches = [&] { return p->backend().States()[0].batches; };
  const int64_t before = batches();
  auto expect = [](const Status& st, StatusCode code, const std::string& text) {
    EXPECT_EQ(st.code(), code) << st.ToString();
    EXPECT_NE(st.message().find(text), std::string::npos) << st.message();
  };
  expect(p->Embed({}).status(), StatusCode::kInvalidArgument, "no texts");
  expect(p->Score({}).status(), StatusCode::kInvalidArgument, "no pairs");
  expect(p->Embed({"fine", std::string("bad \xc3\x28 utf8")}).status(),
         StatusCode::kInvalidArgument, "text 1");
  expect(p->Embed({"fine", ""}).status(), StatusCode::kInvalidArgument, "text 1 is empty");
  expect(p->Logits({{"a", "b"}}).status(), StatusCode::kFailedPrecondition, "cross-encoder");
  std::string long_text;
  for (int i = 0; i < 400; ++i) long_text += "word ";
  expect(p->EncodeTexts({"short", long_text}, InputLimits{100000, /*truncate=*/false}).status(),
         StatusCode::kOutOfRange, "text 1 is longer than the model's 256 tokens");
  EXPECT_EQ(batches(), before) << "bad input reached the backend";
  EXPECT_TRUE(p->Embed({"still serving"}).ok());
  EXPECT_EQ(batches(), before + 1);
}

std::string Name(const ::testing::TestParamInfo<Param>& info) {
  return info.param.backend + "_" + kernels::PrecisionName(info.param.precision);
}

INSTANTIATE_TEST_SUITE_P(Registry, BackendConformance, ::testing::ValuesIn(AllParams()), Name);

}  // namespace
}  // namespace encserve
