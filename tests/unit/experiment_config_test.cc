// Experiment files: the shipped configs/experiments/*.yaml, deep merge over base.yaml, every
// class of validation error (message names the file and the key path), `resolved` round trip.
#include "experiment/experiment_config.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "backends/registry.h"
#include "bench/workload.h"
#include "kernels/cpu_features.h"
#include "kernels/precision.h"
#include "model/linear.h"

namespace encserve::experiment {
namespace {

namespace fs = std::filesystem;

const fs::path kDir = fs::path(ENCSERVE_SOURCE_DIR) / "configs" / "experiments";

std::string ReadText(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<fs::path> ExperimentFiles() {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(kDir)) {
    if (e.path().extension() == ".yaml" && e.path().filename() != "base.yaml") {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(ExperimentFiles, EveryShippedFileLoadsAndValidates) {
  std::set<std::string> names;
  for (const fs::path& p : ExperimentFiles()) {
    SCOPED_TRACE(p.string());
    auto c = LoadExperiment(p.string());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->name, p.stem().string()) << "name should match the file name";
    EXPECT_FALSE(c->description.empty());
    names.insert(c->name);
  }
  for (const char* expected :
       {"minilm_baseline", "minilm_fp16", "minilm_int8", "minilm_dynamic_batching",
        "minilm_no_batching", "minilm_onnx", "minilm_int8_mlx_style", "minilm_int4", "rerank_dl19",
        "max_wait_sweep"}) {
    EXPECT_TRUE(names.count(expected)) << expected;
  }
}

TEST(ExperimentFiles, ShippedFilesSayWhatTheyMeasure) {
  auto load = [](const char* name) { return *LoadExperiment((kDir / name).string()); };
  EXPECT_EQ(load("minilm_fp16.yaml").server.precision, "fp16");
  EXPECT_EQ(load("minilm_int8.yaml").server.precision, "int8");
  EXPECT_EQ(load("minilm_int8_mlx_style.yaml").server.precision, "int8");
  EXPECT_EQ(load("minilm_int4.yaml").server.sections.at("native").at("group_size"), "64");
  EXPECT_EQ(load("minilm_onnx.yaml").server.backend, "onnx");
  const ExperimentConfig on = load("minilm_dynamic_batching.yaml");
  const ExperimentConfig off = load("minilm_no_batching.yaml");
  EXPECT_TRUE(on.server.batching);
  EXPECT_FALSE(off.server.batching);
  EXPECT_EQ(on.resolved["sweep"], off.resolved["sweep"]) << "the pair must share one sweep";
  EXPECT_EQ(on.sweep.batch_sizes, std::vector<int>{1});
  EXPECT_EQ(on.sweep.concurrency_levels, (std::vector<int>{1, 4, 16, 64}));
  const ExperimentConfig rerank = load("rerank_dl19.yaml");
  EXPECT_EQ(rerank.workload.name, "dl19-pairs");
  EXPECT_EQ(rerank.workload.api, "v1");
  EXPECT_TRUE(rerank.quality.dl19_ndcg);
  EXPECT_EQ(load("max_wait_sweep.yaml").sweep.max_wait_us, (std::vector<int>{0, 500, 2000, 5000}));
  const ExperimentConfig compare = load("backends_compare.yaml");
  ASSERT_FALSE(compare.variants.empty());
  EXPECT_EQ(compare.variants[0].label, "native-fp32");
  EXPECT_EQ(compare.resolved["model"]["variants"], "registry");
  EXPECT_EQ(compare.workload.name, "msmarco-queries");
  EXPECT_EQ(compare.sweep.batch_sizes, (std::vector<int>{1, 8, 32}));
  EXPECT_EQ(compare.sweep.concurrency_levels, (std::vector<int>{1, 8}));
  EXPECT_TRUE(compare.quality.sts_b);
  EXPECT_TRUE(load("minilm_baseline.yaml").variants.empty());
}

TEST(ExperimentFiles, BuiltInDefaultsEqualBaseYaml) {
  const std::string base = ReadText(kDir / "base.yaml");
  auto from_base = ParseExperiment("name: x", base, "exp");
  auto built_in = ParseExperiment("name: x", "", "exp");
  ASSERT_TRUE(from_base.ok()) << from_base.status().ToString();
  ASSERT_TRUE(built_in.ok()) << built_in.status().ToString();
  EXPECT_EQ(from_base->resolved, built_in->resolved);
  // base.yaml spells out every key (except the experiment's own name and description).
  const YAML::Node root = YAML::Load(base);
  for (const auto& [section, keys] : built_in->resolved.items()) {
    if (section == "name" || section == "description") continue;
    ASSERT_TRUE(root[section].IsMap()) << section;
    for (const auto& [key, value] : keys.items()) {
      EXPECT_TRUE(root[section][key].IsDefined()) << section << "." << key;
      if (value.is_object()) {
        for (const auto& [sub, v] : value.items()) {
          EXPECT_TRUE(root[section][key][sub].IsDefined()) << section << "." << key << "." << sub;
        }
      }
    }
  }
}

TEST(ExperimentConfig, DeepMergeMergesMapsAndReplacesLists) {
  const std::string base = R"(
server: {threads: 2, batching: {max_batch_size: 16, max_wait_us: 100}}
sweep: {batch_sizes: [1, 2, 4], concurrency_levels: [2], rates: [5.5, 10]}
)";
  auto c = ParseExperiment(R"(
name: m
server: {batching: {max_wait_us: 7}}
sweep: {batch_sizes: [8], rates: []}
)",
                           base, "exp");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server.threads, 2);          // untouched sibling of a merged map
  EXPECT_EQ(c->server.max_batch_size, 16);  // nested map merged key by key
  EXPECT_EQ(c->server.max_wait_us, 7);
  EXPECT_EQ(c->sweep.batch_sizes, std::vector<int>{8});  // lists replace, never append
  EXPECT_EQ(c->sweep.concurrency_levels, std::vector<int>{2});
  EXPECT_TRUE(c->sweep.rates.empty());
  EXPECT_EQ(c->server.max_batch_tokens, 8192);  // neither file: the built-in default

