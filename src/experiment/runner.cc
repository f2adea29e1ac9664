#include "experiment/runner.h"

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "bench/grpc_client.h"
#include "bench/http_client.h"
#include "bench/load_runner.h"
#include "eval/quality.h"
#include "eval/ranking.h"
#include "experiment/provenance.h"
#include "experiment/results_report.h"
#include "experiment/server_process.h"
#include "kernels/precision.h"
#include "pipeline/pipeline.h"

namespace encserve::experiment {
namespace {

using json = nlohmann::ordered_json;

std::vector<std::string> ServeArgs(const ServerSettings& s, int max_wait_us,
                                   const std::string& yaml) {
  std::vector<std::string> a;
  if (!s.model_dir.empty()) a.insert(a.end(), {"--model", s.model_dir});
  a.insert(a.end(), {"--precision", s.precision, "--replicas", std::to_string(s.replicas),
                     "--backend", s.backend, "--max-batch-size", std::to_string(s.max_batch_size),
                     "--max-batch-tokens", std::to_string(s.max_batch_tokens), "--max-wait-us",
                     std::to_string(max_wait_us), "--config", yaml});
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

Status Quality(const ExperimentConfig& c, const std::string& model_dir, const std::string& data,
               json* out) {
  (*out)["sts_b_spearman"] = nullptr;
  (*out)["dl19_ndcg10"] = nullptr;
  if (!backends::FindBackend(c.server.backend)->computes ||
      (!c.quality.sts_b && !c.quality.dl19_ndcg)) {
    return Status::Ok();
  }
  // The same backend chain and options as the server, in-process.
  PipelineOptions o;
  o.backend = c.server.backend;
  o.fallback = c.server.fallback;
  o.sections = c.server.sections;
  o.common.model_dir = model_dir;
  o.common.threads = c.server.threads > 0 ? c.server.threads : 2;
  kernels::ParsePrecision(c.server.precision, &o.common.precision);
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

struct Point {
  int batch = 0, conc = 0, wait = 0, rep = 0;
  double rate = 0;
};

// One load point against the running server: its JSON, and a progress line.
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

// The (concurrency, rate) shapes of one batch size: closed-loop levels, then open-loop rates at
// the highest concurrency.
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

}  // namespace

StatusOr<RunOutcome> RunExperiment(const ExperimentConfig& c, const RunOptions& o) {
  RunOutcome out;
  out.dir = o.results_root + "/" + c.name + "/" + UtcStamp();
  std::filesystem::create_directories(out.dir);
  auto log = [&](const std::string& line) {
    if (o.progress) std::fprintf(stderr, "[experiment %s] %s\n", c.name.c_str(), line.c_str());
  };
  json& r = out.results;
  r["schema"] = 1;
  r["name"] = c.name;
  r["description"] = c.description;
  r["status"] = "ok";
  r["provenance"] = Provenance(o.source_dir);
  r["config"] = c.resolved;
  ASSIGN_OR_RETURN(bench::WorkloadKind kind, bench::ParseWorkload(c.workload.name));
  r["items_name"] = kind == bench::WorkloadKind::kMsMarcoQueries ? "texts" : "pairs";
  r["server"] = json::object();
  r["quality"] = {{"sts_b_spearman", nullptr}, {"dl19_ndcg10", nullptr}};
  r["points"] = json::array();
  auto finish = [&]() -> StatusOr<RunOutcome> {
    std::ofstream(out.dir + "/results.json") << r.dump(2) << "\n";
    RETURN_IF_ERROR(WriteRunOutputs(r, out.dir));
    log("wrote " + out.dir);
    return out;
  };
  if (const backends::BackendSpec* spec = backends::FindBackend(c.server.backend);
      !spec->unavailable.empty()) {
    r["status"] = "backend not available: " + spec->unavailable;
    log(r["status"].get<std::string>());
    return finish();
  }
  ASSIGN_OR_RETURN(bench::Workload workload, bench::Workload::Load(kind, o.data_dir));
  const std::string yaml = out.dir + "/server.yaml";
  std::ofstream(yaml) << "limits:\n  max_client_batch_size: " << c.server.max_client_batch_size
                      << "\nqueue:\n  max_items: " << std::max(4096, c.server.max_client_batch_size)
                      << "\n";
  std::vector<int> waits = c.sweep.max_wait_us;
  if (waits.empty()) waits.push_back(c.server.max_wait_us);
  const size_t per_server =
      (c.sweep.batch_sizes.size() * (c.sweep.concurrency_levels.size() + c.sweep.rates.size())) *
      static_cast<size_t>(c.sweep.repeats);
  const size_t total = per_server * waits.size();
  size_t done = 0;
  for (int wait : waits) {
    log("starting the server (" + c.server.precision + ", backend " + c.server.backend +
        ", max_wait_us " + std::to_string(wait) + ")");
    ASSIGN_OR_RETURN(ServerProcess server,
                     ServerProcess::Start(o.binary, ServeArgs(c.server, wait, yaml), out.dir,
                                          out.dir + "/server.log"));
    if (r["server"].empty()) {
      ASSIGN_OR_RETURN(std::string info_text, HttpGet(server.http_port(), "/info"));
      const nlohmann::json info = nlohmann::json::parse(info_text);
      r["server"] = {{"precision", info.value("precision", "")},
                     {"kernels", info.value("isa", "")},
                     {"quant_kernels", info.value("quant_kernels", "")},
                     {"backend", info.value("backend", "")},
                     {"backends", info.value("backends", nlohmann::json::array())},
                     {"model_id", info.value("model_id", "")},
                     {"model_kind", info.value("model_kind", "")}};
    }
    for (int rep = 0; rep < c.sweep.repeats; ++rep) {
      for (int batch : c.sweep.batch_sizes) {
        for (auto [conc, rate] : Shapes(c.sweep)) {
          std::string line;
          ASSIGN_OR_RETURN(json p,
                           RunPoint(c, server, workload, {batch, conc, wait, rep, rate}, &line));
          r["points"].push_back(std::move(p));
          log("point " + std::to_string(++done) + "/" + std::to_string(total) + ": " + line);
        }
      }
    }
    const int rc = server.Stop();
    if (rc != 0) log("warning: the server exited with " + std::to_string(rc));
  }
  log("measuring quality (in-process, same backend and precision)");
  json quality;
  Status q = Quality(c, c.server.model_dir.empty() ? o.default_model_dir : c.server.model_dir,
                     o.data_dir, &quality);
  if (!q.ok()) return q;
  r["quality"] = quality;
  return finish();
}

}  // namespace encserve::experiment
