// encserve serve: the gRPC + HTTP server on one model (docs/server.md).
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common.h"
#include "kernels/precision.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"
#include "server/listener.h"
#include "server/priority.h"
#include "server/server_config.h"

namespace encserve::app {
namespace {

struct ServeFlags {
  BackendFlags backend;  // --model, --backend, --fallback, --precision, --threads, ... (common.h)
  std::string config;
  std::string ready_file;
  std::string host;
  int grpc_port = 0, http_port = 0;
  int max_batch_size = 0, max_batch_tokens = 0, max_wait_us = 0, queue_budget_ms = 0;
  bool no_batching = false;
  std::string api_key;
  std::string access_log;
  std::vector<std::string> cors_origins;
  std::string self_check, self_check_golden;
};

void Log(const std::string& line) {
  std::fprintf(stderr, "[serve] %s\n", line.c_str());
  std::fflush(stderr);
}

// server.yaml, then the flags given on the command line over it.
StatusOr<server::ServerConfig> ResolveConfig(const ServeFlags& f, CLI::App* cmd) {
  server::ServerConfig c = server::DefaultServerConfig(DefaultModelDir());
  if (!f.config.empty()) RETURN_IF_ERROR(server::ApplyServerYamlFile(f.config, &c));
  RETURN_IF_ERROR(ApplyBackendFlags(f.backend, /*only_given=*/true, &c.service.pipeline));
  auto given = [&](const char* name) { return cmd->get_option(name)->count() > 0; };
  scheduler::PolicyOptions& policy = c.service.batcher.policy;
  if (given("--host")) c.host = f.host;
  if (given("--grpc-port")) c.grpc_port = f.grpc_port;
  if (given("--http-port")) c.http_port = f.http_port;
  if (given("--max-batch-size")) policy.max_batch_size = f.max_batch_size;
  if (given("--max-batch-tokens")) policy.max_batch_tokens = f.max_batch_tokens;
  if (given("--max-wait-us")) policy.max_wait = std::chrono::microseconds(f.max_wait_us);
  if (f.no_batching) policy.enabled = false;
  if (given("--queue-budget-ms")) {
    c.service.batcher.queue_budget = std::chrono::milliseconds(f.queue_budget_ms);
  }
  if (given("--api-key")) c.api_key = f.api_key;
  if (given("--access-log")) c.access_log = f.access_log;
  if (given("--cors-origin")) c.cors_origins = f.cors_origins;
  if (given("--self-check")) {
    c.service.self_check.enabled = f.self_check != "off";
    c.service.self_check.refuse = f.self_check != "warn";
  }
  if (given("--self-check-golden")) c.service.self_check.golden = f.self_check_golden;
  RETURN_IF_ERROR(server::ValidateServerConfig(c));
  return c;
}

struct FrontEnds {
  std::unique_ptr<server::GrpcServer> grpc;
  std::unique_ptr<server::HttpServer> http;
};

StatusOr<FrontEnds> StartFrontEnds(const server::ServerConfig& c, server::Service& service) {
  FrontEnds f;
  std::shared_ptr<server::AccessLog> access_log;
  if (!c.access_log.empty()) {
    ASSIGN_OR_RETURN(access_log, server::AccessLog::Open(c.access_log));
  }
  if (c.grpc_enabled) {
    server::GrpcOptions g;
    g.host = c.host;
    g.port = c.grpc_port;
    g.api_key = c.api_key;
    g.tls_cert_file = c.tls_cert_file;
    g.tls_key_file = c.tls_key_file;
    g.max_message_bytes = static_cast<int>(c.max_body_bytes);
    g.default_timeout = std::chrono::milliseconds(c.request_timeout_ms);
    g.access_log = access_log;
    ASSIGN_OR_RETURN(f.grpc, server::GrpcServer::Start(g, service));
  }
  if (c.http_enabled) {
    server::HttpOptions h;
    h.host = c.host;
    h.port = c.http_port;
    h.io_threads = c.http_io_threads;
    h.api_key = c.api_key;
    h.tls_cert_file = c.tls_cert_file;
    h.tls_key_file = c.tls_key_file;
    h.max_body_bytes = static_cast<size_t>(c.max_body_bytes);
    h.request_timeout = std::chrono::milliseconds(c.request_timeout_ms);
    h.metrics_open = c.metrics_open;
    h.max_connections = c.http_max_connections;
    h.max_header_bytes = static_cast<size_t>(c.http_max_header_bytes);
    h.header_timeout = std::chrono::milliseconds(c.http_header_timeout_ms);
    h.body_timeout = std::chrono::milliseconds(c.http_body_timeout_ms);
    h.idle_timeout = std::chrono::milliseconds(c.http_idle_timeout_ms);
    h.write_timeout = std::chrono::milliseconds(c.http_write_timeout_ms);
    h.cors_origins = c.cors_origins;
    h.access_log = access_log;
    ASSIGN_OR_RETURN(f.http, server::HttpServer::Start(h, service));
  }
  return f;
}

// Written once the front ends listen. "ready" is false when the server will not become ready
// (a failed self-check with self_check.action refuse): "not_ready" says why.
void WriteReadyFile(const std::string& path, int grpc_port, int http_port,
                    const server::Service& service) {
  nlohmann::json j = {{"grpc_port", grpc_port},
                      {"http_port", http_port},
                      {"pid", getpid()},
                      {"ready", service.Ready()}};
  if (!service.Ready()) j["not_ready"] = service.NotReadyReason();
  std::ofstream out(path + ".tmp");
  out << j.dump() << "\n";
  out.close();
  std::rename((path + ".tmp").c_str(), path.c_str());
}

// Readiness turns false first; then stop accepting; in-flight requests finish. The batcher
// drains alongside the front ends: work still queued at the end of the grace period fails with
// UNAVAILABLE, and the front ends stay up a moment longer so those replies (503 / UNAVAILABLE)
// reach their clients instead of a closed connection.
void Drain(const server::ServerConfig& c, server::EngineService& service, FrontEnds& f) {
  service.SetNotReady();
  if (f.grpc) f.grpc->SetServing(false);
  if (f.http) f.http->StopAccepting();
  const auto grace = std::chrono::milliseconds(c.shutdown_grace_ms);
  const auto reply_margin = std::chrono::milliseconds(2000);
  const auto steady_deadline = std::chrono::steady_clock::now() + grace;
  const auto system_now = std::chrono::system_clock::now();
  std::thread batcher([&] { service.Shutdown(steady_deadline); });
  if (f.grpc) f.grpc->Shutdown(system_now + grace + reply_margin);
  if (f.http) f.http->Shutdown(steady_deadline + reply_margin);
  batcher.join();
}

int Serve(const ServeFlags& f, CLI::App* cmd) {
  // SIGTERM/SIGINT are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // a closed terminal drains too (no abrupt exit)
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);
  const int fd_limit = server::RaiseDescriptorLimit();