  // A key given with no value keeps the base's value.
  auto kept = ParseExperiment("name: m\nsweep:\n  batch_sizes:\n", base, "exp");
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(kept->sweep.batch_sizes, (std::vector<int>{1, 2, 4}));
}

TEST(ExperimentConfig, ResolvedRoundTrips) {
  for (const fs::path& p : ExperimentFiles()) {
    SCOPED_TRACE(p.string());
    auto c = LoadExperiment(p.string());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    auto again = ParseExperiment(c->resolved.dump(2), "", "resolved");
    ASSERT_TRUE(again.ok()) << again.status().ToString();
    EXPECT_EQ(again->resolved, c->resolved);
    EXPECT_EQ(again->sweep.batch_sizes, c->sweep.batch_sizes);
    EXPECT_EQ(again->sweep.rates, c->sweep.rates);
    EXPECT_EQ(again->server.sections, c->server.sections);
  }
  auto c =
      ParseExperiment("name: r\nsweep: {rates: [2.5, 40]}\nmodel: {native: {isa: avx2}}", "", "e");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->resolved["sweep"]["rates"], nlohmann::json::parse("[2.5, 40.0]"));
  EXPECT_EQ(c->resolved["model"]["native"]["isa"], "avx2");
  EXPECT_EQ(c->resolved["server"]["batching"]["max_batch_tokens"], 8192);
  auto defaults = ParseExperiment("name: r", "", "e");
  // The backend in use has every option recorded, defaults included.
  EXPECT_EQ(defaults->resolved["model"]["native"]["isa"], "auto");
  EXPECT_EQ(defaults->resolved["model"]["native"]["int4_recipe"], "gptq");
  EXPECT_EQ(defaults->server.backend, "native");
}

