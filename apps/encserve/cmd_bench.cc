// encserve bench-engine: in-process throughput and batch latency of the engine, no network.
//   --workload msmarco  real MS MARCO queries, tokenisation included (texts/s)
//   --workload fixed    random token ids, fixed sequence length, no tokenisation (texts/s)
//   --workload dl19     DL19 query–passage pairs scored (pairs/s; bi-encoder: cosine)
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "common.h"
#include "eval/datasets.h"

namespace encserve::app {
namespace {

struct Args {
  EngineFlags engine;
  std::string workload = "msmarco";
  std::string data;
  int batch = 32;
  int seq = 16;
  int limit = 0;
  int warmup = 3;
  double max_seconds = 0;
  std::string json_out;
};

// Runs `step(i)` for i = 0.. until `count` steps or `max_seconds`; returns per-step latencies.
template <typename Step>
std::vector<double> TimeSteps(int count, int warmup, double max_seconds, Step&& step) {
  for (int w = 0; w < warmup; ++w) step(w % std::max(count, 1));
  std::vector<double> lat;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    const auto ts = std::chrono::steady_clock::now();
    step(i);
    lat.push_back(MillisSince(ts));
    if (i % 20 == 19) std::fprintf(stderr, "\r%d/%d batches", i + 1, count);
    if (max_seconds > 0 && MillisSince(t0) > max_seconds * 1000) break;
  }
  std::fprintf(stderr, "\r                         \r");
  return lat;
}

void Check(const Status& s) {
  if (s.ok()) return;
  std::cerr << "error: " << s.ToString() << "\n";
  throw CLI::RuntimeError(1);
}

void Run(const Args& a) {
  auto engine = LoadEngineOrReport(a.engine);
  if (!engine) throw CLI::RuntimeError(1);
  std::vector<double> lat;
  int items_per_step = a.batch;
  long items = 0;
  if (a.workload == "fixed") {
    std::mt19937 rng(0);
    std::uniform_int_distribution<int> id(1000, 29999);
    TokenBatch batch;
    for (int s = 0; s < a.batch; ++s) {
      std::vector<int32_t> ids(a.seq);
      for (auto& t : ids) t = id(rng);
      ids.front() = engine->tokenizer().cls_id();
      ids.back() = engine->tokenizer().sep_id();
      batch.Add(ids, {});
    }
    const int steps = a.limit > 0 ? a.limit : std::max(20, 4096 / a.batch);
    lat = TimeSteps(steps, a.warmup, a.max_seconds,
                    [&](int) { Check(engine->EmbedBatch(batch, true).status()); });
  } else if (a.workload == "msmarco") {
    auto q = eval::LoadMsMarcoQueries(
        a.data.empty() ? DefaultDataDir() + "/msmarco-dev-small-queries.tsv" : a.data);
    Check(q.status());
    if (a.limit > 0 && static_cast<size_t>(a.limit) < q->size()) q->resize(a.limit);
    std::vector<std::vector<std::string>> batches;
    for (size_t i = 0; i < q->size(); i += a.batch) {
      batches.emplace_back(q->begin() + i, q->begin() + std::min(q->size(), i + a.batch));
    }
    lat = TimeSteps(static_cast<int>(batches.size()), a.warmup, a.max_seconds,
                    [&](int i) { Check(engine->Embed(batches[i]).status()); });
    items_per_step = 0;
    for (size_t i = 0; i < lat.size(); ++i) items += static_cast<long>(batches[i].size());
  } else if (a.workload == "dl19") {
    auto run = eval::LoadTrecRunJson(
        a.data.empty() ? DefaultDataDir() + "/trec-dl19-bm25-top100.json" : a.data);
    Check(run.status());
    std::vector<TextPair> pairs;
    for (const auto& rq : *run) {
      for (const auto& p : rq.passages) pairs.emplace_back(rq.query, p);
    }
    if (a.limit > 0 && static_cast<size_t>(a.limit) < pairs.size()) pairs.resize(a.limit);
    std::vector<std::vector<TextPair>> batches;
    for (size_t i = 0; i < pairs.size(); i += a.batch) {
      batches.emplace_back(pairs.begin() + i, pairs.begin() + std::min(pairs.size(), i + a.batch));
    }
    lat = TimeSteps(static_cast<int>(batches.size()), a.warmup, a.max_seconds,
                    [&](int i) { Check(engine->Score(batches[i]).status()); });
    items_per_step = 0;
    for (size_t i = 0; i < lat.size(); ++i) items += static_cast<long>(batches[i].size());
  } else {
    std::cerr << "error: unknown workload " << a.workload << " (msmarco, fixed, dl19)\n";
    throw CLI::RuntimeError(2);
  }
  if (items_per_step > 0) items = static_cast<long>(lat.size()) * items_per_step;
  double total_ms = 0;
  for (double l : lat) total_ms += l;
  const double per_s = items / (total_ms / 1000.0);
  std::printf(
      "bench-engine: workload=%s precision=%s kernels=%s threads=%d replicas=%d batch=%d seq=%s "
      "items=%ld time=%.2fs throughput=%.1f items/s batch_p50=%.3fms batch_p99=%.3fms\n",
      a.workload.c_str(), a.engine.precision.c_str(), engine->kernels().name, a.engine.threads,
      a.engine.replicas, a.batch, a.workload == "fixed" ? std::to_string(a.seq).c_str() : "-",
      items, total_ms / 1000.0, per_s, Percentile(lat, 50), Percentile(lat, 99));
  if (!a.json_out.empty()) {
    nlohmann::ordered_json j;
    j["workload"] = a.workload;
    j["precision"] = a.engine.precision;
    if (a.engine.precision == "int4") j["group_size"] = a.engine.group_size;
    j["kernels"] = engine->kernels().name;
    j["threads"] = a.engine.threads;
    j["batch"] = a.batch;
    if (a.workload == "fixed") j["seq"] = a.seq;
    j["items"] = items;
    j["seconds"] = total_ms / 1000.0;
    j["items_per_s"] = per_s;
    j["p50_ms"] = Percentile(lat, 50);
    j["p99_ms"] = Percentile(lat, 99);
    std::ofstream(a.json_out, std::ios::app) << j.dump() << "\n";
  }
}

}  // namespace

void RegisterBenchEngine(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "bench-engine", "In-process throughput (items/s) and batch latency: msmarco | fixed | dl19");
  AddEngineFlags(cmd, &a->engine);
  cmd->add_option("-w,--workload", a->workload, "msmarco | fixed | dl19")
      ->capture_default_str()
      ->check(CLI::IsMember({"msmarco", "fixed", "dl19"}));
  cmd->add_option("--data", a->data, "data file (default: the workload's file in the data folder)");
  cmd->add_option("-b,--batch", a->batch, "texts (or pairs) per call")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--seq", a->seq, "fixed workload: tokens per sequence incl. [CLS]/[SEP]")
      ->capture_default_str()
      ->check(CLI::Range(2, 512));
  cmd->add_option("--limit", a->limit, "msmarco/dl19: first N items; fixed: N batches");
  cmd->add_option("--warmup", a->warmup, "untimed warm-up batches")->capture_default_str();
  cmd->add_option("--max-seconds", a->max_seconds, "stop timing after this long (0: no cap)");
  cmd->add_option("--json", a->json_out, "append the result as one JSON line to this file");
  cmd->callback([a] { Run(*a); });
}

}  // namespace encserve::app
