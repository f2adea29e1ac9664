// encserve serve: the gRPC + HTTP server on one model (docs/server.md).
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "common.h"
#include "kernels/precision.h"
#include "server/grpc/grpc_server.h"
#include "server/http/http_server.h"
#include "server/server_config.h"

namespace encserve::app {
namespace {

struct ServeFlags {
  std::string config;
  std::string ready_file;
  std::string model, precision, host, isa, int4_recipe;
  int group_size = 64, threads = 1, replicas = 1, grpc_port = 0, http_port = 0, max_length = 0;
  int max_batch_size = 0, max_batch_tokens = 0, max_wait_us = 0;
  bool no_batching = false;
  bool no_split = false;
  std::string api_key;
  std::string backend;
};

void Log(const std::string& line) {
  std::fprintf(stderr, "[serve] %s\n", line.c_str());
  std::fflush(stderr);
}

int Serve(const ServeFlags& f, CLI::App* cmd) {
  // SIGTERM/SIGINT are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  server::ServerConfig c = server::DefaultServerConfig(DefaultModelDir());
  if (!f.config.empty()) {
    if (Status st = server::ApplyServerYamlFile(f.config, &c); !st.ok()) {
      std::cerr << "error: " << st.ToString() << "\n";
      return 2;
    }
  }
  auto given = [&](const char* name) { return cmd->get_option(name)->count() > 0; };
  EngineOptions& e = c.service.engine;
  if (given("--model")) e.model_dir = f.model;
  if (given("--precision")) kernels::ParsePrecision(f.precision, &e.precision);
  if (given("--group-size")) e.group_size = f.group_size;
  if (given("--int4-recipe")) e.int4_recipe = ParseInt4Recipe(f.int4_recipe).value();
  if (given("--threads")) e.threads = f.threads;
  if (given("--replicas")) e.replicas = f.replicas;
  if (f.no_split) e.split_batches = false;
  if (given("--max-length")) e.max_length = f.max_length;
  if (given("--isa")) {
    kernels::Isa isa;
    kernels::ParseIsa(f.isa, &isa);
    e.isa = isa;
  }
  if (given("--host")) c.host = f.host;
  if (given("--grpc-port")) c.grpc_port = f.grpc_port;
  if (given("--http-port")) c.http_port = f.http_port;
  if (given("--max-batch-size")) c.service.batcher.policy.max_batch_size = f.max_batch_size;
  if (given("--max-batch-tokens")) c.service.batcher.policy.max_batch_tokens = f.max_batch_tokens;
  if (given("--max-wait-us"))
    c.service.batcher.policy.max_wait = std::chrono::microseconds(f.max_wait_us);
  if (f.no_batching) c.service.batcher.policy.enabled = false;
  if (given("--api-key")) c.api_key = f.api_key;
  if (given("--backend")) c.service.backend = f.backend;
  if (Status st = server::ValidateServerConfig(c); !st.ok()) {
    std::cerr << "error: " << st.ToString() << "\n";
    return 2;
  }

  Log("loading " + e.model_dir + " (" + kernels::PrecisionName(e.precision) + ", " +
      std::to_string(e.replicas) + " replica(s) x " + std::to_string(e.threads) + " thread(s), " +
      (e.split_batches ? "batches split by sequences" : "intra-op") + ") and warming up");
  const auto t0 = std::chrono::steady_clock::now();
  auto service = server::EngineService::Create(c.service);
  if (!service.ok()) {
    std::cerr << "error: " << service.status().ToString() << "\n";
    return 1;
  }
  Log("model ready in " + std::to_string(static_cast<int>(MillisSince(t0))) + " ms (kernels " +
      (*service)->Info().isa + ")");

  std::unique_ptr<server::GrpcServer> grpc;
  if (c.grpc_enabled) {
    server::GrpcOptions g;
    g.host = c.host;
    g.port = c.grpc_port;
    g.api_key = c.api_key;
    g.tls_cert_file = c.tls_cert_file;
    g.tls_key_file = c.tls_key_file;
    g.max_message_bytes = static_cast<int>(c.max_body_bytes);
    g.default_timeout = std::chrono::milliseconds(c.request_timeout_ms);
    auto started = server::GrpcServer::Start(g, **service);
    if (!started.ok()) {
      std::cerr << "error: " << started.status().ToString() << "\n";
      return 1;
    }
    grpc = std::move(started).value();
  }
  std::unique_ptr<server::HttpServer> http;
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
    auto started = server::HttpServer::Start(h, **service);
    if (!started.ok()) {
      std::cerr << "error: " << started.status().ToString() << "\n";
      return 1;
    }
    http = std::move(started).value();
  }
  const int grpc_port = grpc ? grpc->port() : 0;
  const int http_port = http ? http->port() : 0;
  if (!f.ready_file.empty()) {
    std::ofstream out(f.ready_file + ".tmp");
    out << "{\"grpc_port\": " << grpc_port << ", \"http_port\": " << http_port
        << ", \"pid\": " << getpid() << "}\n";
    out.close();
    std::rename((f.ready_file + ".tmp").c_str(), f.ready_file.c_str());
  }
  std::printf("encserve ready grpc_port=%d http_port=%d\n", grpc_port, http_port);
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  Log(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ": draining (grace " +
      std::to_string(c.shutdown_grace_ms) + " ms)");
  // Readiness turns false first; then stop accepting; in-flight requests finish.
  (*service)->SetNotReady();
  if (grpc) grpc->SetServing(false);
  if (http) http->StopAccepting();
  const auto steady_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(c.shutdown_grace_ms);
  const auto system_deadline =
      std::chrono::system_clock::now() + std::chrono::milliseconds(c.shutdown_grace_ms);
  if (grpc) grpc->Shutdown(system_deadline);
  if (http) http->Shutdown(steady_deadline);
  (*service)->Shutdown(steady_deadline);
  Log("stopped");
  return 0;
}

}  // namespace