// The enum values the file accepts are the ones the server and the load generator parse.
TEST(ExperimentConfig, EnumValuesMatchTheServerAndLoadgenParsers) {
  for (const char* p : {"fp32", "bf16", "fp16", "int8", "int4"}) {
    kernels::Precision parsed;
    EXPECT_TRUE(kernels::ParsePrecision(p, &parsed)) << p;
    EXPECT_TRUE(
        ParseExperiment(std::string("name: x\nmodel: {precision: ") + p + "}", "", "e").ok());
  }
  for (const char* r : {"rtn", "rotate", "gptq"}) {
    EXPECT_TRUE(ParseInt4Recipe(r).ok()) << r;
    auto c =
        ParseExperiment(std::string("name: x\nmodel: {native: {int4_recipe: ") + r + "}}", "", "e");
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    EXPECT_EQ(c->server.sections.at("native").at("int4_recipe"), r);
    EXPECT_EQ(c->resolved["model"]["native"]["int4_recipe"], r);
  }
  for (const char* isa : {"scalar", "avx2", "avx512", "amx"}) {
    kernels::Isa parsed;
    EXPECT_TRUE(kernels::ParseIsa(isa, &parsed)) << isa;
    EXPECT_TRUE(
        ParseExperiment(std::string("name: x\nmodel: {native: {isa: ") + isa + "}}", "", "e").ok());
  }
  for (const char* w : {"msmarco-queries", "dl19-pairs", "dl19-rerank", "sts-b"}) {
    EXPECT_TRUE(bench::ParseWorkload(w).ok()) << w;
    EXPECT_TRUE(
        ParseExperiment(std::string("name: x\nworkload: {api: v1, name: ") + w + "}", "", "e")
            .ok());
  }
}

struct ErrorCase {
  const char* yaml;
  const char* expected;  // substring of the message
};

