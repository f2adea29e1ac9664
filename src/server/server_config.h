// server.yaml: every key, its default and meaning are documented in docs/server.md. Unknown
// keys and wrong types are errors (a typo never silently falls back to a default).
#pragma once

#include <string>
#include <vector>

#include "core/status.h"
#include "server/engine_service.h"

namespace encserve::server {

struct ServerConfig {
  std::string host = "0.0.0.0";
  bool grpc_enabled = true;
  int grpc_port = 50051;
  bool http_enabled = true;
  int http_port = 8080;
  int http_io_threads = 1;
  int http_max_connections = 4096;  // HttpOptions has each of these with its meaning
  int http_max_header_bytes = 16 << 10;
  int http_header_timeout_ms = 10000;
  int http_body_timeout_ms = 30000;
  int http_idle_timeout_ms = 60000;
  int http_write_timeout_ms = 10000;
  std::string api_key;                    // empty: no authentication
  bool metrics_open = true;               // /metrics without the API key (for scrapers)
  std::vector<std::string> cors_origins;  // http.cors_origins: CORS off when empty (cors.h)
  std::string access_log;                 // log.access_log: "" none, "-" stderr, or a file
  std::string tls_cert_file, tls_key_file;
  int64_t max_body_bytes = 4 << 20;  // HTTP body / gRPC message
  int request_timeout_ms = 30000;    // when the client sets no deadline
  int shutdown_grace_ms = 10000;     // SIGTERM: time to finish in-flight requests
  int compute_nice = 5;              // engine.nice: compute threads' nice value (server/priority.h)
  EngineServiceOptions service;      // model, engine, batching, queue, limits, warmup
};

// Defaults: the built-in model folder, fp32, threads = all cores, one replica.
ServerConfig DefaultServerConfig(const std::string& default_model_dir);

// Overlays a YAML document (text) on `config`.
Status ApplyServerYaml(const std::string& yaml_text, const std::string& where,
                       ServerConfig* config);
// Reads the file and overlays it.
Status ApplyServerYamlFile(const std::string& path, ServerConfig* config);

// Range checks of the final configuration (after flags).
Status ValidateServerConfig(const ServerConfig& config);

}  // namespace encserve::server
