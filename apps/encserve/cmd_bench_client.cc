// encserve bench: load generator against a running server (gRPC or HTTP/JSON).
//   closed loop: --concurrency N --batch-size B for --requests R or --duration S
//   open loop:   --rate L (Poisson arrivals, latency from the scheduled send time)
// Figures: exact latency percentiles, requests/s and items/s over the measured interval, errors
// by status code; a progress line per second on stderr; --json FILE for programs.
#include <fstream>
#include <iostream>

#include "bench/grpc_client.h"
#include "bench/http_client.h"
#include "bench/load_runner.h"
#include "bench/report.h"
#include "bench/workload.h"
#include "common.h"

namespace encserve::app {
namespace {

struct Args {
  bench::BenchParams p;
  bool quiet = false;
  std::string api_key;
  std::string json_out;
};

[[noreturn]] void Fail(const std::string& message, int code = 2) {
  std::cerr << "error: " << message << "\n";
  throw CLI::RuntimeError(code);
}

void Run(Args& a) {
  bench::BenchParams& p = a.p;
  auto kind = bench::ParseWorkload(p.workload);
  if (!kind.ok()) Fail(kind.status().message());
  if (p.protocol == "grpc" && p.api == "seed" && *kind != bench::WorkloadKind::kMsMarcoQueries) {
    Fail(
        "--api seed only embeds (inference.InferenceService/Infer): use --workload "
        "msmarco-queries, or --api v1 for " +
        p.workload);
  }
  if (p.target.empty()) p.target = p.protocol == "grpc" ? "127.0.0.1:50051" : "127.0.0.1:8080";
  if (p.requests <= 0 && p.duration_s <= 0) p.duration_s = 10;
  const bool open_loop = p.rate > 0;
  const int slots = open_loop ? std::max(p.max_outstanding, 1) : p.concurrency;

  auto workload = bench::Workload::Load(*kind, p.data_dir);
  if (!workload.ok()) Fail(workload.status().ToString(), 1);
  if (workload->size() == 0) Fail("no items in the data for " + p.workload, 1);

  // Warm-up runs closed loop at --concurrency, on the same slots.
  const int client_slots = std::max(slots, p.concurrency);
  StatusOr<std::unique_ptr<bench::Client>> client = InvalidArgument("protocol");
  if (p.protocol == "grpc") {
    bench::GrpcClientOptions o;
    o.target = p.target;
    o.api = p.api == "seed" ? bench::GrpcApi::kSeed : bench::GrpcApi::kV1;
    o.slots = client_slots;
    if (p.channels <= 0) p.channels = bench::DefaultGrpcChannels(client_slots);
    o.channels = p.channels;
    if (p.client_threads <= 0) p.client_threads = std::min(2, client_slots);
    o.cq_threads = p.client_threads;
    o.timeout_ms = p.timeout_ms;
    o.api_key = a.api_key;
    client = bench::MakeGrpcClient(o);
  } else {
    bench::HttpClientOptions o;
    o.target = p.target;
    o.slots = client_slots;
    if (p.client_threads <= 0) p.client_threads = std::min(2, client_slots);
    o.io_threads = p.client_threads;
    o.timeout_ms = p.timeout_ms;
    o.api_key = a.api_key;
    client = bench::MakeHttpClient(o);
  }
  if (!client.ok()) Fail(client.status().message());

  bench::LoadOptions lo;
  lo.concurrency = p.concurrency;
  lo.slots = slots;
  lo.batch = p.batch;
  lo.requests = p.requests;
  lo.duration_s = p.requests > 0 ? 0 : p.duration_s;
  lo.warmup_requests = p.warmup_requests;
  lo.warmup_s = p.warmup_s;
  lo.rate = p.rate;
  lo.seed = p.seed;
  lo.progress = a.quiet ? nullptr : stderr;
  const bench::LoadResult r = bench::RunLoad(**client, *workload, lo);
  (*client)->Shutdown();

  std::cout << bench::ReportText(p, r) << std::flush;
  if (!a.json_out.empty()) {
    std::ofstream out(a.json_out);
    out << bench::ReportJson(p, r).dump(2) << "\n";
    if (!out) Fail("cannot write " + a.json_out, 1);
  }
  if (r.ok == 0) throw CLI::RuntimeError(1);  // nothing succeeded
}

}  // namespace

void RegisterBench(CLI::App& app) {
  auto a = std::make_shared<Args>();
  a->p.data_dir = DefaultDataDir();
  a->p.timeout_ms = 30000;
  a->p.max_outstanding = 64;
  a->p.workload = "msmarco-queries";
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Load generator against a running server: closed loop (--concurrency) or open "
      "loop (--rate), gRPC or HTTP");
  bench::BenchParams& p = a->p;
  cmd->add_option("--protocol", p.protocol, "grpc | http")
      ->capture_default_str()
      ->check(CLI::IsMember({"grpc", "http"}));
  cmd->add_option("--api", p.api,
                  "gRPC API: seed (inference.InferenceService/Infer) | v1 (encserve.v1.Encoder)")
      ->capture_default_str()
      ->check(CLI::IsMember({"seed", "v1"}));
  cmd->add_option("--target", p.target,
                  "server host:port (default 127.0.0.1:50051 for gRPC, 127.0.0.1:8080 for HTTP)");
  cmd->add_option("-w,--workload", p.workload,
                  "msmarco-queries (embed) | dl19-pairs (score) | dl19-rerank (rerank, one query "
                  "+ its passages per request) | sts-b (score)")
      ->capture_default_str()
      ->check(CLI::IsMember({"msmarco-queries", "dl19-pairs", "dl19-rerank", "sts-b"}));
  cmd->add_option("--data", p.data_dir, "data folder (env ENCSERVE_DATA_DIR overrides the default)")
      ->capture_default_str();
  cmd->add_option("-c,--concurrency", p.concurrency,
                  "closed loop: requests in flight (also the warm-up's)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("-b,--batch-size", p.batch, "texts or pairs per request (not dl19-rerank)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  auto* n = cmd->add_option("-n,--requests", p.requests, "measured requests");
  auto* d = cmd->add_option("-d,--duration", p.duration_s,
                            "measured seconds (default 10 when --requests is not given)");
  n->excludes(d);
  cmd->add_option("--warmup-requests", p.warmup_requests, "requests sent first, not measured")
      ->capture_default_str();
  cmd->add_option("--warmup-seconds", p.warmup_s, "seconds of warm-up, not measured");
  cmd->add_option("-r,--rate", p.rate,
                  "open loop: Poisson arrivals at this many requests/s (0: closed loop)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-outstanding", p.max_outstanding,
                  "open loop: requests in flight at most (HTTP: connections)")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--seed", p.seed, "open loop: arrival RNG seed")->capture_default_str();
  cmd->add_option("--channels", p.channels, "gRPC channels/connections (default: 1 per 16 slots)");
  cmd->add_option("--client-threads", p.client_threads,
                  "completion-queue (gRPC) or io (HTTP) threads (default: 2)");
  cmd->add_option("--timeout-ms", p.timeout_ms, "per-request deadline")->capture_default_str();
  cmd->add_option("--api-key", a->api_key, "sent as Authorization: Bearer KEY");
  cmd->add_option("--json", a->json_out, "write all figures and the parameters to this file");
  cmd->add_flag("-q,--quiet", a->quiet, "no progress lines on stderr");
  cmd->callback([a] { Run(*a); });
}

}  // namespace encserve::app