TEST(ExperimentConfig, ErrorsNameTheFileAndKeyPath) {
  const ErrorCase cases[] = {
      // unknown keys
      {"name: x\nsweep: {batch_size: [1]}", "x.yaml: unknown key sweep.batch_size (known: "},
      {"name: x\nmodle: {}", "unknown key modle"},
      {"name: x\nserver: {batching: {max_wait: 5}}", "unknown key server.batching.max_wait"},
      // wrong types
      {"name: x\nsweep: {batch_sizes: 8}", "sweep.batch_sizes: expected a list"},
      {"name: x\nsweep: {batch_sizes: [1, x]}", "sweep.batch_sizes[1]: expected an integer"},
      {"name: x\nserver: {threads: \"4\"}", "server.threads: expected an integer"},
      {"name: x\nserver: {batching: {enabled: maybe}}", "server.batching.enabled: expected true"},
      {"name: x\nmodel: fp32", "model: expected a mapping"},
      {"name: x\nsweep: {duration_s: soon}", "sweep.duration_s: expected a number"},
      {"name: [x]", "name: expected a string"},
      // enum values
      {"name: x\nmodel: {precision: int3}", "model.precision: unknown value 'int3'"},
      {"name: x\nmodel: {backend: pytorch}", "model.backend: unknown value 'pytorch'"},
      {"name: x\nmodel: {native: {isa: avx9}}", "model.native.isa: 'avx9' is not one of"},
      {"name: x\nmodel: {native: {colour: red}}", "model.native.colour: unknown option"},
      {"name: x\nmodel: {fallback: [tpu]}", "model.fallback[0]: unknown value 'tpu'"},
      {"name: x\nmodel: {isa: avx2}", "model.isa has moved: write model.native.isa"},
      {"name: x\nworkload: {protocol: rest}", "workload.protocol: unknown value 'rest'"},
      {"name: x\nworkload: {api: v2}", "workload.api: unknown value 'v2'"},
      {"name: x\nworkload: {name: msmarco}", "workload.name: unknown value 'msmarco'"},
      // ranges
      {"name: x\nsweep: {batch_sizes: [1, 0]}", "sweep.batch_sizes[1]: must be 1..4096, got 0"},
      {"name: x\nsweep: {batch_sizes: [5000]}", "sweep.batch_sizes[0]: must be 1..4096"},
      {"name: x\nsweep: {concurrency_levels: [0]}", "sweep.concurrency_levels[0]: must be 1..4096"},
      {"name: x\nsweep: {rates: [10, 0]}", "sweep.rates[1]: must be > 0"},
      {"name: x\nsweep: {rates: [-1.5]}", "sweep.rates[0]: must be > 0"},
      {"name: x\nsweep: {repeats: 0}", "sweep.repeats: must be 1..20"},
      {"name: x\nsweep: {repeats: 21}", "sweep.repeats: must be 1..20"},
      {"name: x\nmodel: {native: {group_size: 16}}", "model.native.group_size: '16' is not one of"},
      {"name: x\nmodel: {native: {int4_recipe: awq}}", "model.native.int4_recipe"},
      {"name: x\nsweep: {requests_per_point: 0}", "sweep.requests_per_point: must be >= 1"},
      {"name: x\nsweep: {duration_s: -1}", "sweep.duration_s: must be 0..3600"},
      {"name: x\nserver: {replicas: 0}", "server.replicas: must be 1..64"},
      {"name: x\nserver: {batching: {max_wait_us: -1}}", "server.batching.max_wait_us"},
      // empty sweep lists
      {"name: x\nsweep: {batch_sizes: []}", "sweep.batch_sizes: must not be empty"},
      {"name: x\nsweep: {concurrency_levels: []}", "sweep.concurrency_levels: must not be empty"},
      // name
      {"description: no name", "x.yaml: name: required"},
      {"name: \"\"", "name: required"},
      {"name: my run", "name: 'my run' may contain only"},
      // cross-key checks
      {"name: x\nworkload: {name: dl19-pairs}", "workload.api: seed"},
      {"name: x\nworkload: {name: sts-b, protocol: http}", "needs workload.api: v1"},
      {"name: x\nserver: {batching: {enabled: false}}\nsweep: {max_wait_us: [0, 100]}",
       "sweep.max_wait_us needs server.batching.enabled: true"},
      {"name: x\nserver: {max_client_batch_size: 16}", "sweep.batch_sizes: 32 exceeds"},
      {"name: x\nworkload: {name: dl19-rerank, api: v1}\nserver: {max_client_batch_size: 50}",
       "server.max_client_batch_size: dl19-rerank"},
      {"name: x\nmodel: {backend: \"null\"}", "quality.sts_b"},
      {"name: x\nmodel: {backend: null}", "model.backend: empty"},
      // model.variants
      {"name: x\nmodel: {variants: all}", "x.yaml: model.variants: expected registry or a list"},
      {"name: x\nmodel: {variants: {backend: native}}", "model.variants: expected registry or"},
      {"name: x\nmodel: {variants: [native]}", "model.variants[0]: expected a mapping"},
      {"name: x\nmodel: {variants: [{backend: native, colour: red}]}",
       "x.yaml: unknown key model.variants[0].colour (known: backend, precision, label, native"},
      {"name: x\nmodel: {variants: [{backend: tpu}]}",
       "x.yaml: model.variants[0].backend: unknown value 'tpu' (native"},
      {"name: x\nmodel: {variants: [{backend: native}, {precision: int3}]}",
       "model.variants[1].precision: unknown value 'int3'"},
      {"name: x\nmodel: {variants: [{backend: native, precision: [fp32]}]}",
       "model.variants[0].precision: expected a string"},
      {"name: x\nmodel: {variants: [{native: {isa: avx9}}]}",
       "model.variants[0].native.isa: 'avx9' is not one of"},
      {"name: x\nmodel: {variants: [{native: {colour: red}}]}",
       "model.variants[0].native.colour: unknown option"},
      {"name: x\nmodel: {variants: [{precision: fp32}, {backend: native}]}",
       "model.variants[1].label: 'native-fp32' is already the label of model.variants[0]"},
      {"name: x\nmodel: {variants: [{label: \"a b\"}]}", "model.variants[0].label: 'a b' must"},
      {"name: x\nmodel: {variants: [{backend: \"null\"}]}",
       "model.variants[0].backend: null does not compute the model's answers"},
      {"name: x\nmodel: {variants: [{backend: null}]}", "model.variants[0].backend: empty"},
      {"name: x\nmodel: {variants: registry, fallback: [native]}",
       "model.fallback: not used with model.variants"},
      // documents
      {"name: x\nsweep: [1", "x.yaml: not valid YAML"},
      {"- name: x", "x.yaml: expected a mapping at the top level"},
  };
  for (const ErrorCase& ec : cases) {
    auto c = ParseExperiment(ec.yaml, "", "x.yaml");
    ASSERT_FALSE(c.ok()) << ec.yaml;
    EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument) << ec.yaml;
    EXPECT_NE(c.status().message().find(ec.expected), std::string::npos)
        << ec.yaml << "\n  got: " << c.status().message() << "\n  want: " << ec.expected;
  }
}

