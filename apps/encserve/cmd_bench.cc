// encserve bench-engine: in-process throughput and batch latency of the engine, no network.
//   --workload msmarco  real MS MARCO queries, tokenisation included (texts/s)
//   --workload fixed    random token ids, fixed sequence length, no tokenisation (texts/s)
//   --workload dl19     DL19 query–passage pairs scored (pairs/s; bi-encoder: cosine)
// fixed and msmarco also print the model's efficiency (multiply-adds per second as a share of the
// measured peak of the kernels' instruction); --profile adds where the time went, per op.
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "bench_profile.h"
#include "common.h"
#include "core/op_profile.h"
#include "eval/datasets.h"
#include "model/bert.h"

namespace encserve::app {
namespace {

struct Args {
  BackendFlags engine;
  std::string workload = "msmarco";
  std::string data;
  int batch = 32;
  int seq = 16;
  int limit = 0;
  int warmup = 3;
  double max_seconds = 0;
  std::string json_out;
  bool profile = false;
};

// Runs `step(i)` for i = 0.. until `count` steps or `max_seconds`, from `callers` threads at
// once (one per engine replica, so that replicas really compute concurrently). Throughput is
// items / wall time.
struct Timing {
  std::vector<int> steps;   // the steps that ran
  std::vector<double> lat;  // their latencies, ms
  double wall_ms = 0;
};

template <typename Step>
Timing TimeSteps(int count, int warmup, double max_seconds, int callers, Step&& step) {
  auto run = [&](auto&& body) {
    std::vector<std::thread> threads;
    for (int c = 1; c < callers; ++c) threads.emplace_back(body);
    body();
    for (auto& t : threads) t.join();
  };
  std::atomic<int> next{0};
  run([&] {  // warm-up: every replica runs `warmup` steps
    for (int w = next++; w < warmup * callers; w = next++) step(w % std::max(count, 1));
  });
  profile::Reset();  // --profile: the timed steps only
  std::vector<double> lat(count, -1.0);
  std::atomic<bool> stop{false};
  next = 0;
  const auto t0 = std::chrono::steady_clock::now();
  run([&] {
    for (int i = next++; i < count && !stop; i = next++) {
      const auto ts = std::chrono::steady_clock::now();
      step(i);
      lat[i] = MillisSince(ts);
      if (i % 20 == 19) std::fprintf(stderr, "\r%d/%d batches", i + 1, count);
      if (max_seconds > 0 && MillisSince(t0) > max_seconds * 1000) stop = true;
    }
  });
  Timing t;
  t.wall_ms = MillisSince(t0);
  for (int i = 0; i < count; ++i) {
    if (lat[i] < 0) continue;
    t.steps.push_back(i);
    t.lat.push_back(lat[i]);
  }
  std::fprintf(stderr, "\r                         \r");
  return t;
}

void Check(const Status& s) {
  if (s.ok()) return;
  std::cerr << "error: " << s.ToString() << "\n";
  throw CLI::RuntimeError(1);
}

// Prints the result line, the efficiency and (--profile) the op profile, and appends the JSON
// line (--json). flops: 2 × the model's multiply-adds over the timed steps (0: not counted).
void Report(const Args& a, const Pipeline& pipeline, const Timing& t, long items, double flops,
            const PeakMeter& meter) {
  const std::vector<double>& lat = t.lat;
  const double per_s = items / (t.wall_ms / 1000.0);
  const backends::BackendInfo& info = pipeline.backend().info();
  const bool split =
      info.name == "native" && BackendOption(pipeline, "native", "split_batches") == "true";
  std::printf(
      "bench-engine: workload=%s backend=%s precision=%s kernels=%s threads=%d replicas=%d "
      "split=%s batch=%d seq=%s items=%ld time=%.2fs throughput=%.1f items/s batch_p50=%.3fms "
      "batch_p99=%.3fms\n",
      a.workload.c_str(), info.name.c_str(), info.precision.c_str(), info.kernels().c_str(),
      a.engine.threads, a.engine.replicas, split ? "yes" : "no", a.batch,
      a.workload == "fixed" ? std::to_string(a.seq).c_str() : "-", items, t.wall_ms / 1000.0, per_s,
      Percentile(lat, 50), Percentile(lat, 99));
  nlohmann::ordered_json extra;
  if (flops > 0) meter.Report(flops / (t.wall_ms / 1000.0), &extra);
  if (a.profile) ReportOpProfile(t.wall_ms, &extra);
  if (!a.json_out.empty()) {
    nlohmann::ordered_json j;
    j["workload"] = a.workload;
    AddBackendJson(pipeline, &j);
    j["threads"] = a.engine.threads;
    j["replicas"] = a.engine.replicas;
    j["split"] = split;
    j["batch"] = a.batch;
    if (a.workload == "fixed") j["seq"] = a.seq;
    j["items"] = items;
    j["seconds"] = t.wall_ms / 1000.0;
    j["items_per_s"] = per_s;
    j["p50_ms"] = Percentile(lat, 50);
    j["p99_ms"] = Percentile(lat, 99);
    if (extra.is_object()) j.update(extra);
    std::ofstream(a.json_out, std::ios::app) << j.dump() << "\n";
  }
}

// `size` sequences of `seq` random ids in [1000, 30000) between [CLS] and [SEP] (seeded: the same
// batch every run).
TokenBatch RandomBatch(const Tokenizer& tokenizer, int size, int seq) {
  std::mt19937 rng(0);
  std::uniform_int_distribution<int> id(1000, 29999);
  TokenBatch batch;
  for (int s = 0; s < size; ++s) {
    std::vector<int32_t> ids(seq);
    for (auto& t : ids) t = id(rng);
    ids.front() = tokenizer.cls_id();
    ids.back() = tokenizer.sep_id();
    batch.Add(ids, {});
  }
  return batch;
}

// 2 × the encoder's multiply-adds for these texts as the pipeline tokenises them.
double TextsFlops(const Pipeline& engine, const std::vector<std::string>& texts) {
  std::vector<int> lengths;
  for (const auto& text : texts) {
    auto enc = engine.tokenizer().Encode(text, engine.max_length());
    lengths.push_back(enc.ok() ? static_cast<int>(enc->ids.size()) : 0);
  }
  return EncoderFlops(engine.config().bert, lengths);
}

void Run(const Args& a) {
  auto engine = LoadPipelineOrReport(a.engine);
  if (!engine) throw CLI::RuntimeError(1);
  Timing t;
  const int callers = a.engine.replicas;
  const BertConfig& model = engine->config().bert;
  PeakMeter meter(*engine, a.engine.threads * a.engine.replicas);
  meter.Measure();
  if (a.profile) {
    profile::Reset();
    profile::SetEnabled(true);
  }
  // items per step: the batch (fixed) or the step's own size (msmarco / dl19, last one shorter);
  // flops per step: 2 × the encoder's multiply-adds (not counted for dl19)
  std::vector<long> step_items;
  std::vector<double> step_flops;
  if (a.workload == "fixed") {
    const TokenBatch batch = RandomBatch(engine->tokenizer(), a.batch, a.seq);
    const int steps = a.limit > 0 ? a.limit : std::max(20, 4096 / a.batch);
    step_items.assign(steps, a.batch);
    step_flops.assign(steps, EncoderFlops(model, std::vector<int>(a.batch, a.seq)));
    t = TimeSteps(steps, a.warmup, a.max_seconds, callers, [&](int) {
      // The batch as the server runs it: the backend, then normalisation.
      auto rows = engine->backend().Run(backends::Task::kEmbed, batch);
      Check(rows.status());
      NormalizeRows(&*rows);
    });
  } else if (a.workload == "msmarco") {
    auto q = eval::LoadMsMarcoQueries(
        a.data.empty() ? DefaultDataDir() + "/msmarco-dev-small-queries.tsv" : a.data);
    Check(q.status());
    if (a.limit > 0 && static_cast<size_t>(a.limit) < q->size()) q->resize(a.limit);
    std::vector<std::vector<std::string>> batches;
    for (size_t i = 0; i < q->size(); i += a.batch) {
      batches.emplace_back(q->begin() + i, q->begin() + std::min(q->size(), i + a.batch));
    }
    t = TimeSteps(static_cast<int>(batches.size()), a.warmup, a.max_seconds, callers,
                  [&](int i) { Check(engine->Embed(batches[i]).status()); });
    for (const auto& b : batches) {
      step_items.push_back(static_cast<long>(b.size()));
      step_flops.push_back(TextsFlops(*engine, b));
    }
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
    t = TimeSteps(static_cast<int>(batches.size()), a.warmup, a.max_seconds, callers,
                  [&](int i) { Check(engine->Score(batches[i]).status()); });
    for (const auto& b : batches) step_items.push_back(static_cast<long>(b.size()));
  } else {
    std::cerr << "error: unknown workload " << a.workload << " (msmarco, fixed, dl19)\n";
    throw CLI::RuntimeError(2);
  }
  profile::SetEnabled(false);
  meter.Measure();
  long items = 0;
  double flops = 0;
  for (int i : t.steps) {
    items += step_items[i];
    if (!step_flops.empty()) flops += step_flops[i];
  }
  Report(a, *engine, t, items, flops, meter);
}

}  // namespace

void RegisterBenchEngine(CLI::App& app) {
  auto a = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand(
      "bench-engine", "In-process throughput (items/s) and batch latency: msmarco | fixed | dl19");
  AddBackendFlags(cmd, &a->engine);
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
  cmd->add_flag("--profile", a->profile,
                "time every op (GEMMs by shape, attention, LayerNorm, quantisation, ...) and "
                "print where the time went");
  cmd->callback([a] { Run(*a); });
}

}  // namespace encserve::app