void RegisterServe(CLI::App& app) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "gRPC + HTTP server on one model (docs/server.md)");
  cmd->add_option("-c,--config", f->config, "server.yaml (see configs/server.yaml)");
  cmd->add_option("-m,--model", f->model, "Hugging Face model folder");
  cmd->add_option("-p,--precision", f->precision, "fp32 | bf16 | fp16 | int8 | int4")
      ->check(CLI::IsMember({"fp32", "bf16", "fp16", "int8", "int4"}));
  cmd->add_option("--group-size", f->group_size, "int4 group size")
      ->check(CLI::IsMember({32, 64, 128}));
  cmd->add_option("--int4-recipe", f->int4_recipe, "int4 weights: rtn | rotate | gptq (default)")
      ->check(CLI::IsMember({"rtn", "rotate", "gptq"}));
  cmd->add_option("-t,--threads", f->threads, "threads per replica")->check(CLI::Range(1, 256));
  cmd->add_flag("--no-split", f->no_split,
                "intra-op parallelism only (engine.split_batches: false)");
  cmd->add_option("--replicas", f->replicas, "engine replicas")->check(CLI::Range(1, 64));
  cmd->add_option("--isa", f->isa, "force kernels")
      ->check(CLI::IsMember({"scalar", "avx2", "avx512", "amx"}));
  cmd->add_option("--max-length", f->max_length, "truncation length (tokens)");
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
  cmd->add_option("--api-key", f->api_key, "require Authorization: Bearer <key>");
  cmd->add_option("--backend", f->backend,
                  "encserve | null (zeros, no model work: client capacity check)")
      ->check(CLI::IsMember({"encserve", "null"}));
  cmd->add_option("--ready-file", f->ready_file,
                  "write {grpc_port, http_port, pid} JSON when ready");
  cmd->callback([f, cmd] {
    const int rc = Serve(*f, cmd);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace encserve::app