TEST(ExperimentConfig, ValidEdgeCases) {
  const char* ok[] = {
      "name: a-B_9\nsweep: {requests_per_point: 0, duration_s: 5}",  // duration instead of count
      "name: x\nworkload: {name: dl19-rerank, api: v1}\nsweep: {batch_sizes: [2000]}",  // ignored
      "name: x\nworkload: {name: sts-b, protocol: http, api: v1}",
      "name: x\nmodel: {backend: \"null\"}\nquality: {sts_b: false}",
      "name: x\nmodel: {precision: int4, native: {group_size: 128, isa: scalar}}",
      "name: x\nsweep: {rates: [0.5, 100], max_wait_us: [0, 2000]}",
      "name: x\nmodel: {variants: []}",
      "name: x\nmodel: {variants: [{backend: \"null\"}]}\nquality: {sts_b: false}",
  };
  for (const char* yaml : ok) {
    auto c = ParseExperiment(yaml, "", "x.yaml");
    EXPECT_TRUE(c.ok()) << yaml << "\n  " << c.status().ToString();
  }
}

TEST(ExperimentConfig, ErrorsInTheBaseNameTheBase) {
  auto c = ParseExperiment("name: x", "sweep: {batch_size: [1]}", "x.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("base: unknown key sweep.batch_size"), std::string::npos)
      << c.status().message();
  // The experiment overrides the bad base value: the experiment file is blamed for its own key.
  auto d = ParseExperiment("name: x\nsweep: {repeats: 0}", "sweep: {repeats: 2}", "x.yaml");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("x.yaml: sweep.repeats"), std::string::npos)
      << d.status().message();
  auto e = ParseExperiment("name: x\nsweep: {rates: [1]}", "sweep: {repeats: 0}", "x.yaml");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("base: sweep.repeats"), std::string::npos)
      << e.status().message();
}

// model.variants: registry = every backend that computes and is not a test double x every
// precision it supports, in registry order, each with the experiment's other settings.
TEST(ExperimentVariants, RegistryExpandsEveryComputingBackendTimesPrecision) {
  auto c = ParseExperiment(
      "name: v\nmodel: {variants: registry, native: {isa: scalar}}\nserver: {threads: 3}", "", "e");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::vector<std::string> expected;
  for (const backends::BackendSpec& spec : backends::Registry()) {
    if (spec.for_tests || !spec.computes) continue;
    for (kernels::Precision p : spec.precisions) {
      expected.push_back(spec.name + "-" + kernels::PrecisionName(p));
    }
  }
  std::vector<std::string> labels;
  for (const Variant& v : c->variants) {
    SCOPED_TRACE(v.label);
    labels.push_back(v.label);
    const backends::BackendSpec* spec = backends::FindBackend(v.server.backend);
    ASSERT_NE(spec, nullptr);
    EXPECT_EQ(v.label, v.server.backend + "-" + v.server.precision);
    EXPECT_EQ(v.unavailable, spec->unavailable);  // reported by the runner, never run
    EXPECT_EQ(v.server.threads, 3);
    EXPECT_TRUE(v.server.fallback.empty());
    EXPECT_EQ(v.server.sections.at("native").at("isa"), "scalar");
  }
  EXPECT_EQ(labels, expected);
  ASSERT_GE(labels.size(), 5u);
  EXPECT_EQ(std::vector<std::string>(labels.begin(), labels.begin() + 5),
            (std::vector<std::string>{"native-fp32", "native-bf16", "native-fp16", "native-int8",
                                      "native-int4"}));
  for (const std::string& l : labels) {
    EXPECT_NE(l.rfind("null-", 0), 0u) << "null computes no answers";
    EXPECT_NE(l.rfind("fault-", 0), 0u) << "fault is a test double";
  }
  EXPECT_EQ(c->resolved["model"]["variants"], "registry");
  auto again = ParseExperiment(c->resolved.dump(), "", "resolved");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->variants.size(), c->variants.size());
  EXPECT_EQ(again->resolved, c->resolved);

  auto none = ParseExperiment("name: v", "", "e");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->variants.empty());
  EXPECT_EQ(none->resolved["model"]["variants"], nlohmann::json::array());
}