  auto config = ResolveConfig(f, cmd);
  if (!config.ok()) {
    std::cerr << "error: " << config.status().ToString() << "\n";
    return 2;
  }
  const server::ServerConfig& c = *config;
  const PipelineOptions& p = c.service.pipeline;
  std::string chain = p.backend;
  for (const std::string& b : p.fallback) chain += " -> " + b;
  Log("loading " + p.common.model_dir + " on backend " + chain + " (" +
      kernels::PrecisionName(p.common.precision) + ", " + std::to_string(p.common.replicas) +
      " replica(s) x " + std::to_string(p.common.threads) + " thread(s)) and warming up");
  const auto t0 = std::chrono::steady_clock::now();
  auto service = server::EngineService::Create(c.service);
  if (!service.ok()) {
    std::cerr << "error: " << service.status().ToString() << "\n";
    return 1;
  }
  const int lowered = server::LowerOtherThreadsPriority(c.compute_nice);
  const server::ServiceInfo info = (*service)->Info();
  Log("model ready in " + std::to_string(static_cast<int>(MillisSince(t0))) + " ms (backend " +
      info.backend + ", " + info.precision + ", kernels " +
      backends::KernelsName(info.isa, info.quant_kernels) + ")");
  auto fronts = StartFrontEnds(c, **service);
  if (!fronts.ok()) {
    std::cerr << "error: " << fronts.status().ToString() << "\n";
    return 1;
  }
  const int grpc_port = fronts->grpc ? fronts->grpc->port() : 0;
  const int http_port = fronts->http ? fronts->http->port() : 0;
  if (!f.ready_file.empty()) WriteReadyFile(f.ready_file, grpc_port, http_port, **service);
  Log("compute threads at nice " + std::to_string(c.compute_nice) + " (" + std::to_string(lowered) +
      " threads); descriptor limit " + std::to_string(fd_limit) + "; HTTP connections at most " +
      std::to_string(c.http_max_connections) + "; queue budget " +
      std::to_string(c.service.batcher.queue_budget.count()) + " ms");
  if (!c.access_log.empty()) Log("access log: " + (c.access_log == "-" ? "stderr" : c.access_log));
  if (!c.cors_origins.empty()) {
    std::string origins;
    for (const std::string& o : c.cors_origins) origins += (origins.empty() ? "" : ", ") + o;
    Log("CORS for " + origins);
  }
  if ((*service)->Ready()) {
    std::printf("encserve ready grpc_port=%d http_port=%d\n", grpc_port, http_port);
  } else {
    Log("NOT READY: " + (*service)->NotReadyReason() + " (/health, /info and /metrics answer)");
    std::printf("encserve NOT ready grpc_port=%d http_port=%d\n", grpc_port, http_port);
  }
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  Log(std::string("received ") +
      (sig == SIGTERM  ? "SIGTERM"
       : sig == SIGHUP ? "SIGHUP"
                       : "SIGINT") +
      ": draining (grace " + std::to_string(c.shutdown_grace_ms) + " ms)");
  Drain(c, **service, *fronts);
  if (fronts->grpc) Log(fronts->grpc->CallAccount());
  Log("stopped");
  return 0;
}

}  // namespace

