// encserve eval-sts: STS-B test Spearman computed by encserve itself.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common.h"
#include "eval/quality.h"

namespace encserve::app {

void RegisterEvalSts(CLI::App& app) {
  struct Args {
    BackendFlags engine;
    std::string data;
    std::string json_out;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "eval-sts",
      "STS-B test: Spearman of embedding cosine vs gold scores (all-MiniLM-L6-v2: 0.8203)");
  AddBackendFlags(cmd, &a->engine);
  a->data = DefaultDataDir() + "/sts-b-test.tsv";
  cmd->add_option("--data", a->data, "sts-b-test.tsv")->capture_default_str();
  cmd->add_option("--json", a->json_out, "append the result as one JSON line to this file");
  cmd->callback([a] {
    auto pairs = eval::LoadStsB(a->data);
    if (!pairs.ok()) {
      std::cerr << "error: " << pairs.status().ToString() << "\n";
      throw CLI::RuntimeError(2);
    }
    auto engine = LoadPipelineOrReport(a->engine);
    if (!engine) throw CLI::RuntimeError(1);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = eval::EvaluateSts(*engine, *pairs);
    if (!r.ok()) {
      std::cerr << "error: " << r.status().ToString() << "\n";
      throw CLI::RuntimeError(1);
    }
    std::printf("STS-B test: %d pairs, Spearman %.4f, Pearson %.4f (%.1f s, backend %s)\n",
                r->pairs, r->spearman, r->pearson, MillisSince(t0) / 1000.0,
                DescribeBackend(engine->backend().info()).c_str());
    if (!a->json_out.empty()) {
      nlohmann::ordered_json j;
      j["workload"] = "sts-b";
      AddBackendJson(*engine, &j);
      j["pairs"] = r->pairs;
      j["spearman"] = r->spearman;
      j["pearson"] = r->pearson;
      std::ofstream(a->json_out, std::ios::app) << j.dump() << "\n";
    }
  });
}

}  // namespace encserve::app