TEST(ExperimentVariants, ListEntriesOverrideModelSettings) {
  auto c = ParseExperiment(R"(
name: v
model:
  precision: int8
  native: {isa: avx2, split_batches: false}
  variants:
    - {backend: native}
    - {backend: native, precision: fp32, label: fp32-scalar, native: {isa: scalar}}
    - {backend: onnx, precision: bf16}
)",
                           "", "e");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  ASSERT_EQ(c->variants.size(), 3u);
  const Variant& a = c->variants[0];
  EXPECT_EQ(a.label, "native-int8");  // precision from model.precision
  EXPECT_EQ(a.server.precision, "int8");
  EXPECT_EQ(a.server.sections.at("native").at("isa"), "avx2");
  const Variant& b = c->variants[1];
  EXPECT_EQ(b.label, "fp32-scalar");
  EXPECT_EQ(b.server.precision, "fp32");
  EXPECT_EQ(b.server.sections.at("native").at("isa"), "scalar");  // key by key over model.native
  EXPECT_EQ(b.server.sections.at("native").at("split_batches"), "false");
  const Variant& o = c->variants[2];
  EXPECT_EQ(o.label, "onnx-bf16");
  EXPECT_EQ(o.server.backend, "onnx");
  EXPECT_EQ(o.unavailable, backends::FindBackend("onnx")->unavailable);
  EXPECT_EQ(c->server.precision, "int8");  // model.* itself is unchanged
  EXPECT_EQ(c->server.sections.at("native").at("isa"), "avx2");
  // resolved records each entry's final label, backend and precision, and parses back the same.
  EXPECT_EQ(c->resolved["model"]["variants"][0]["label"], "native-int8");
  EXPECT_EQ(c->resolved["model"]["variants"][1]["native"]["isa"], "scalar");
  auto again = ParseExperiment(c->resolved.dump(), "", "resolved");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->resolved, c->resolved);
  ASSERT_EQ(again->variants.size(), 3u);
  EXPECT_EQ(again->variants[1].server.sections, b.server.sections);
  // A list in the experiment file replaces the base's (lists never append).
  auto merged = ParseExperiment("name: v\nmodel: {variants: [{label: one}]}",
                                "model: {variants: registry}", "e");
  ASSERT_TRUE(merged.ok()) << merged.status().ToString();
  ASSERT_EQ(merged->variants.size(), 1u);
  EXPECT_EQ(merged->variants[0].label, "one");
}

TEST(LoadExperiment, BaseFileDiscoveryAndErrors) {
  const fs::path dir = fs::temp_directory_path() / ("expcfg_test_" + std::to_string(::getpid()));
  fs::create_directories(dir / "nobase");
  std::ofstream(dir / "base.yaml") << "sweep: {repeats: 3}\n";
  std::ofstream(dir / "e.yaml") << "name: e\n";
  std::ofstream(dir / "other_base.yaml") << "sweep: {repeats: 5}\n";
  std::ofstream(dir / "nobase" / "e.yaml") << "name: e\n";
  std::ofstream(dir / "bad.yaml") << "name: e\nsweep: {batch_size: [1]}\n";

  auto implicit = LoadExperiment((dir / "e.yaml").string());
  ASSERT_TRUE(implicit.ok()) << implicit.status().ToString();
  EXPECT_EQ(implicit->sweep.repeats, 3);
  auto explicit_base =
      LoadExperiment((dir / "e.yaml").string(), (dir / "other_base.yaml").string());
  ASSERT_TRUE(explicit_base.ok()) << explicit_base.status().ToString();
  EXPECT_EQ(explicit_base->sweep.repeats, 5);
  auto no_base = LoadExperiment((dir / "nobase" / "e.yaml").string());
  ASSERT_TRUE(no_base.ok()) << no_base.status().ToString();
  EXPECT_EQ(no_base->sweep.repeats, 1);

  auto bad = LoadExperiment((dir / "bad.yaml").string());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(
      bad.status().message().find((dir / "bad.yaml").string() + ": unknown key sweep.batch_size"),
      std::string::npos)
      << bad.status().message();
  EXPECT_EQ(LoadExperiment((dir / "missing.yaml").string()).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(
      LoadExperiment((dir / "e.yaml").string(), (dir / "no_base.yaml").string()).status().code(),
      StatusCode::kNotFound);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace encserve::experiment
