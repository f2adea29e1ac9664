// encserve bench-engine: in-process embedding throughput and batch latency on real MS MARCO
// queries (tokenisation included, as a server would do it).
#include <cstdio>
#include <iostream>

#include "common.h"
#include "eval/datasets.h"

namespace encserve::app {

void RegisterBenchEngine(CLI::App& app) {
  struct Args {
    EngineFlags engine;
    std::string data;
    int batch = 32;
    int limit = 0;
    int warmup = 3;
  };
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "bench-engine",
      "In-process embed throughput (texts/s) and batch latency on MS MARCO queries");
  AddEngineFlags(cmd, &a->engine);
  a->data = DefaultDataDir() + "/msmarco-dev-small-queries.tsv";
  cmd->add_option("--data", a->data, "MS MARCO queries TSV")->capture_default_str();
  cmd->add_option("-b,--batch", a->batch, "texts per call")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--limit", a->limit, "use only the first N queries (0: all)");
  cmd->add_option("--warmup", a->warmup, "untimed warm-up batches")->capture_default_str();
  cmd->callback([a] {
    auto queries = eval::LoadMsMarcoQueries(a->data);
    if (!queries.ok()) {
      std::cerr << "error: " << queries.status().ToString() << "\n";
      throw CLI::RuntimeError(2);
    }
    if (a->limit > 0 && static_cast<size_t>(a->limit) < queries->size()) queries->resize(a->limit);
    auto engine = LoadEngineOrReport(a->engine);
    if (!engine) throw CLI::RuntimeError(1);
    std::vector<std::vector<std::string>> batches;
    for (size_t i = 0; i < queries->size(); i += a->batch) {
      batches.emplace_back(queries->begin() + i,
                           queries->begin() + std::min(queries->size(), i + a->batch));
    }
    for (int w = 0; w < a->warmup && w < static_cast<int>(batches.size()); ++w) {
      if (!engine->Embed(batches[w]).ok()) throw CLI::RuntimeError(1);
    }
    std::vector<double> latencies;
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t b = 0; b < batches.size(); ++b) {
      const auto tb = std::chrono::steady_clock::now();
      auto r = engine->Embed(batches[b]);
      if (!r.ok()) {
        std::cerr << "error: " << r.status().ToString() << "\n";
        throw CLI::RuntimeError(1);
      }
      latencies.push_back(MillisSince(tb));
      if (b % 20 == 19) std::fprintf(stderr, "\r%zu/%zu batches", b + 1, batches.size());
    }
    const double total_s = MillisSince(t0) / 1000.0;
    std::fprintf(stderr, "\r");
    std::printf(
        "bench-engine: model=%s precision=%s kernels=%s threads=%d replicas=%d batch=%d texts=%zu "
        "time=%.2fs throughput=%.1f texts/s batch_p50=%.2fms batch_p99=%.2fms\n",
        a->engine.model.c_str(), a->engine.precision.c_str(), engine->kernels().name,
        a->engine.threads, a->engine.replicas, a->batch, queries->size(), total_s,
        queries->size() / total_s, Percentile(latencies, 50), Percentile(latencies, 99));
  });
}

}  // namespace encserve::app