void RegisterServe(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "gRPC + HTTP server on one model (docs/server.md)");
  cmd->add_option("-c,--config", f->config, "server.yaml (see configs/server.yaml)");
  AddBackendFlags(cmd, &f->backend);
  cmd->add_option("--host", f->host, "listen address (default 0.0.0.0)");
  cmd->add_option("--grpc-port", f->grpc_port, "gRPC port (default 50051; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--http-port", f->http_port, "HTTP port (default 8080; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--max-batch-size", f->max_batch_size, "items per batch")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--max-batch-tokens", f->max_batch_tokens, "tokens per batch")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-wait-us", f->max_wait_us, "batching delay (0 = greedy)")
      ->check(CLI::Range(0, 10000000));
  cmd->add_flag("--no-batching", f->no_batching, "every request runs as its own batch");
  cmd->add_option("--queue-budget-ms", f->queue_budget_ms,
                  "refuse requests that would wait longer than this (default 100; 0 = no bound)")
      ->check(CLI::Range(0, 3600000));
  cmd->add_option("--api-key", f->api_key, "require Authorization: Bearer <key>");
  cmd->add_option("--access-log", f->access_log,
                  "one JSON line per request to this file ('-': stderr; docs/server.md)");
  cmd->add_option("--cors-origin", f->cors_origins,
                  "allow browser calls from this origin (repeat, or '*'; default: CORS off)");
  cmd->add_option("--self-check", f->self_check,
                  "start-up quality check against the golden set: refuse (default: not ready "
                  "below the threshold), warn (serve anyway), off")
      ->check(CLI::IsMember({"refuse", "warn", "off"}));
  cmd->add_option("--self-check-golden", f->self_check_golden,
                  "golden set file (default: the one made for the model's weights)");
  cmd->add_option("--ready-file", f->ready_file,
                  "write {grpc_port, http_port, pid} JSON when ready");
  cmd->callback([f, cmd] {
    const int rc = Serve(*f, cmd);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace encserve::app
