// The runner's per-point work: the server's command line, one load point with the server's
// /metrics around it, and the in-process quality step.
#include <algorithm>
#include <cstdio>
#include <map>

#include "bench/grpc_client.h"
#include "bench/http_client.h"
#include "bench/load_runner.h"
#include "eval/quality.h"
#include "eval/ranking.h"
#include "experiment/runner_internal.h"
#include "kernels/precision.h"
#include "pipeline/pipeline.h"

namespace encserve::experiment::internal {
namespace {

using json = nlohmann::ordered_json;

// Batches per backend (and fallbacks) between two /metrics snapshots: who served the point.
json BackendsDelta(const std::map<std::string, double>& before,
                   const std::map<std::string, double>& after) {
  json batches = json::object();
  double fallbacks = 0;
  const std::string prefix = "encserve_backend_batches_total{backend=\"";
  for (const auto& [key, value] : after) {
    auto it = before.find(key);
    const double delta = value - (it == before.end() ? 0.0 : it->second);
    if (key.rfind(prefix, 0) == 0 && delta > 0) {
      batches[key.substr(prefix.size(), key.find('"', prefix.size()) - prefix.size())] = delta;
    } else if (key.rfind("encserve_fallbacks_total{", 0) == 0) {
      fallbacks += delta;
    }
  }
  return {{"batches", batches}, {"fallbacks", fallbacks}};
}

// Mean items per server batch between two /metrics snapshots.
double BatchMean(const std::map<std::string, double>& before,
                 const std::map<std::string, double>& after) {
  auto get = [](const std::map<std::string, double>& m, const char* k) {
    auto it = m.find(k);
    return it == m.end() ? 0.0 : it->second;
  };
  const double n =
      get(after, "encserve_batch_size_count") - get(before, "encserve_batch_size_count");
  const double s = get(after, "encserve_batch_size_sum") - get(before, "encserve_batch_size_sum");
  return n > 0 ? s / n : 0.0;
}

json PointJson(int batch, int conc, double rate, int wait, int repeat, const bench::LoadResult& r,
               double server_batch) {
  json p;
  p["batch_size"] = batch;
  p["concurrency"] = conc;
  p["rate"] = rate > 0 ? json(rate) : json(nullptr);
  p["max_wait_us"] = wait;
  p["repeat"] = repeat;
  p["requests"] = r.sent;
  p["ok"] = r.ok;
  p["errors"] = r.errors;
  p["errors_by_code"] = r.errors_by_code;
  p["items"] = r.items;
  p["seconds"] = r.seconds;
  p["requests_per_s"] = r.requests_per_s;
  p["items_per_s"] = r.items_per_s;
  const auto& L = r.latency;
  p["latency_ms"] = {{"mean", L.mean}, {"p50", L.p50},    {"p90", L.p90}, {"p95", L.p95},
                     {"p99", L.p99},   {"p99_9", L.p999}, {"max", L.max}};
  if (r.open_loop) {
    p["open_loop"] = {{"scheduled", r.scheduled},
                      {"late", r.late},
                      {"not_sent", r.not_sent},
                      {"offered_rate", r.offered_rate}};
  }
  p["server_batch_size_mean"] = server_batch;
  return p;
}

StatusOr<std::unique_ptr<bench::Client>> MakeClient(const ExperimentConfig& c,
                                                    const ServerProcess& server, int conc) {
  if (c.workload.protocol == "grpc") {
    bench::GrpcClientOptions go;
    go.target = "127.0.0.1:" + std::to_string(server.grpc_port());
    go.api = c.workload.api == "seed" ? bench::GrpcApi::kSeed : bench::GrpcApi::kV1;
    go.slots = conc;
    return bench::MakeGrpcClient(go);
  }
  bench::HttpClientOptions ho;
  ho.target = "127.0.0.1:" + std::to_string(server.http_port());
  ho.slots = conc;
  return bench::MakeHttpClient(ho);
}

}  // namespace

std::vector<std::string> ServeArgs(const ServerSettings& s, int max_wait_us,
                                   const std::string& yaml) {
  std::vector<std::string> a;
  if (!s.model_dir.empty()) a.insert(a.end(), {"--model", s.model_dir});
  a.insert(a.end(), {"--precision", s.precision, "--replicas", std::to_string(s.replicas),
                     "--backend", s.backend, "--max-batch-size", std::to_string(s.max_batch_size),
                     "--max-batch-tokens", std::to_string(s.max_batch_tokens), "--max-wait-us",
                     std::to_string(max_wait_us), "--config", yaml});
  // A closed-loop sweep point never offers more than its concurrency: it measures capacity and
  // latency at that load, so the server's queue-time admission (a guard against open-ended
  // overload) is off rather than turning high-concurrency points into refusals.
  a.insert(a.end(), {"--queue-budget-ms", "0"});
  if (!s.fallback.empty()) {
    std::string list;
    for (const std::string& f : s.fallback) list += (list.empty() ? "" : ",") + f;
    a.insert(a.end(), {"--fallback", list});
  }
  for (const auto& [name, section] : s.sections) {
    for (const auto& [key, value] : section) {
      a.insert(a.end(), {"--backend-opt", name + "." + key + "=" + value});
    }
  }
  if (s.threads > 0) a.insert(a.end(), {"--threads", std::to_string(s.threads)});
  if (!s.batching) a.push_back("--no-batching");
  return a;
}

Status Quality(const ExperimentConfig& c, const ServerSettings& s, const std::string& model_dir,
               const std::string& data, json* out) {
  (*out)["sts_b_spearman"] = nullptr;
  (*out)["dl19_ndcg10"] = nullptr;
  if (!backends::FindBackend(s.backend)->computes || (!c.quality.sts_b && !c.quality.dl19_ndcg)) {
    return Status::Ok();
  }
  // The same backend chain and options as the server, in-process.
  PipelineOptions o;
  o.backend = s.backend;
  o.fallback = s.fallback;
  o.sections = s.sections;
  o.common.model_dir = model_dir;
  o.common.threads = s.threads > 0 ? s.threads : 2;
  kernels::ParsePrecision(s.precision, &o.common.precision);
  ASSIGN_OR_RETURN(auto pipeline, Pipeline::Load(o));
  if (c.quality.sts_b && pipeline->config().kind == ModelKind::kEmbedding) {
    ASSIGN_OR_RETURN(auto pairs, eval::LoadStsB(data + "/sts-b-test.tsv"));
    ASSIGN_OR_RETURN(auto sts, eval::EvaluateSts(*pipeline, pairs));
    (*out)["sts_b_spearman"] = sts.spearman;
  }
  if (c.quality.dl19_ndcg) {
    ASSIGN_OR_RETURN(auto run, eval::LoadTrecRunJson(data + "/trec-dl19-bm25-top100.json"));
    ASSIGN_OR_RETURN(auto qrels, eval::LoadQrels(data + "/trec-dl19-qrels.txt"));
    ASSIGN_OR_RETURN(auto q, eval::EvaluateRerank(pipeline.get(), run, qrels));
    (*out)["dl19_ndcg10"] = q.ndcg10;
    (*out)["dl19_bm25_ndcg10"] = q.bm25_ndcg10;
  }
  return Status::Ok();
}

StatusOr<json> RunPoint(const ExperimentConfig& c, const ServerProcess& server,
                        const bench::Workload& workload, const Point& pt, std::string* line) {
  ASSIGN_OR_RETURN(std::unique_ptr<bench::Client> client, MakeClient(c, server, pt.conc));
  bench::LoadOptions lo;
  lo.concurrency = pt.conc;
  lo.batch = pt.batch;
  lo.requests = c.sweep.duration_s > 0 ? 0 : c.sweep.requests_per_point;
  lo.duration_s = c.sweep.duration_s;
  lo.warmup_requests = c.sweep.warmup_requests;
  lo.rate = pt.rate;
  lo.progress = nullptr;
  auto before = server.Metrics();
  const bench::LoadResult lr = bench::RunLoad(*client, workload, lo);
  client->Shutdown();
  auto after = server.Metrics();
  const bool metrics = before.ok() && after.ok();
  const double mean_batch = metrics ? BatchMean(*before, *after) : 0.0;
  json p = PointJson(pt.batch, pt.conc, pt.rate, pt.wait, pt.rep, lr, mean_batch);
  p["served_by"] = metrics ? BackendsDelta(*before, *after) : json(nullptr);
  char buf[256];
  std::snprintf(buf, sizeof buf,
                "batch %d conc %d%s wait %d rep %d: %.0f items/s, p50 %.2f ms, p99 %.2f ms, %ld "
                "errors, server batch %.1f",
                pt.batch, pt.conc, pt.rate > 0 ? (" rate " + std::to_string(pt.rate)).c_str() : "",
                pt.wait, pt.rep, lr.items_per_s, lr.latency.p50, lr.latency.p99, lr.errors,
                mean_batch);
  *line = buf;
  return p;
}

std::vector<std::pair<int, double>> Shapes(const SweepSettings& w) {
  std::vector<std::pair<int, double>> shapes;
  int max_conc = 1;
  for (int conc : w.concurrency_levels) {
    shapes.emplace_back(conc, 0.0);
    max_conc = std::max(max_conc, conc);
  }
  for (double rate : w.rates) shapes.emplace_back(max_conc, rate);
  return shapes;
}

}  // namespace encserve::experiment::internal
